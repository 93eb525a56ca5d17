import random

from spot_extender.core.backoff import Backoff


def test_grows_to_the_cap_with_jitter_and_resets():
    backoff = Backoff(initial=1, maximum=8, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(6)]
    ceilings = [1, 2, 4, 8, 8, 8]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings))
    backoff.reset()
    assert backoff.next_delay() <= 1
