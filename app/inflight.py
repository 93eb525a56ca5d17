"""Decisions the watch has not confirmed yet: pods the filter sent to on-demand, and the
node prioritize expects each pod to land on.

kube-scheduler binds asynchronously and asks about the next replica at once, so the
index lags a burst by a few bindings. Without this, a burst of replicas would all see
o < k and all go on-demand, and would pile onto whichever nodes looked empty.
An entry goes when the pod's binding (or deletion) is seen, or after the TTL.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Callable, Hashable

from .counted import add


@dataclass(slots=True)
class _Entry:
    group: Hashable
    on_demand: bool  # counts toward the group's o
    node: str | None  # the node prioritize expects
    pool: Hashable | None
    expiry: float


class InFlight:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        self._on_demand: Counter = Counter()  # group -> pods held for on-demand
        self._nodes: dict[Hashable, Counter] = {}  # group -> expected node -> pods
        self._pools: dict[Hashable, Counter] = {}  # group -> expected pool -> pods
        self._expiries: deque[tuple[float, str]] = deque()  # constant TTL: FIFO is expiry order

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    def hold_on_demand(self, uid: str, group: Hashable) -> None:
        """The filter sent this pod to on-demand: count it toward o once, however often asked."""
        entry = self._take(uid, group)
        self._put(uid, _Entry(group, True, entry.node if entry else None, entry.pool if entry else None, 0.0))

    def expect(self, uid: str, group: Hashable, node: str, pool: Hashable) -> None:
        """Prioritize steered this pod to node: count it there until its binding is seen."""
        entry = self._take(uid, group)
        self._put(uid, _Entry(group, entry.on_demand if entry else False, node, pool, 0.0))

    def discard(self, uid: str) -> None:
        entry = self._entries.pop(uid, None)
        if entry is not None:
            self._unindex(entry)

    def on_demand(self, group: Hashable, excluding_uid: str = "") -> int:
        """Pods of group held for on-demand, not counting the pod being decided on."""
        self._expire()
        total = self._on_demand.get(group, 0)
        entry = self._entries.get(excluding_uid)
        if entry is not None and entry.group == group and entry.on_demand:
            total -= 1
        return total

    def expected(self, group: Hashable, excluding_uid: str = "") -> tuple[Counter, Counter]:
        """(per node, per pool) expected placements of group, without the pod being decided on."""
        self._expire()
        nodes = Counter(self._nodes.get(group, ()))
        pools = Counter(self._pools.get(group, ()))
        entry = self._entries.get(excluding_uid)
        if entry is not None and entry.group == group and entry.node is not None:
            nodes[entry.node] -= 1
            pools[entry.pool] -= 1
        return +nodes, +pools  # unary plus drops zero counts

    def _take(self, uid: str, group: Hashable) -> _Entry | None:
        self._expire()
        entry = self._entries.pop(uid, None)
        if entry is not None:
            self._unindex(entry)
            if entry.group != group:
                return None
        return entry

    def _put(self, uid: str, entry: _Entry) -> None:
        entry.expiry = self.clock() + self.ttl
        self._entries[uid] = entry
        self._expiries.append((entry.expiry, uid))
        if entry.on_demand:
            self._on_demand[entry.group] += 1
        if entry.node is not None:
            self._nodes.setdefault(entry.group, Counter())[entry.node] += 1
            self._pools.setdefault(entry.group, Counter())[entry.pool] += 1

    def _unindex(self, entry: _Entry) -> None:
        if entry.on_demand:
            add(self._on_demand, entry.group, -1)
        if entry.node is not None:
            _decrement_nested(self._nodes, entry.group, entry.node)
            _decrement_nested(self._pools, entry.group, entry.pool)

    def _expire(self) -> None:
        now = self.clock()
        while self._expiries and self._expiries[0][0] <= now:
            expiry, uid = self._expiries.popleft()
            entry = self._entries.get(uid)
            if entry is not None and entry.expiry == expiry:
                self.discard(uid)


def _decrement_nested(by_group: dict[Hashable, Counter], group: Hashable, key: Hashable) -> None:
    counter = by_group.get(group)
    if counter is None:
        return
    add(counter, key, -1)
    if not counter:
        del by_group[group]
