"""Pacing a drain to its notice: which pods a drain may evict at all, and which of one
workload's doomed replicas to evict now.

Eviction alone keeps at best R - ceil(d / w) of a workload's R replicas ready through a
notice, d being its replicas on going-away nodes and w the waves that fit (the time
left divided by the pods' start-up time): each wave's replacements start while the rest
still serve. So at most ceil(d / waves left) replicas of a workload are down at once
(evicted, their replacements not Ready yet, or within what its PDB allows), and each
replacement that turns Ready lets the next eviction go: waves that slide rather than
wait for the slowest of the last. Whatever the waves, each pod goes by its own latest
time (the node's end, less the pod's grace period and a margin).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Iterable, Sequence

DEFAULT_STARTUP = 30.0  # seconds, when a workload's pods tell nothing of their start-up
MIN_STARTUP = 1.0  # below this, waves would be planned faster than evictions are seen


def drainable(owner_kind: str, mirror: bool, terminating: bool, managed: bool) -> bool:
    """Pods a reclaim evicts: live pods of managed workloads; never DaemonSet or mirror pods."""
    return managed and not terminating and not mirror and owner_kind != "DaemonSet"


@dataclass(frozen=True)
class Doomed:
    uid: str
    latest: float  # by when its eviction must be issued, on the drain's clock
    ready: bool = True  # one not Ready serves nothing: it goes at once


def next_wave(doomed: Sequence[Doomed], now: float, down: int, startup: float,
              limit: int | None = None) -> list[str]:
    """The uids to evict now: those whose time has come and those not Ready, plus, earliest
    latest time first (else in the given order), as many of the rest as keep the
    workload's replicas down (`down` already) within ceil(doomed / waves left) and
    within `limit` (what its PDB allows now: an eviction it would refuse only waits)."""
    idle = [d.uid for d in doomed if not d.ready]
    due = [d.uid for d in doomed if d.ready and d.latest <= now]
    waiting = sorted((d for d in doomed if d.ready and d.latest > now), key=lambda d: d.latest)
    if not waiting:
        return idle + due
    free = wave_size(len(due) + len(waiting), waiting[0].latest, now, startup) - down
    if limit is not None:
        free = min(free, limit)
    return idle + due + [d.uid for d in waiting[: max(0, free - len(due))]]


def wave_size(doomed: int, first_latest: float, now: float, startup: float) -> int:
    """ceil(doomed / waves that fit before the earliest latest time): the most replicas a
    paced drain has down at once from now."""
    waves_left = int((first_latest - now) // max(startup, MIN_STARTUP)) + 1
    return math.ceil(doomed / max(waves_left, 1))


def startup_estimate(ready_after: Iterable[float]) -> float:
    """Seconds a replacement takes to be Ready: the median start-up (creation to Ready)
    of the workload's ready pods, the replacements of this drain among them; else a default."""
    history = list(ready_after)
    return max(statistics.median(history), MIN_STARTUP) if history else DEFAULT_STARTUP
