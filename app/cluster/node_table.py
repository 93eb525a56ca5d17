"""Nodes as the index keeps them: records by name, their pools, which are on-demand and
which are going away, when each going-away node ends, and generations that tell caches
when what they derived from nodes is stale."""

from __future__ import annotations

import time
from collections import Counter
from typing import Callable, Collection, Iterator, Mapping

from ..core.counted import add
from ..core.vocabulary import AUTOSCALER_LABEL, Capacity
from .nodes import DELETING, NOT_READY, NodeClassifier, NodeRecord, Pool

FIRM_SIGNALS = frozenset({DELETING, NOT_READY})  # the node goes now, whatever notice a taint gives


class NodeTable:
    def __init__(self, classifier: NodeClassifier, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time):
        self.classifier = classifier
        self.clock = clock
        self.wall = wall
        self._records: dict[str, NodeRecord] = {}
        self._pool_of: dict[str, Pool] = {}
        self._on_demand: set[str] = set()
        # Capacity label keys that classify some node, by how many: the webhook writes
        # affinity terms on these keys only (see roles.RoleRules.narrowed).
        self._capacity_keys: Counter = Counter()
        self.autoscaled = 0  # nodes an autoscaler made (vocabulary.AUTOSCALER_LABEL)
        self._going_away: dict[str, str] = {}  # name -> why
        # When each going-away node ends, on self.clock: every replica keeps it, so a new
        # leader paces a drain against the notice as first seen, not from its election.
        self._deadlines: dict[str, float] = {}
        self._deadline_firm: set[str] = set()  # deadlines a later notice taint may not move
        self.generation = 0  # bumped whenever a node's pool appears, changes or goes
        # bumped whenever a node's class, labels, taints, extended resources or going away change
        self.placement_generation = 0

    # ---- feeding -------------------------------------------------------------------

    def put(self, record: NodeRecord) -> bool:
        """Store a node; True when its pool is new or changed (pods on it count elsewhere now)."""
        name = record.name
        old = self._records.get(name)
        self._records[name] = record
        self._pool_of[name] = record.pool
        if old is not None:
            self._count(old, -1)
        self._count(record, 1)
        if record.effective == Capacity.ON_DEMAND:
            self._on_demand.add(name)
        else:
            self._on_demand.discard(name)
        if record.going_away:
            self._going_away[name] = record.going_away
            self._keep_deadline(name, record)
        else:
            self._forget_going_away(name)
        if old is None or (old.pool, old.labels, old.taints, bool(old.going_away), old.extended) != (
            record.pool, record.labels, record.taints, bool(record.going_away), record.extended
        ):
            self.placement_generation += 1
        if old is None or old.pool != record.pool:
            self.generation += 1
            return True
        return False

    def drop(self, name: str) -> bool:
        """Forget a node; False if it was not known."""
        old = self._records.pop(name, None)
        if old is None:
            return False
        self._count(old, -1)
        del self._pool_of[name]
        self.generation += 1
        self.placement_generation += 1
        self._on_demand.discard(name)
        self._forget_going_away(name)
        return True

    def _forget_going_away(self, name: str) -> None:
        self._going_away.pop(name, None)
        self._deadlines.pop(name, None)
        self._deadline_firm.discard(name)

    def _count(self, record: NodeRecord, delta: int) -> None:
        self.autoscaled += delta * (AUTOSCALER_LABEL in record.labels)
        key = self.classifier.capacity_key(record.labels)
        if key is not None:
            add(self._capacity_keys, key, delta)

    def _keep_deadline(self, name: str, record: NodeRecord) -> None:
        """A notice never grows, with one exception: a deadline of 'now' that came from a
        signal without a notice (a cordon, a taint that gives none) moves to the notice a
        taint brings later, since termination handlers cordon and taint in either order.
        A deletion or a NotReady node still means now, and stays so."""
        deadline = self._deadline_of(record)
        kept = self._deadlines.get(name)
        if kept is None or (record.notice > 0 and name not in self._deadline_firm):
            self._deadlines[name] = deadline
        else:
            self._deadlines[name] = min(deadline, kept)
        if record.notice > 0 or record.going_away in FIRM_SIGNALS:
            self._deadline_firm.add(name)

    def _deadline_of(self, record: NodeRecord) -> float:
        now = self.clock()
        if record.signalled_at is None:
            return now + record.notice
        age = min(max(0.0, self.wall() - record.signalled_at), record.notice)
        return now - age + record.notice

    # ---- queries -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, name: object) -> bool:
        return name in self._records

    def get(self, name: str) -> NodeRecord | None:
        return self._records.get(name)

    def names(self) -> Collection[str]:
        return self._records.keys()

    def items(self) -> Iterator[tuple[str, NodeRecord]]:
        return iter(self._records.items())

    def pools(self) -> Mapping[str, Pool]:
        """Read-only: the extender's hot path looks pools up by the thousand."""
        return self._pool_of

    def on_demand(self) -> Collection[str]:
        """Read-only: names of the nodes that are on-demand now."""
        return self._on_demand

    def going_away(self) -> Mapping[str, str]:
        """Read-only: going-away nodes and why."""
        return self._going_away

    def deadline(self, name: str) -> float | None:
        """When a going-away node ends, on the clock; None when it is not going away."""
        return self._deadlines.get(name)

    def capacity_keys(self) -> frozenset[str]:
        return frozenset(self._capacity_keys)
