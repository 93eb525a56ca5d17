"""Counts kept per watch event, so a scheduling call never scans pods: bound, alive
replicas per counted group by class, node and pool, and the requests on each node.

A pod's contribution is stored when it is counted, so removing it subtracts exactly what
was added, whatever changed on its node in between.
"""

from __future__ import annotations

from collections import Counter

from ..core.counted import add
from ..core.vocabulary import Capacity
from .nodes import Pool
from .records import GroupKey, PodRecord


class GroupCounts:
    """Bound, alive replicas of one counted controller object, by class, node and pool."""

    __slots__ = ("on_demand", "spot", "per_node", "per_pool")

    def __init__(self) -> None:
        self.on_demand = 0
        self.spot = 0
        self.per_node: Counter = Counter()
        self.per_pool: Counter = Counter()

    def change(self, node: str, pool: Pool, delta: int) -> None:
        if pool.capacity == Capacity.ON_DEMAND:
            self.on_demand += delta
        else:
            self.spot += delta
        add(self.per_node, node, delta)
        add(self.per_pool, pool, delta)


class Tally:
    def __init__(self) -> None:
        self._groups: dict[GroupKey, GroupCounts] = {}
        self._requested: dict[str, list[int]] = {}  # node -> [millicores, bytes] of its live pods
        self._contribution: dict[str, tuple[GroupKey, str, Pool]] = {}

    def of(self, group: GroupKey) -> GroupCounts | None:
        return self._groups.get(group)

    def requested(self, node: str) -> tuple[int, int]:
        """(millicores, bytes) the live pods bound to the node request."""
        used = self._requested.get(node)
        return (used[0], used[1]) if used is not None else (0, 0)

    def forget_node(self, node: str) -> None:
        self._requested.pop(node, None)

    def count(self, pod: PodRecord, pool: Pool | None) -> None:
        """Count a pod on its node's pool; None: the node is unknown or gone."""
        if not pod.counts or pool is None:
            return
        counts = self._groups.get(pod.group)
        if counts is None:
            counts = self._groups[pod.group] = GroupCounts()
        counts.change(pod.node, pool, +1)
        self._contribution[pod.uid] = (pod.group, pod.node, pool)

    def uncount(self, uid: str) -> None:
        added = self._contribution.pop(uid, None)
        if added is None:
            return
        group, node, pool = added
        counts = self._groups[group]
        counts.change(node, pool, -1)
        if not counts.per_node:
            del self._groups[group]

    def use(self, pod: PodRecord) -> None:
        """Requests of live bound pods count against their node, as the scheduler counts them."""
        if pod.node and not pod.terminating:
            used = self._requested.setdefault(pod.node, [0, 0])
            used[0] += pod.cpu
            used[1] += pod.memory

    def unuse(self, pod: PodRecord) -> None:
        used = self._requested.get(pod.node) if pod.node and not pod.terminating else None
        if used is not None:  # None: the node is gone, and its sums with it
            used[0] -= pod.cpu
            used[1] -= pod.memory
