"""Pods the filter sent to on-demand whose binding the watch has not shown yet.

kube-scheduler binds asynchronously and asks about the next replica at once, so
without this a burst of replicas would all see o < k and all land on on-demand.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import Callable, Hashable


class InFlight:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[str, tuple[Hashable, float]] = {}  # uid -> (group, expiry)
        self._per_group: Counter = Counter()
        self._expiries: deque[tuple[float, str]] = deque()  # constant TTL: FIFO is expiry order

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    def add(self, uid: str, group: Hashable) -> None:
        """Count uid toward group; a repeated call for the same pod refreshes it once."""
        self._expire()
        previous = self._entries.get(uid)
        if previous is not None and previous[0] != group:
            self._drop(uid)
            previous = None
        if previous is None:
            self._per_group[group] += 1
        expiry = self.clock() + self.ttl
        self._entries[uid] = (group, expiry)
        self._expiries.append((expiry, uid))

    def discard(self, uid: str) -> None:
        if uid in self._entries:
            self._drop(uid)

    def count(self, group: Hashable, excluding_uid: str = "") -> int:
        """In-flight pods of group, not counting the pod being decided on."""
        self._expire()
        total = self._per_group.get(group, 0)
        entry = self._entries.get(excluding_uid)
        if entry is not None and entry[0] == group:
            total -= 1
        return total

    def _drop(self, uid: str) -> None:
        group, _ = self._entries.pop(uid)
        self._per_group[group] -= 1
        if self._per_group[group] <= 0:
            del self._per_group[group]

    def _expire(self) -> None:
        now = self.clock()
        while self._expiries and self._expiries[0][0] <= now:
            expiry, uid = self._expiries.popleft()
            entry = self._entries.get(uid)
            if entry is not None and entry[1] == expiry:
                self._drop(uid)
