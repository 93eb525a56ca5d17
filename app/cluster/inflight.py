"""Decisions the watch has not confirmed yet: pods the filter sent to on-demand, and the
node prioritize expects each pod to land on.

kube-scheduler binds asynchronously and asks about the next replica at once, so the
index lags a burst by a few bindings. Without this, a burst of replicas would all see
o < k and all go on-demand, and would pile onto whichever nodes looked empty.
An entry goes when the pod's binding (or deletion) is seen, or after the TTL.

These entries are state a caller can change: /filter and /prioritize cannot tell a forged
call from kube-scheduler's where no client certificate is required, and an on-demand hold
makes the next pods of its group spot. So state no watch has confirmed may only err toward
on-demand (as app/cluster/admitted.py does for admissions). An entry is *seen* once the index shows
its pod Pending in the same group, when the call comes or later; the caller (the extender)
keeps none for a pod the index shows bound or in another group, nor for one whose owner
reference does not match the owner the index knows. An unseen entry (the watch lags the
scheduler in a burst: a burst stays exact only if these count) is kept only while its
group has room for it (the owner's replicas less its live pods), and must be seen within
CONFIRM_SECONDS. One that is not, or more of them than the room, is evidence of forgery:
for DISTRUST_SECONDS the group counts seen entries only (extra floor pods, which the
controller moves back to spot, never missing ones); the unseen ones it keeps meanwhile
count once the watch shows their pods. Entries are at most MAX_ENTRIES in all.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Callable, Hashable

from ..core.counted import add
from .distrust import Distrust

CONFIRM_SECONDS = 3.0  # how long an unseen pod's entry counts before the watch must show the pod
MAX_ENTRIES = 10_000  # entries of every group together: past it, no new one is kept
# Why a call's entry was not kept, or was dropped (spot_extender_unverified_total{what="inflight"}).
NO_ROOM, FULL, EXPIRED, OTHER_GROUP, UNCONFIRMED = "no-room", "full", "expired", "other-group", "unconfirmed"


@dataclass(slots=True)
class _Entry:
    group: Hashable
    on_demand: bool  # counts toward the group's o
    node: str | None  # the node prioritize expects
    pool: Hashable | None
    expiry: float
    confirm_by: float  # when the watch must have shown the pod; 0.0 once it has


class _Counts:
    """What a set of entries adds up to, per group: held for on-demand, and expected per node and pool."""

    __slots__ = ("on_demand", "nodes", "pools", "entries")

    def __init__(self):
        self.on_demand: Counter = Counter()  # group -> pods held for on-demand
        self.nodes: dict[Hashable, Counter] = {}  # group -> expected node -> pods
        self.pools: dict[Hashable, Counter] = {}  # group -> expected pool -> pods
        self.entries: Counter = Counter()  # group -> entries

    def count(self, entry: _Entry, delta: int) -> None:
        group = entry.group
        add(self.entries, group, delta)
        if entry.on_demand:
            add(self.on_demand, group, delta)
        if entry.node is not None:
            _add_nested(self.nodes, group, entry.node, delta)
            _add_nested(self.pools, group, entry.pool, delta)


class InFlight:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic,
                 on_unconfirmed: Callable[[Hashable, str], None] | None = None,
                 confirm_within: float = CONFIRM_SECONDS, max_entries: int = MAX_ENTRIES):
        self.ttl = ttl
        self.clock = clock
        # Told (group, why) whenever unseen entries are found out: expired, shown in another group, over the room.
        self.on_unconfirmed = on_unconfirmed
        self.confirm_within = min(confirm_within, ttl)
        self.max_entries = max_entries
        # A refresh moves an entry's expiry only this far at least: repeated calls for one pod
        # add a bounded number of items to the expiry queue, not one per call.
        self._refresh_step = ttl / 16
        self._entries: dict[str, _Entry] = {}
        self._all = _Counts()
        self._unseen = _Counts()  # the part of _all whose pods the watch has not shown
        self._expiries: deque[tuple[float, str]] = deque()  # constant TTL: FIFO is expiry order
        self._deadlines: deque[tuple[float, str]] = deque()  # confirm_by of unseen entries, in order
        self._distrusted = Distrust(lambda: self.clock())

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    def hold_on_demand(self, uid: str, group: Hashable, seen: bool = True, room: int = 0) -> str | None:
        """The filter sent this pod to on-demand: count it toward o once, however often asked.
        `seen`: the index shows the pod Pending in group; if not, `room` is how many pods of
        the group the watch may not have shown yet. Why the hold was not kept, or None."""
        return self._keep(uid, group, seen, room, True, None, None)

    def expect(self, uid: str, group: Hashable, node: str, pool: Hashable, seen: bool = True,
               room: int = 0) -> str | None:
        """Prioritize steered this pod to node: count it there until its binding is seen.
        `seen` and `room` as for hold_on_demand."""
        return self._keep(uid, group, seen, room, False, node, pool)

    def seen(self, uid: str, group: Hashable) -> None:
        """The watch shows the pod Pending: its entry is confirmed. A uid the watch shows in
        another group than the call claimed is not what the call said: its entry goes."""
        entry = self._entries.get(uid)
        if entry is None or not entry.confirm_by:
            return
        if entry.group != group:
            self.discard(uid)
            self._report(entry.group, OTHER_GROUP)
            return
        self._unseen.count(entry, -1)
        entry.confirm_by = 0.0

    def discard(self, uid: str) -> None:
        entry = self._entries.pop(uid, None)
        if entry is not None:
            self._count(entry, -1)

    def on_demand(self, group: Hashable, excluding_uid: str = "", room: int | None = None) -> int:
        """Pods of group held for on-demand, not counting the pod being decided on. `room`:
        how many pods of the group the watch may not have shown yet; more unseen entries
        than that are not what they claim, and the group stops trusting them."""
        trusted = self._trusted(group, room)
        total = self._all.on_demand.get(group, 0)
        if not trusted:
            total -= self._unseen.on_demand.get(group, 0)
        entry = self._entries.get(excluding_uid)
        if entry is not None and entry.group == group and entry.on_demand and (trusted or not entry.confirm_by):
            total -= 1
        return total

    def expected(self, group: Hashable, excluding_uid: str = "") -> tuple[Counter, Counter]:
        """(per node, per pool) expected placements of group, without the pod being decided on."""
        trusted = self._trusted(group, None)
        nodes = Counter(self._all.nodes.get(group, ()))
        pools = Counter(self._all.pools.get(group, ()))
        if not trusted and group in self._unseen.nodes:
            nodes.subtract(self._unseen.nodes[group])
            pools.subtract(self._unseen.pools[group])
        entry = self._entries.get(excluding_uid)
        if entry is not None and entry.group == group and entry.node is not None and (
                trusted or not entry.confirm_by):
            nodes[entry.node] -= 1
            pools[entry.pool] -= 1
        return +nodes, +pools  # unary plus drops zero counts

    def distrusted(self, group: Hashable) -> bool:
        self._expire()
        return group in self._distrusted

    def any_unseen(self) -> bool:
        """Whether any group has entries the watch has not shown: almost never, outside a burst."""
        return bool(self._unseen.entries)

    def unseen_on_demand(self, group: Hashable, excluding_uid: str = "") -> int:
        """The group's on-demand holds that count now though the watch has not shown their pods."""
        if not self._trusted(group, None):
            return 0
        total = self._unseen.on_demand.get(group, 0)
        entry = self._entries.get(excluding_uid)
        if entry is not None and entry.group == group and entry.on_demand and entry.confirm_by:
            total -= 1
        return total

    def unconfirmed(self, group: Hashable) -> None:
        """The group's unseen holds were what would have made a pod skip on-demand, and the
        watch did not show their pods in time: they stop counting."""
        self._distrust(group)
        self._report(group, UNCONFIRMED)

    def unseen(self, group: Hashable) -> int:
        """Entries of the group whose pod the watch has not shown yet."""
        self._expire()
        return self._unseen.entries.get(group, 0)

    # ---- keeping -------------------------------------------------------------------

    def _keep(self, uid: str, group: Hashable, seen: bool, room: int, on_demand: bool, node: str | None,
              pool: Hashable | None) -> str | None:
        self._expire()
        entry = self._entries.get(uid)
        if entry is not None and entry.group != group:
            self.discard(uid)  # the pod is decided on for another group now
            entry = None
        now = self.clock()
        if entry is None:
            if len(self._entries) >= self.max_entries:
                return FULL
            if not seen and self._unseen.entries.get(group, 0) >= room:
                self._distrust(group)  # more pods than the owner could have
                return NO_ROOM
            # An unseen entry's deadline stays what it was first, however often its pod is asked about.
            entry = self._entries[uid] = _Entry(group, False, None, None, 0.0, 0.0 if seen else now + self.confirm_within)
            if not seen:
                self._deadlines.append((entry.confirm_by, uid))
        else:
            self._count(entry, -1)
            if seen:
                entry.confirm_by = 0.0
        if on_demand:
            entry.on_demand = True
        if node is not None:
            entry.node, entry.pool = node, pool
        self._count(entry, 1)
        expiry = now + self.ttl
        if expiry - entry.expiry >= self._refresh_step:
            entry.expiry = expiry
            self._expiries.append((expiry, uid))
        return None

    def _count(self, entry: _Entry, delta: int) -> None:
        self._all.count(entry, delta)
        if entry.confirm_by:
            self._unseen.count(entry, delta)

    def _trusted(self, group: Hashable, room: int | None) -> bool:
        """Whether the group's unseen entries count; found out when there are more than its room."""
        self._expire()
        if group in self._distrusted:
            return False
        if room is not None and self._unseen.entries.get(group, 0) > room:
            self._distrust(group)
            self._report(group, NO_ROOM)
            return False
        return True

    def _distrust(self, group: Hashable) -> None:
        """For DISTRUST_SECONDS (app/cluster/distrust.py) from now, the group's unseen entries do not count."""
        self._distrusted.add(group)

    def _report(self, group: Hashable, reason: str) -> None:
        if self.on_unconfirmed is not None:
            self.on_unconfirmed(group, reason)

    def _expire(self) -> None:
        now = self.clock()
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            deadline, uid = deadlines.popleft()
            entry = self._entries.get(uid)
            if entry is not None and entry.confirm_by == deadline:  # the watch never showed the pod
                self.discard(uid)
                self._distrust(entry.group)
                self._report(entry.group, EXPIRED)
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            expiry, uid = expiries.popleft()
            entry = self._entries.get(uid)
            if entry is not None and entry.expiry == expiry:
                self.discard(uid)


def _add_nested(by_group: dict[Hashable, Counter], group: Hashable, key: Hashable, delta: int) -> None:
    counter = by_group.get(group)
    if counter is None:
        if delta <= 0:
            return
        counter = by_group[group] = Counter()
    add(counter, key, delta)
    if not counter:
        del by_group[group]
