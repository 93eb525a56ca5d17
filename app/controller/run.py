"""Runs the leader's loops for one term as leader, each under the controller's task scope."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from ..api import Kube
from ..cluster.index import Index
from ..cluster.records import WorkloadKey
from ..core import logs
from ..core.metrics import Metrics
from ..core.settings import Settings
from ..core.supervisor import Supervisor
from ..decisions.floors import Floors
from ..decisions.moves import MoveState
from .context import LoopContext
from .deletion_cost import DeletionCost
from .drain import Drain
from .fallback import FloorFallback
from .markers import Markers
from .rebalance import Rebalance
from .scope import Scope
from .writer import Writer

log = logs.get("controller")

# Every loop, in the order a term starts them; drain runs only with --drain.
LOOPS = (Drain, Rebalance, DeletionCost, FloorFallback)


class Loop(Protocol):
    name: str
    period: float  # seconds between passes when nothing changes
    gap: float  # least time between two passes: changes come all the time on a busy cluster

    async def once(self) -> None: ...


class Controller:
    def __init__(self, kube: Kube, index: Index, floors: Floors, settings: Settings, metrics: Metrics,
                 tasks: Supervisor | None = None):
        self.index = index
        self.settings = settings
        self.metrics = metrics
        self.tasks = tasks or Supervisor(metrics, settings.backoff_max)
        writer = Writer(kube, settings, metrics)
        self.context = LoopContext(index, floors, writer, Markers(index, writer), Scope(index, settings), self.tasks,
                                   metrics, settings)
        self._wakers: list[asyncio.Event] = []
        self.running = False
        self.started = False  # a term has run: the next starts with fresh loops
        self._new_term()

    def _new_term(self) -> None:
        """Loops with nothing remembered: what this replica knew of moves and drains when it
        last led is stale now (another replica led in between)."""
        built = {kind: kind(self.context) for kind in LOOPS}
        self.loops: list[Loop] = [built[kind] for kind in LOOPS if self.settings.drain or kind is not Drain]
        # By name for the status view and tests; drain is built even without --drain, and idles.
        self.drain, self.rebalance = built[Drain], built[Rebalance]
        self.deletion_cost, self.fallback = built[DeletionCost], built[FloorFallback]

    def state_of(self, key: WorkloadKey) -> MoveState | None:
        """What the controller is doing about a workload; None while it does not run here."""
        return self.rebalance.state_of(key) if self.running else None

    async def run(self) -> None:
        """The leader's work; cancelled the moment leadership is lost."""
        await self.index.wait_synced()  # acting on a half-listed cluster would misjudge every floor
        # Nor on a stale one: a leader elected while a watch is down (the API server just
        # came back) waits until every watch is connected again.
        if self.index.freshness.stale(0):
            log.info("controller waiting for every watch to reconnect", extra={"down": self.index.freshness.stale(0)})
        await self.index.freshness.wait_fresh()
        if self.started:
            self._new_term()
        self.started = True
        unsubscribe = self.index.subscribe(self._changed)
        self.running = True
        log.info("controller started", extra={"dry_run": self.settings.dry_run, "drain": self.settings.drain})
        try:
            for loop in self.loops:
                self.tasks.start(loop.name, self._periodic(loop))
            await asyncio.gather(*self.tasks.running())
        finally:
            unsubscribe()
            self.running = False
            self._wakers.clear()
            await self.tasks.stop()
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
