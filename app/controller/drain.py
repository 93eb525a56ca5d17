"""Drain: evict managed pods from spot nodes that are going away, paced to each node's
notice in waves per workload (see pacing.py), retrying while a PodDisruptionBudget says
no. A signal with no notice drains at once. A workload that opts in to surges gets
replacements first (surge.py), and its doomed pods go as they are Ready."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from ..cluster.nodes import NOT_READY
from ..cluster.records import GroupKey, PodRecord
from ..core import logs
from ..core.vocabulary import Capacity
from ..decisions.moves import RECLAIM
from ..decisions.pacing import Doomed, drainable, next_wave, startup_estimate, wave_size
from ..decisions.surge import surge_holds, surge_wave
from .context import LoopContext
from .surge import Surges

log = logs.get("drain")

# How long an evicted pod's claim is held waiting for the watch to show it leaving.
SEEN_LEAVING_TIMEOUT = 30.0
# Above this share of nodes not Ready at once, not-Ready means the control plane or the
# network is in trouble (an API server outage leaves every node's heartbeat stale), not
# that these nodes are going away: draining them would evict for nothing. The same rule
# as kube-controller-manager's --unhealthy-zone-threshold.
MASS_NOT_READY_SHARE = 0.55
# Not-Ready alone drains a node only once it has lasted this long: nodes turn NotReady one
# watch event at a time, and a mass event must be seen whole before the first is acted on.
NOT_READY_GRACE = 5.0


@dataclass
class Pace:
    """One workload's drain in progress."""

    # The workload's live pods when the drain first saw it, and those of them seen Ready
    # since: a crash-looping pod is not down for this drain, and one the watch shows
    # Ready only after the first pass counts from then on.
    before: frozenset[str]
    seen_ready: set[str]
    waves: int = 0

    def down(self, ready: set[str], wanted: int) -> int:
        """Replicas short of the most this drain has seen Ready: evicted ones until their
        replacements are."""
        self.seen_ready |= self.before & ready
        return max(0, min(len(self.seen_ready), wanted) - len(ready))


class Drain:
    name = "drain"
    period = 1.0  # it also wakes on every index change
    gap = 0.05  # least time between two passes

    def __init__(self, ctx: LoopContext, clock: Callable[[], float] = time.monotonic):
        self.index = ctx.index
        self.writer = ctx.writer
        self.scope = ctx.scope
        self.tasks = ctx.tasks
        self.metrics = ctx.metrics
        self.margin = ctx.settings.drain_margin
        self.clock = clock
        self.evicting: dict[str, asyncio.Task] = {}  # pod uid -> its eviction task
        self.busy: Counter[GroupKey] = Counter()  # evictions in flight per workload
        self.paces: dict[GroupKey, Pace] = {}
        self.holding_not_ready = False
        self._not_ready_since: dict[str, float] = {}
        self.surges = Surges(ctx, clock)
        self._deficit = 0  # Ready replicas short of R over this pass's workloads, surge pods counted

    async def once(self) -> None:
        index = self.index
        now = self.clock()
        hold_not_ready = self._mass_not_ready()
        doomed: dict[GroupKey, list[PodRecord]] = {}
        stranded: list[PodRecord] = []  # surge pods on nodes going away
        for node, reason in list(index.going_away().items()):
            record = index.node(node)
            if record is None or record.effective != Capacity.SPOT:
                continue
            if reason == NOT_READY and (hold_not_ready or now - self._not_ready_since[node] < NOT_READY_GRACE):
                continue
            for pod in index.pods_on_node(node):
                if pod.uid in self.evicting or pod.terminating:
                    continue
                if self.scope.is_surge(pod):
                    # It stands in for nothing there: evicted, its ReplicaSet makes one elsewhere.
                    stranded.append(pod)
                    continue
                if not self.scope.may_touch(pod):
                    continue
                if not drainable(pod.owner_kind, pod.mirror, pod.terminating, pod.group is not None):
                    continue
                doomed.setdefault(pod.group, []).append(pod)
        for pod in stranded:
            self._spawn(pod)
        self.surges.start(doomed, now, lambda group: startup_estimate(self._replicas(group)[3]))
        self._deficit = 0
        batches = [self._wave(group, pods, now) for group, pods in doomed.items()]
        self.metrics.drain_ready_deficit.set(self._deficit)
        # Workload by workload in turn: with evictions queued behind --eviction-concurrency,
        # one workload's whole batch first would take all its replicas down before the next
        # workload lost any.
        for turn in itertools.zip_longest(*batches):
            for pod in turn:
                if pod is not None:
                    self._spawn(pod)
        for group in self.paces.keys() - doomed.keys() - self.busy.keys():
            del self.paces[group]
        self.surges.tend(now)

    def _wave(self, group: GroupKey, pods: list[PodRecord], now: float) -> list[PodRecord]:
        """This workload's pods to evict now: see pacing.next_wave."""
        live, ready, wanted, started_in = self._replicas(group)
        pace = self.paces.get(group)
        if pace is None:
            pace = self.paces[group] = Pace(frozenset(live), set())
        # Down for this drain: evicted and not yet replaced by a Ready pod, or on the way.
        down = pace.down(ready, wanted) + self.busy[group]
        startup = startup_estimate(started_in)
        pods = sorted(pods, key=lambda p: (p.created, p.name))  # the oldest first, as drains go
        doomed = [Doomed(p.uid, self._deadline(p.node, now) - p.grace - self.margin, p.ready) for p in pods]
        workload = self.index.workload_of(group)
        # A surge stands in for its counted ReplicaSet's pods only, not an older revision's.
        counted = workload is not None and self.index.current_group(workload) == group
        waiting = [d for d in doomed if d.ready and d.latest > now]
        first_latest = min((d.latest for d in waiting), default=now)
        cover = self.surges.cover(workload, len(waiting), wave_size(len(waiting), first_latest, now, startup)
                                  ) if counted and waiting else None
        if cover is None:
            self._deficit += max(0, wanted - len(ready))
            chosen = set(next_wave(doomed, now, down, startup, self._pdb_allows(group)))
        else:
            self._deficit += max(0, wanted - len(ready) - cover.ready)
            hold = surge_holds(now, cover.ready_at, len(waiting), cover.coming, startup, first_latest,
                               cover.paced_wave, cover.on_track)
            chosen = set(surge_wave(doomed, now, down, startup, self._pdb_allows(group), cover.ready, hold))
        if not chosen:
            return []
        paced = any(d.uid in chosen and d.ready and d.latest > now for d in doomed)
        trigger = ("surge" if cover is not None and cover.ready else "paced") if paced else "due"
        pace.waves += 1
        self.metrics.drain_waves.labels(trigger).inc()
        if len(chosen) < len(pods):  # a drain at once needs no line per workload
            log.info("drain wave", extra={
                "workload": f"{group.namespace}/{group.name}", "wave": pace.waves, "trigger": trigger,
                "evicting": len(chosen), "left": len(pods) - len(chosen), "down": down,
                "startup_s": round(startup, 1),
            })
        return [p for p in pods if p.uid in chosen]

    def _deadline(self, node: str, now: float) -> float:
        deadline = self.index.deadline(node)
        return now if deadline is None else deadline

    def _replicas(self, group: GroupKey) -> tuple[set[str], set[str], int, list[float]]:
        """(the uids of the workload's pods not terminating, those of them Ready, the
        replicas it wants, the start-up times of its Ready pods), in one pass over its pods."""
        index = self.index
        live: set[str] = set()
        ready: set[str] = set()
        started_in = []
        for pod in index.pods_of(group):
            uid = pod.uid
            if pod.ready_after is not None:
                started_in.append(pod.ready_after)
            if not pod.terminating:
                live.add(uid)
                if pod.ready:
                    ready.add(uid)
        record = index.workload(group)
        wanted = record.replicas if record is not None else len(live)
        return live, ready, wanted, started_in

    def _pdb_allows(self, group: GroupKey) -> int | None:
        """Disruptions the PDBs selecting the workload's pods allow now; None: no PDB, or
        none that has reported yet."""
        record = self.index.workload(group)
        if record is None:
            return None
        allowed = [p.disruptions_allowed for p in self.index.pdbs_selecting(group.namespace, record.template_labels)
                   if p.disruptions_allowed is not None]
        return min(allowed) if allowed else None

    def _spawn(self, pod: PodRecord) -> None:
        reason = f"spot node {pod.node} is going away: {self.index.going_away().get(pod.node, 'gone')}"
        self.busy[pod.group] += 1
        self.evicting[pod.uid] = self.tasks.spawn(self._drain_pod(pod, reason), name=f"evict-{pod.uid}",
                                                       loop="drain")

    def _mass_not_ready(self) -> bool:
        """Also keeps when each node was first seen not Ready, for the grace."""
        now = self.clock()
        not_ready_now = {node for node, reason in self.index.going_away().items() if reason == NOT_READY}
        self._not_ready_since = {node: self._not_ready_since.get(node, now) for node in not_ready_now}
        nodes = self.index.node_count()
        not_ready = len(not_ready_now)
        holding = bool(nodes) and not_ready / nodes > MASS_NOT_READY_SHARE
        if holding != self.holding_not_ready:
            self.holding_not_ready = holding
            (log.warning if holding else log.info)(
                "most nodes are not Ready: not draining for that alone" if holding else "not-Ready drains resume",
                extra={"not_ready": not_ready, "nodes": nodes},
            )
        return holding

    async def _drain_pod(self, pod: PodRecord, reason: str) -> None:
        try:
            result = await self.writer.evict_while(pod, RECLAIM, reason, lambda: self._still_draining(pod),
                                                    retry_now=lambda: (self._pdb_allows(pod.group) or 0) > 0)
            if result is not None and result.done:
                # Hold the claim until the watch shows the pod leaving, or a pass in
                # between would evict it a second time.
                await self._until_seen_leaving(pod)
        finally:
            self.evicting.pop(pod.uid, None)
            self.busy[pod.group] -= 1
            if self.busy[pod.group] <= 0:
                del self.busy[pod.group]

    def _still_draining(self, pod: PodRecord) -> bool:
        current = self.index.pod(pod.uid)
        return current is not None and not current.terminating and pod.node in self.index.going_away()

    async def _until_seen_leaving(self, pod: PodRecord) -> None:
        deadline = self.clock() + SEEN_LEAVING_TIMEOUT
        while self.clock() < deadline:
            current = self.index.pod(pod.uid)
            if current is None or current.terminating:
                return
            await asyncio.sleep(0.05)
