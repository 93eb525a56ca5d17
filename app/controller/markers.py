"""Marker annotations on the ReplicaSet or StatefulSet whose pods are counted: choices the
leader makes that every replica answering admissions must follow (floor fallback, spot
seek). Each waits for this replica's own watch to show the marker, then gives peers a
moment, before acting on it: a peer that has not seen it would admit the replacement the
old way."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from ..cluster.index import Index
from ..cluster.records import GroupKey, WorkloadRecord
from .writer import Writer

SEEN_TIMEOUT = 5.0  # how long to wait for this replica's own watch to show a marker
PEERS_SETTLE = 1.0  # then how long peers get to see it too


class Markers:
    """One per controller, shared by every loop that marks workloads."""

    def __init__(self, index: Index, writer: Writer):
        self.index = index
        self.writer = writer

    async def write(self, record: WorkloadRecord, annotation: str, value: str | None, loop: str) -> bool:
        """Set (or, with None, remove) the marker; False if it was not written."""
        return await self.writer.annotate(record, annotation, value, loop)

    async def seen(self, group: GroupKey, shows: Callable[[WorkloadRecord], bool]) -> bool:
        """Once this replica's watch shows the marker, and peers had a moment: True."""
        deadline = time.monotonic() + SEEN_TIMEOUT
        while time.monotonic() < deadline:
            record = self.index.workload(group)
            if record is not None and shows(record):
                await asyncio.sleep(PEERS_SETTLE)
                return True
            await asyncio.sleep(0.05)
        return False
