"""How late the event loop runs a timer: the delay every request and watch event waits
behind whatever holds the loop. A 10 ms timer is armed over and over; how much later
than asked it fires is the lag."""

from __future__ import annotations

import asyncio
import time
from collections import deque

PERIOD = 0.01
WINDOW = 60.0  # the max gauge covers at least one scrape interval
SLOT = 10.0


class RecentMax:
    """The largest value of the last WINDOW seconds, kept as one max per SLOT (the current
    slot and the ones before it that fit in WINDOW). `value` runs on the thread that
    encodes a scrape: it reads a copy and changes nothing."""

    def __init__(self, window: float = WINDOW, slot: float = SLOT, clock=time.monotonic):
        self.window, self.slot, self.clock = window, slot, clock
        self._slots: deque[tuple[int, float]] = deque()

    def add(self, value: float) -> None:
        number = int(self.clock() // self.slot)
        if self._slots and self._slots[-1][0] == number:
            if value > self._slots[-1][1]:
                self._slots[-1] = (number, value)
        else:
            self._slots.append((number, value))
            self._drop_old(number)

    def value(self) -> float:
        oldest = self._oldest(int(self.clock() // self.slot))
        return max((v for number, v in tuple(self._slots) if number >= oldest), default=0.0)

    def _oldest(self, now: int) -> int:
        return now - int(self.window // self.slot) + 1

    def _drop_old(self, now: int) -> None:
        oldest = self._oldest(now)
        while self._slots and self._slots[0][0] < oldest:
            self._slots.popleft()


async def measure_lag(observe, recent: RecentMax, period: float = PERIOD) -> None:
    """Runs until cancelled: each lag goes to `observe` (a histogram's) and to `recent`.
    Timed with perf_counter: uvloop's loop.time() is whole milliseconds, read once per turn."""
    while True:
        asked = time.perf_counter() + period
        await asyncio.sleep(period)
        lag = max(time.perf_counter() - asked, 0.0)
        observe(lag)
        recent.add(lag)
