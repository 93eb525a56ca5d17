"""What a paced drain is measured against (tests/perf/bench_pacing.py): the fewest ready
replicas a perfect eviction-only drain can keep."""

from __future__ import annotations

import math

from spot_extender.decisions.pacing import MIN_STARTUP


def eviction_bound(replicas: int, doomed: int, time_available: float, startup: float) -> int:
    """R - ceil(d / w), with w the waves of start-ups that fit in the time available."""
    waves = max(1, int(time_available // max(startup, MIN_STARTUP)))
    return replicas - math.ceil(doomed / waves)
