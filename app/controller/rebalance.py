"""Rebalance: repair broken floors and move surplus on-demand replicas back to spot, one
replica at a time per workload, with cooldown, backoff and a global rate limit. The
decisions come from app/moves.py; this loop keeps the bookkeeping."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from .. import logs
from ..floors import Floors
from ..index import Index
from ..metrics import Metrics
from ..moves import (
    FLOOR_REPAIR, RETURN_TO_SPOT, Hysteresis, Move, MoveHistory, RateLimit, Skip, WorkloadView, plan_move,
)
from ..settings import Settings
from ..workloads import WorkloadKey, WorkloadRecord
from .evictor import Evictor, Result, event_reason, workload_ref
from .scope import Scope
from .views import has_room, workload_view, yield_now_and_then

log = logs.get("rebalance")


@dataclass
class MoveInFlight:
    uid: str
    cause: str
    on_demand_before: int
    floor_pods_before: int | None = None  # with roles: floor pods when it was evicted


class Rebalance:
    name = "rebalance"
    gap = 1.0  # least time between two passes woken by changes

    def __init__(self, index: Index, floors: Floors, evictor: Evictor, scope: Scope, settings: Settings,
                 metrics: Metrics, clock: Callable[[], float] = time.monotonic):
        self.index = index
        self.floors = floors
        self.evictor = evictor
        self.scope = scope
        self.metrics = metrics
        self.clock = clock
        self.period = settings.rebalance_interval
        self.hysteresis = Hysteresis(settings.move_cooldown, settings.move_backoff_max)
        self.rate_limit = RateLimit(settings.max_moves_per_minute)
        self.moving: dict[WorkloadKey, MoveInFlight] = {}
        self.history: dict[WorkloadKey, MoveHistory] = {}
        self.reported_skips: dict[WorkloadKey, str] = {}

    async def once(self) -> None:
        below = 0
        for number, workload in enumerate(self.index.top_level_workloads()):
            await yield_now_and_then(number)
            if not self.scope.may_move(workload):
                continue
            view = workload_view(self.index, self.floors, workload)
            below += len(view.on_demand) < view.floor
            if self._move_pending(workload.key, view):
                continue
            decision = plan_move(view, lambda capacity, pod: has_room(self.index, capacity, pod, workload.constraints))
            if isinstance(decision, Move) and decision.cause == FLOOR_REPAIR and self._falling_back(workload):
                decision = Skip(FLOOR_REPAIR, "its floor pods fell back to spot: waiting for on-demand room")
            if decision is None:
                self.reported_skips.pop(workload.key, None)
            elif isinstance(decision, Skip):
                await self._report_skip(workload, decision)
            else:
                await self._move(workload, view, decision)
        self.metrics.below_floor.set(below)
        self._forget_deleted()

    def _falling_back(self, workload: WorkloadRecord) -> bool:
        """Its counted revision's floor pods are admitted as spot (fallback.py) until on-demand has room."""
        group = self.index.workload_table.records.get(WorkloadKey(*self.index.current_group(workload)))
        return group is not None and group.floor_fallback is not None

    def _forget_deleted(self) -> None:
        """Drop what is kept about workloads that no longer exist: names churn for good."""
        live = self.index.workloads
        for table in (self.history, self.reported_skips, self.moving):
            for key in [k for k in table if k not in live]:
                del table[key]

    def state_of(self, key: WorkloadKey) -> dict:
        """What the controller is doing about a workload, for /debug/workloads."""
        move = self.moving.get(key)
        history = self.history.get(key, MoveHistory())
        return {
            "moving": {"cause": move.cause, "pod": move.uid} if move else None,
            "lastSkip": self.reported_skips.get(key),
            "failedMoves": history.failures,
            "nextMoveInSeconds": round(self.hysteresis.wait_left(history, self.clock()), 1),
        }

    def _move_pending(self, key: WorkloadKey, view: WorkloadView) -> bool:
        """One move at a time: the last one counts as done once its pod is gone and every
        replica is ready again."""
        move = self.moving.get(key)
        if move is None:
            return False
        gone = all(p.uid != move.uid for p in view.pods)
        settled = gone and len(view.pods) == view.replicas and all(p.ready for p in view.pods)
        if not settled:
            return True
        del self.moving[key]
        # A move failed if the replacement landed where the evicted replica was: back to
        # on-demand after a return to spot, or on spot after a floor repair (possible when
        # kube-scheduler does not call the extender). Failures back the next move off.
        # With roles, a floor repair succeeds when the replacement was admitted as a floor pod.
        on_demand_now = len(view.on_demand)
        history = self.history.setdefault(key, MoveHistory())
        if move.cause == RETURN_TO_SPOT:
            failed = on_demand_now >= move.on_demand_before
        elif move.floor_pods_before is not None:
            failed = len(view.floor_role) <= move.floor_pods_before
        else:
            failed = on_demand_now <= move.on_demand_before
        history.failures = history.failures + 1 if failed else 0
        return False

    async def _move(self, workload: WorkloadRecord, view: WorkloadView, move: Move) -> None:
        now = self.clock()
        history = self.history.setdefault(workload.key, MoveHistory())
        # Moves back to spot always keep the cooldown; a floor repair is urgent and waits
        # only once one has failed.
        if move.cause == RETURN_TO_SPOT or history.failures:
            if self.hysteresis.wait_left(history, now) > 0:
                self.metrics.moves_deferred.labels("backoff" if history.failures else "cooldown").inc()
                return
        if not self.rate_limit.allow(now):
            self.metrics.moves_deferred.labels("rate-limit").inc()
            return
        pod = self.index.pods.get(move.pod.uid)
        if pod is None:
            return
        result = await self.evictor.evict(pod, move.cause, f"{view.name}: {move.reason}")
        if result.done:
            history.last_move = now
            self.moving[workload.key] = MoveInFlight(pod.uid, move.cause, len(view.on_demand),
                                                     len(view.floor_role) if view.uses_roles else None)
            self.reported_skips.pop(workload.key, None)
        elif result is Result.BLOCKED:
            await self._report_skip(workload, Skip(move.cause, "the eviction was refused (PodDisruptionBudget)"))

    async def _report_skip(self, workload: WorkloadRecord, skip: Skip) -> None:
        """Count every skip; an Event only when the reason changes, not every pass."""
        self.metrics.moves_skipped.labels(skip.cause, skip.reason).inc()
        if self.reported_skips.get(workload.key) == skip.reason:
            return
        self.reported_skips[workload.key] = skip.reason
        log.info("move skipped", extra={"workload": workload.name, "namespace": workload.namespace,
                                        "cause": skip.cause, "reason": skip.reason})
        await self.evictor.event(workload_ref(workload), "Normal", event_reason("Skipped", skip.cause), skip.reason)
