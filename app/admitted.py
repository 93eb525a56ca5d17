"""Roles this replica gave at admission that the pod watch has not shown yet.

A ReplicaSet creates a burst of pods faster than the watch reports them; without these,
every pod of the burst would see fewer than k floor pods and become one. An entry goes
when the watch shows the pod (it carries the admission's uid in an annotation) or after
the TTL, which covers a create that failed after admission.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import Callable, Hashable


class Admitted:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[str, tuple[Hashable, str, float]] = {}  # admission uid -> (group, role, expiry)
        self._counts: Counter = Counter()  # (group, role) -> admissions not yet seen
        self._expiries: deque[tuple[float, str]] = deque()  # constant TTL: FIFO is expiry order

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    def record(self, uid: str, group: Hashable, role: str) -> None:
        self.seen(uid)
        expiry = self.clock() + self.ttl
        self._entries[uid] = (group, role, expiry)
        self._counts[(group, role)] += 1
        self._expiries.append((expiry, uid))

    def seen(self, uid: str) -> None:
        """The watch shows the pod admitted under uid: the index counts it from now on."""
        entry = self._entries.pop(uid, None)
        if entry is not None:
            key = (entry[0], entry[1])
            self._counts[key] -= 1
            if self._counts[key] <= 0:
                del self._counts[key]

    def count(self, group: Hashable, role: str) -> int:
        self._expire()
        return self._counts.get((group, role), 0)

    def _expire(self) -> None:
        now = self.clock()
        while self._expiries and self._expiries[0][0] <= now:
            expiry, uid = self._expiries.popleft()
            entry = self._entries.get(uid)
            if entry is not None and entry[2] == expiry:
                self.seen(uid)
