"""Roles this replica gave at admission that the pod watch has not shown yet.

A ReplicaSet creates a burst of pods faster than the watch reports them; without these,
every pod of the burst would see fewer than k floor pods and become one. An entry goes
when the watch shows the pod (it carries the admission's uid in an annotation) or after
the TTL, which covers a create that failed after admission.

These entries are state a caller can change: /mutate cannot tell a forged review from
kube-apiserver's where the platform gives it no client certificate, and a create denied
after mutating admission (a quota, a validating policy) leaves an entry no pod follows.
Counting a floor entry makes the next pods spot, so unconfirmed entries may only err
toward on-demand: a group holds no more of them than it has room for (its replicas less
its live pods), and an entry that expires unconfirmed makes its group distrust them all
for DISTRUST_SECONDS (app/cluster/distrust.py), admitting by the pods the watch shows alone (extra floor pods,
which the controller moves back to spot once the entries are trusted again).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import Callable, Hashable

from ..core.counted import add
from .distrust import Distrust


class Admitted:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic,
                 on_unconfirmed: Callable[[Hashable], None] | None = None):
        self.ttl = ttl
        self.clock = clock
        self.on_unconfirmed = on_unconfirmed  # told the group of each entry that expired unseen
        self._entries: dict[str, tuple[Hashable, str, float]] = {}  # admission uid -> (group, role, expiry)
        self._counts: Counter = Counter()  # (group, role) -> admissions not yet seen
        self._per_group: Counter = Counter()  # group -> admissions not yet seen, any role
        self._expiries: deque[tuple[float, str]] = deque()  # constant TTL: FIFO is expiry order
        self._distrusted = Distrust(lambda: self.clock())

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    def record(self, uid: str, group: Hashable, role: str, room: int) -> bool:
        """Count an admission until the watch shows its pod; False when the group has no
        room left for another one it has not seen (its replicas less its live pods)."""
        self.seen(uid)
        self._expire()
        if self._per_group[group] >= room:
            return False
        expiry = self.clock() + self.ttl
        self._entries[uid] = (group, role, expiry)
        self._counts[(group, role)] += 1
        self._per_group[group] += 1
        self._expiries.append((expiry, uid))
        return True

    def seen(self, uid: str) -> None:
        """The watch shows the pod admitted under uid: the index counts it from now on."""
        entry = self._entries.pop(uid, None)
        if entry is not None:
            add(self._counts, (entry[0], entry[1]), -1)
            add(self._per_group, entry[0], -1)

    def count(self, group: Hashable, role: str) -> int:
        """Unseen admissions of the group with this role; none while the group is distrusted."""
        self._expire()
        if group in self._distrusted:
            return 0
        return self._counts.get((group, role), 0)

    def distrusted(self, group: Hashable) -> bool:
        self._expire()
        return group in self._distrusted

    def unseen(self, group: Hashable) -> int:
        """Admissions of the group, any role, the watch has not shown yet."""
        self._expire()
        return self._per_group.get(group, 0)

    def distrust(self, group: Hashable) -> None:
        """More admissions than the group could hold: some are not what they claim."""
        self._distrusted.add(group)

    def _expire(self) -> None:
        now = self.clock()
        while self._expiries and self._expiries[0][0] <= now:
            expiry, uid = self._expiries.popleft()
            entry = self._entries.get(uid)
            if entry is not None and entry[2] == expiry:
                self.seen(uid)
                self._distrusted.add(entry[0])
                if self.on_unconfirmed is not None:
                    self.on_unconfirmed(entry[0])

