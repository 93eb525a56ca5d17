"""Rebalance: repair broken floors and move surplus on-demand replicas back to spot, one
replica at a time per workload, with cooldown, backoff and a global rate limit. The
decisions come from app/decisions/moves.py; this loop keeps the bookkeeping.

A move back to spot while no spot node has room is a spot seek (seeks.py). A seek whose
replacement did not land on spot backs the workload's next move off, like any failed
move."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Callable

from ..cluster.records import GroupKey, WorkloadKey, WorkloadRecord
from ..core import logs
from ..core.vocabulary import Capacity
from ..decisions.moves import (
    FLOOR_REPAIR,
    RETURN_TO_SPOT,
    Hysteresis,
    Move,
    MoveHistory,
    MoveState,
    Moving,
    RateLimit,
    Skip,
    WorkloadView,
    plan_move,
)
from ..decisions.policy import seeks_spot
from .context import LoopContext
from .seeks import SpotSeeks
from .views import has_room, workload_view, yield_now_and_then
from .writer import Result, event_reason, workload_ref

log = logs.get("rebalance")


@dataclass
class MoveInFlight:
    uid: str
    cause: str
    on_demand_before: int
    floor_pods_before: int | None = None  # with roles: floor pods when it was evicted
    seek: GroupKey | None = None  # a spot seek: the group whose marker is set


class Rebalance:
    name = "rebalance"
    gap = 1.0  # least time between two passes woken by changes

    def __init__(self, ctx: LoopContext, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time):
        settings = ctx.settings
        self.index = ctx.index
        self.floors = ctx.floors
        self.writer = ctx.writer
        self.scope = ctx.scope
        self.metrics = ctx.metrics
        self.markers = ctx.markers
        self.clock = clock
        self.wall = wall
        self.seek_mode = settings.seek_spot
        self.seeks = SpotSeeks(ctx, self.name, wall=lambda: self.wall())  # read through: tests move the clock
        self.period = settings.rebalance_interval
        self.hysteresis = Hysteresis(settings.move_cooldown, settings.move_backoff_max)
        self.rate_limit = RateLimit(settings.max_moves_per_minute)
        self.moving: dict[WorkloadKey, MoveInFlight] = {}
        self.history: dict[WorkloadKey, MoveHistory] = {}
        self.reported_skips: dict[WorkloadKey, str] = {}

    async def once(self) -> None:
        below = 0
        await self.seeks.expire()
        seek = self.seeks_spot()
        for number, workload in enumerate(self.index.top_level_workloads()):
            await yield_now_and_then(number)
            if not self.scope.may_move(workload):
                continue
            view = workload_view(self.index, self.floors, workload)
            below += len(view.on_demand) < view.floor
            if await self._move_pending(workload.key, view):
                continue
            spot_side = self.floors.spot_constraints(workload.constraints, view.uses_roles)
            decision = plan_move(view, lambda capacity, pod: has_room(
                self.index, capacity, pod, spot_side if capacity == Capacity.SPOT else workload.constraints,
                workload.needs, workload.template_labels), seek)
            if workload.needs.affinity or workload.needs.anti_affinity:
                await asyncio.sleep(0)  # its room check scanned the cluster's pods: let calls in
            if isinstance(decision, Move) and decision.cause == FLOOR_REPAIR and self._falling_back(workload):
                decision = Skip(FLOOR_REPAIR, "its floor pods fell back to spot: waiting for on-demand room")
            if isinstance(decision, Move) and decision.cause == RETURN_TO_SPOT and self._draining(workload, view):
                decision = Skip(RETURN_TO_SPOT, "a drain is in progress: replicas on nodes going away, or a surge")
            if decision is None:
                self.reported_skips.pop(workload.key, None)
            elif isinstance(decision, Skip):
                await self._report_skip(workload, decision)
            else:
                await self._move(workload, view, decision)
        self.metrics.below_floor.set(below)
        self._forget_deleted()

    def seeks_spot(self) -> bool:
        """Whether an autoscaler adds spot nodes for pods that require spot (--seek-spot)."""
        return seeks_spot(self.seek_mode, self.index.autoscaled_nodes)

    def _draining(self, workload: WorkloadRecord, view) -> bool:
        """Some replica is on a node going away, or a surge stands in for some: a move now
        would cost a replica the drain is counting on."""
        going_away = self.index.going_away()
        return any(p.node in going_away for p in view.pods) or bool(self.index.surges_of(workload.key))

    def _falling_back(self, workload: WorkloadRecord) -> bool:
        """Its counted revision's floor pods are admitted as spot (fallback.py) until on-demand has room."""
        group = self.index.workload(self.index.current_group(workload))
        return group is not None and group.floor_fallback is not None

    def _forget_deleted(self) -> None:
        """Drop what is kept about workloads that no longer exist: names churn for good."""
        for table in (self.history, self.reported_skips, self.moving):
            for key in [k for k in table if not self.index.has_workload(k)]:
                del table[key]

    def state_of(self, key: WorkloadKey) -> MoveState:
        """What the controller is doing about a workload, for /debug/workloads."""
        move = self.moving.get(key)
        history = self.history.get(key, MoveHistory())
        return MoveState(
            moving=Moving(move.cause, move.uid) if move else None,
            last_skip=self.reported_skips.get(key),
            failed_moves=history.failures,
            last_failure=history.last_failure or None,
            next_move_in_seconds=round(self.hysteresis.wait_left(history, self.clock()), 1),
        )

    async def _move_pending(self, key: WorkloadKey, view: WorkloadView) -> bool:
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
        if move.seek is not None:
            await self.seeks.end(move.seek, placed=len(view.on_demand) < move.on_demand_before)
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
        history.last_failure = _failure(move.cause) if failed else ""
        if failed:
            self.metrics.moves_failed.labels(move.cause).inc()
            wait = self.hysteresis.wait_left(history, self.clock())
            log.warning("move failed: backing off", extra={
                "workload": key.name, "namespace": key.namespace, "cause": move.cause,
                "failures": history.failures, "why": history.last_failure, "next_move_in_s": round(wait)})
        if failed and move.seek is not None:
            history.last_move = self.clock()  # a seek fails at its timeout: back off from then
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
        pod = self.index.pod(move.pod.uid)
        if pod is None:
            return
        group = self.index.current_group(workload)
        if move.seek and not await self.seeks.start(group):
            return
        result = await self.writer.evict(pod, move.cause, f"{view.name}: {move.reason}")
        if result.done:
            history.last_move = now
            self.moving[workload.key] = MoveInFlight(pod.uid, move.cause, len(view.on_demand),
                                                     len(view.floor_role) if view.uses_roles else None,
                                                     group if move.seek else None)
            self.reported_skips.pop(workload.key, None)
            return
        if move.seek:
            await self.seeks.end(group, placed=None)
        if result is Result.BLOCKED:
            await self._report_skip(workload, Skip(move.cause, "the eviction was refused (PodDisruptionBudget)"))

    async def _report_skip(self, workload: WorkloadRecord, skip: Skip) -> None:
        """Count every skip; an Event only when the reason changes, not every pass."""
        self.metrics.moves_skipped.labels(skip.cause, skip.reason).inc()
        if self.reported_skips.get(workload.key) == skip.reason:
            return
        self.reported_skips[workload.key] = skip.reason
        log.info("move skipped", extra={"workload": workload.name, "namespace": workload.namespace,
                                        "cause": skip.cause, "reason": skip.reason})
        await self.writer.event(workload_ref(workload), "Normal", event_reason("Skipped", skip.cause), skip.reason)


def _failure(cause: str) -> str:
    if cause == RETURN_TO_SPOT:
        return "the replacement landed on on-demand again"
    return "the replacement did not become a floor pod on on-demand"
