"""Marker annotations on the ReplicaSet or StatefulSet whose pods are counted: choices the
leader makes that every replica answering admissions must follow (floor fallback, spot
seek). Each waits for this replica's own watch to show the marker, then gives peers a
moment, before acting on it: a peer that has not seen it would admit the replacement the
old way."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from ..core import logs
from ..api import ApiError, Kube
from ..cluster.index import Index
from ..api.kinds import BY_NAME
from ..core.metrics import Metrics
from ..cluster.records import GroupKey, WorkloadKey, WorkloadRecord

log = logs.get("markers")

SEEN_TIMEOUT = 5.0  # how long to wait for this replica's own watch to show a marker
PEERS_SETTLE = 1.0  # then how long peers get to see it too


class Markers:
    def __init__(self, kube: Kube, index: Index, metrics: Metrics, request_timeout: float, dry_run: bool):
        self.kube = kube
        self.index = index
        self.metrics = metrics
        self.request_timeout = request_timeout
        self.dry_run = dry_run

    async def write(self, record: WorkloadRecord, annotation: str, value: str | None, loop: str) -> bool:
        """Set (or, with None, remove) the marker; False if it was not written."""
        owner = f"{record.kind}/{record.namespace}/{record.name}"
        if self.dry_run:
            log.info("would annotate", extra={"owner": owner, annotation: value})
            return False
        try:
            await self.kube.annotate(BY_NAME[record.kind].resource, record.namespace, record.name,
                                     {annotation: value}, self.request_timeout)
            return True
        except ApiError as exc:
            self.metrics.loop_errors.labels(loop).inc()
            log.warning("marker annotation not written", extra={
                "owner": owner, "annotation": annotation, "error": str(exc)})
            return False

    async def seen(self, group: GroupKey, shows: Callable[[WorkloadRecord], bool]) -> bool:
        """Once this replica's watch shows the marker, and peers had a moment: True."""
        deadline = time.monotonic() + SEEN_TIMEOUT
        while time.monotonic() < deadline:
            record = self.index.workloads.get(WorkloadKey(*group))
            if record is not None and shows(record):
                await asyncio.sleep(PEERS_SETTLE)
                return True
            await asyncio.sleep(0.05)
        return False
