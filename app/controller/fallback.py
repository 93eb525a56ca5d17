"""Floor fallback: a floor pod still Pending after --floor-pending-timeout (on-demand is
full, and no autoscaler provisioned a node) is evicted, and its replacement admitted as a
spot pod, so no cluster is left with a Pending replica for good.

Every replica answering admissions must make the same choice for the replacement, or it
comes back as a floor pod and the loop starts again. So the choice lives where every
replica's watch sees it: an annotation on the ReplicaSet or StatefulSet whose pods are
counted. The pod is evicted only once this replica's own watch shows the annotation, and
a moment later, so peers have seen it too. The annotation goes once an on-demand node has
room for the workload's pods; rebalance then repairs the floor as any broken floor.
"""

from __future__ import annotations

import time
from typing import Callable

from ..cluster.records import (
    UNSCHEDULABLE,
    GroupKey,
    PodRecord,
    WorkloadRecord,
)
from ..core import logs
from ..core.fields import rfc3339, unix_time
from ..core.vocabulary import ANNOTATION_FLOOR_FALLBACK, Capacity, Role
from ..decisions.moves import Replica
from .context import LoopContext
from .views import has_room
from .writer import event_reason, workload_ref

log = logs.get("floor-fallback")

FLOOR_FALLBACK = "floor-fallback"  # the eviction cause


class FloorFallback:
    name = "floor-fallback"
    period = 2.0
    gap = 1.0

    def __init__(self, ctx: LoopContext, wall: Callable[[], float] = time.time):
        self.index = ctx.index
        self.writer = ctx.writer
        self.scope = ctx.scope
        self.metrics = ctx.metrics
        self.markers = ctx.markers
        self.wall = wall
        self.timeout = ctx.settings.floor_pending_timeout

    async def once(self) -> None:
        now = self.wall()
        for group in self.index.groups_with(Role.FLOOR):
            stale = self._stale_floor_pods(group, now)
            if stale:
                await self._fall_back(group, stale)
        for record in [r for r in self.index.workloads() if r.floor_fallback is not None]:
            await self._end_if_room(record)

    def _stale_floor_pods(self, group: GroupKey, now: float) -> list[PodRecord]:
        """Floor pods kube-scheduler found no node for, for too long. Pods held by a
        scheduling gate or waiting for their volume claims wait on things no node fixes,
        and a spot replacement would wait for the same: they are left alone."""
        return [p for p in self.index.live_pods(group)
                if p.role == Role.FLOOR and not p.node and p.unscheduled == UNSCHEDULABLE
                and now - _unix(p.created) >= self.timeout and self.scope.may_touch(p)]

    async def _fall_back(self, group: GroupKey, stale: list[PodRecord]) -> None:
        record = self.index.workload(group)
        if record is None:
            return
        if record.floor_fallback is None:
            log.warning("floor pods not placed in time: their replacements will be spot pods", extra={
                "owner": f"{group.kind}/{group.namespace}/{group.name}", "pending": len(stale),
                "timeout_s": self.timeout})
            if not await self._mark(record, rfc3339(self.wall())) or not await self.markers.seen(
                    group, lambda r: r.floor_fallback is not None):
                return  # the next pass tries again
            await self.writer.event(workload_ref(record), "Warning", event_reason("Floor", FLOOR_FALLBACK),
                                     f"floor pods Pending for {self.timeout:.0f}s: replaced by spot pods until "
                                     "on-demand has room")
        for pod in stale:
            result = await self.writer.evict(pod, FLOOR_FALLBACK, f"floor pod Pending for over {self.timeout:.0f}s")
            if result.done:
                self.metrics.floor_fallbacks.inc()

    async def _end_if_room(self, record: WorkloadRecord) -> None:
        group = GroupKey(record.kind, record.namespace, record.name)
        pods = self.index.live_pods(group)
        if any(p.role == Role.FLOOR and not p.node for p in pods):
            return  # one is still waiting for a node
        workload = self.index.workload_of(group)
        sample = pods[0] if pods else None
        probe = Replica("", record.namespace, "", "", "", False, sample.cpu if sample else 0,
                        sample.memory if sample else 0, "")
        template = workload or record
        # "Cannot tell" ends it too: were the floor pods still stuck, --floor-pending-timeout
        # would start it again; kept on a guess, the floor would stay on spot for good.
        if has_room(self.index, Capacity.ON_DEMAND, probe, template.constraints, template.needs,
                    template.template_labels).verdict is False:
            return
        if await self._mark(record, None):
            log.info("on-demand has room again: floor pods are admitted as floor again", extra={
                "owner": f"{record.kind}/{record.namespace}/{record.name}"})

    async def _mark(self, record: WorkloadRecord, value: str | None) -> bool:
        return await self.markers.write(record, ANNOTATION_FLOOR_FALLBACK, value, self.name)

def _unix(created: str) -> float:
    """A creationTimestamp as Unix time; a malformed one as the far future, so never stale."""
    when = unix_time(created)
    return float("inf") if when is None else when
