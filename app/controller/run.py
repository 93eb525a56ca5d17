"""Runs the leader's loops for one term as leader, each under the supervisor."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from ..core import logs
from ..api import Kube
from ..decisions.floors import Floors
from ..cluster.index import Index
from ..core.metrics import Metrics
from ..core.settings import Settings
from ..serving.status import Status
from ..core.supervisor import Supervisor
from .deletion_cost import DeletionCost
from .drain import Drain
from .evictor import Evictor
from .fallback import FloorFallback
from .markers import Markers
from .rebalance import Rebalance
from .scope import Scope

log = logs.get("controller")


class Loop(Protocol):
    name: str
    period: float  # seconds between passes when nothing changes
    gap: float  # least time between two passes: changes come all the time on a busy cluster

    async def once(self) -> None: ...


class Controller:
    def __init__(self, kube: Kube, index: Index, floors: Floors, settings: Settings, metrics: Metrics,
                 status: Status | None = None):
        self.index = index
        self.settings = settings
        self.metrics = metrics
        self.status = status
        scope = Scope(index, settings)
        self.supervisor = Supervisor(metrics, settings.backoff_max)
        self.evictor = Evictor(kube, settings, metrics)
        self.drain = Drain(index, self.evictor, scope, self.supervisor, metrics, settings.drain_margin)
        self.rebalance = Rebalance(index, floors, self.evictor, scope, settings, metrics, Markers(
            kube, index, metrics, settings.request_timeout, settings.dry_run))
        self.deletion_cost = DeletionCost(kube, index, floors, scope, settings, metrics)
        self.fallback = FloorFallback(kube, index, self.evictor, scope, settings, metrics)
        self.loops: list[Loop] = [self.rebalance, self.deletion_cost, self.fallback]
        if settings.drain:
            self.loops.insert(0, self.drain)
        self._wakers: list[asyncio.Event] = []

    async def run(self) -> None:
        """The leader's work; cancelled the moment leadership is lost."""
        await self.index.wait_synced()  # acting on a half-listed cluster would misjudge every floor
        # Nor on a stale one: a leader elected while a watch is down (the API server just
        # came back) waits until every watch is connected again.
        if self.index.freshness.stale(0):
            log.info("controller waiting for every watch to reconnect", extra={"down": self.index.freshness.stale(0)})
        await self.index.freshness.wait_fresh()
        self.index.on_change = self._changed
        if self.status is not None:
            self.status.controller = self.rebalance
        log.info("controller started", extra={"dry_run": self.settings.dry_run, "drain": self.settings.drain})
        try:
            for loop in self.loops:
                self.supervisor.start(loop.name, self._periodic(loop))
            await asyncio.gather(*self.supervisor.tasks.values())
        finally:
            self.index.on_change = None
            if self.status is not None and self.status.controller is self.rebalance:
                self.status.controller = None
            await self.supervisor.stop()
            log.info("controller stopped")

    def _changed(self, kind: str) -> None:
        for waker in self._wakers:
            waker.set()

    def _periodic(self, loop: Loop):
        """loop.once() every period, and on index changes at most once per gap."""
        wake = asyncio.Event()
        self._wakers.append(wake)

        async def run() -> None:
            while True:
                await loop.once()
                await asyncio.sleep(loop.gap)
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), max(0.0, loop.period - loop.gap))

        return run
