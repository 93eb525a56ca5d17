"""Spot seeks: a move back to spot while no spot node has room, for an autoscaler to add
one. The counted ReplicaSet or StatefulSet is marked first, so every replica's webhook
admits the replacement requiring spot. The marker goes once the move settles; one older
than --spot-seek-timeout goes too, with the replacements still Pending under it, which
come back only preferring spot."""

from __future__ import annotations

import time
from typing import Callable

from ..cluster.records import GroupKey
from ..core import logs
from ..core.fields import rfc3339, unix_time
from ..core.vocabulary import ANNOTATION_SPOT_SEEK, Role
from .context import LoopContext

log = logs.get("rebalance")

SPOT_SEEK = "spot-seek"  # the eviction cause of a seek's pending replacement at its timeout


class SpotSeeks:
    def __init__(self, ctx: LoopContext, loop: str, wall: Callable[[], float] = time.time):
        self.index = ctx.index
        self.markers = ctx.markers
        self.writer = ctx.writer
        self.scope = ctx.scope
        self.metrics = ctx.metrics
        self.loop = loop  # whose errors the marker writes count as
        self.wall = wall
        self.seek_timeout = ctx.settings.spot_seek_timeout

    async def start(self, group: GroupKey) -> bool:
        """Mark the group so its next spot pods require spot; True once replicas see it."""
        record = self.index.workload(group)
        if record is None:
            return False
        if not await self.markers.write(record, ANNOTATION_SPOT_SEEK, rfc3339(self.wall()), self.loop):
            return False
        if not await self.markers.seen(group, lambda r: r.spot_seek is not None):
            await self.end(group, placed=None)
            return False
        self.metrics.spot_seeks.labels("started").inc()
        log.info("spot seek: the replacement requires spot", extra={
            "owner": f"{group.kind}/{group.namespace}/{group.name}", "timeout_s": self.seek_timeout})
        return True

    async def end(self, group: GroupKey, placed: bool | None) -> None:
        """Remove the marker; count whether the replacement ran on spot (None: never evicted)."""
        record = self.index.workload(group)
        if record is not None and record.spot_seek is not None:
            await self.markers.write(record, ANNOTATION_SPOT_SEEK, None, self.loop)
        if placed is not None:
            self.metrics.spot_seeks.labels("placed" if placed else "timeout").inc()

    async def expire(self) -> None:
        """Markers older than --spot-seek-timeout go, with the Pending spot pods admitted
        under them: their replacements only prefer spot. Also ends seeks a leader before
        this one started."""
        now = self.wall()
        for record in [r for r in self.index.workloads() if r.spot_seek is not None]:
            since = unix_time(record.spot_seek)
            if since is not None and now - since < self.seek_timeout:
                continue
            group = GroupKey(record.kind, record.namespace, record.name)
            stuck = [p for p in self.index.live_pods(group) if not p.node and p.role == Role.SPOT
                     and (since is None or (unix_time(p.created) or 0) >= since - 1)]
            if not await self.markers.write(record, ANNOTATION_SPOT_SEEK, None, self.loop):
                continue
            log.warning("spot seek timed out: no spot node came for its replacement", extra={
                "owner": f"{record.kind}/{record.namespace}/{record.name}", "pending": len(stuck),
                "timeout_s": self.seek_timeout})
            for pod in stuck:
                if self.scope.may_touch(pod):
                    await self.writer.evict(pod, SPOT_SEEK, f"Pending for over {self.seek_timeout:.0f}s "
                                                             "waiting for a spot node: it will prefer spot only")
