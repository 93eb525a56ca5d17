import asyncio
import time

from spot_extender.core.loop_lag import RecentMax, measure_lag


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_recent_max_keeps_the_largest_of_the_window_only():
    clock = Clock()
    recent = RecentMax(window=60, slot=10, clock=clock)
    assert recent.value() == 0.0
    recent.add(0.002)
    recent.add(0.2)
    recent.add(0.001)
    assert recent.value() == 0.2
    clock.now += 30
    recent.add(0.05)
    assert recent.value() == 0.2  # 30 s ago: still in the window
    clock.now += 45
    assert recent.value() == 0.05  # the 0.2 is 75 s old now
    clock.now += 120
    assert recent.value() == 0.0


async def test_a_held_loop_shows_as_lag():
    seen = []
    recent = RecentMax()
    task = asyncio.create_task(measure_lag(seen.append, recent, period=0.01))
    await asyncio.sleep(0.05)
    time.sleep(0.08)  # the loop held: the timer that was due fires this much late
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(seen) >= 3
    assert max(seen) >= 0.06 and recent.value() == max(seen)
    assert min(seen) >= 0.0
