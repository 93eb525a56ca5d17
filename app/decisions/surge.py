"""Surge before evict: how many surge pods a reclaimed workload gets, how many it keeps as
its own replacements turn Ready, and which doomed pods go when.

A surge pod is a replica started beside the workload the moment a notice arrives; each
one that is Ready lets one doomed replica go with no loss of serving capacity. The paced
drain (pacing.py) still bounds every eviction: a pod never goes later than it would
without a surge, and each still goes by its own latest time.
"""

from __future__ import annotations

import math
from typing import Sequence

from .pacing import MIN_STARTUP, Doomed, next_wave, wave_size
from .policy import scaled

# The drain passes at least once a second: a surge off track is given up this long before
# the paced wave would grow, so that giving up then takes no more replicas down at once than planned.
GIVE_UP_AHEAD = 2.0
# Surge pods are made a moment after the notice (the ReplicaSet, then its pods, then their
# nodes), so their start-up ends a little after the workload's usual one: they count as
# late only past that start-up plus a quarter of it, at least LATE_SLACK_MIN.
LATE_SLACK_SHARE = 0.25
LATE_SLACK_MIN = 2.0


def late_after(ready_at: float, startup: float) -> float:
    """When surge pods expected Ready at `ready_at` count as late: the drain stops trusting them."""
    return ready_at + max(LATE_SLACK_MIN, startup * LATE_SLACK_SHARE)


def surge_bound(max_surge: str, replicas: int) -> int:
    """--max-surge (or the workload's spot-extender.io/max-surge) against R: rounded up, at
    least 1, so a workload of one replica gets its one surge pod."""
    return max(1, scaled(max_surge, replicas) or 0)


def surge_wanted(current: int | None, doomed: int, bound: int, replicas: int, healthy: int) -> int:
    """Surge pods wanted now: one per doomed replica, within the bound, growing as more of
    the workload's nodes get their notice (they come one by one); never more than the
    replicas short of R among those that will stay (`healthy`: Ready, not doomed). As each
    replacement turns Ready one surge pod goes, and an HPA scaling down shrinks it too; a
    scale-up during the reclaim (the workload's own, an HPA's) is no reason to grow."""
    short = max(0, replicas - healthy)
    return min(max(current or 0, doomed), bound, short)


def surge_holds(now: float, ready_at: float, waiting: int, covering: int, startup: float,
                first_latest: float, paced_wave: int, on_track: bool = True) -> bool:
    """Whether the drain may wait for surge pods rather than follow the paced schedule: the
    `covering` surge pods (Ready by `ready_at`) can replace the `waiting` doomed ones a
    round at a time, one start-up per round, with the last round's evictions issued by the
    earliest latest time. While the surge is on track (none stuck, none late to be Ready)
    that is all; once it is not, it holds only while giving up would cost no more replicas
    down at once than the paced drain had planned when the surge began (`paced_wave`). If
    not (start-up too slow, no room for the surge), the paced schedule goes on and the
    surge pods that are Ready still count as replicas up."""
    if waiting <= 0 or covering <= 0:
        return False
    if not on_track and wave_size(waiting, first_latest, now + GIVE_UP_AHEAD, startup) > paced_wave:
        return False
    rounds = math.ceil(waiting / covering)
    return max(now, ready_at) + (rounds - 1) * max(startup, MIN_STARTUP) <= first_latest


def surge_wave(doomed: Sequence[Doomed], now: float, down: int, startup: float, limit: int | None,
               surge_ready: int, hold: bool) -> list[str]:
    """The uids to evict now, with `surge_ready` surge pods Ready: those not Ready or due,
    and as many of the rest (earliest latest first) as Ready surge pods cover beyond the
    replicas already down, within `limit` (the PDB). Not holding, the paced wave
    (pacing.next_wave) if it takes more: a pod never goes later than without a surge."""
    idle = [d.uid for d in doomed if not d.ready]
    due = [d.uid for d in doomed if d.ready and d.latest <= now]
    waiting = sorted((d for d in doomed if d.ready and d.latest > now), key=lambda d: d.latest)
    free = surge_ready - down - len(due)
    if limit is not None:
        free = min(free, limit - len(due))
    covered = idle + due + [d.uid for d in waiting[: max(0, free)]]
    if hold:
        return covered
    paced = next_wave(doomed, now, down, startup, limit)
    return paced if len(paced) > len(covered) else covered
