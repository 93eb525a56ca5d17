"""The leader's loops, reading the same index as the extender.

- drain: evict managed pods from spot nodes that are going away, at once, with
  bounded concurrency, retrying while a PodDisruptionBudget says no;
- rebalance: repair broken floors and move surplus on-demand replicas back to spot,
  one replica at a time per workload, with cooldown, backoff and a global rate limit;
- deletion cost: keep pod-deletion-cost on Deployment pods so a scale-down keeps the floor.
Decisions come from app.moves; this module only does the I/O and the bookkeeping.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Awaitable, Callable

from . import logs
from .backoff import Backoff
from .extender import Extender
from .index import Index
from .kube import Kube, KubeError
from .metrics import Metrics
from .moves import (
    RECLAIM, RETURN_TO_SPOT, Hysteresis, Move, MoveHistory, RateLimit, Replica, Skip, WorkloadView,
    deletion_costs, drainable, plan_move,
)
from .nodes import SPOT
from .settings import Settings
from .workloads import DELETION_COST, DEPLOYMENT, PodRecord, WorkloadKey, WorkloadRecord

log = logs.get("controller")

DRAIN_PERIOD = 1.0  # the drain also wakes on every index change
COST_PERIOD = 5.0
# Least time between two passes of a loop woken by changes: a busy cluster changes
# all the time, and passes share the process with latency-sensitive extender calls.
DRAIN_GAP = 0.05
PASS_GAP = 1.0
PATCHES_PER_PASS = 50


@dataclass
class MoveInFlight:
    uid: str
    cause: str
    on_demand_before: int


class Controller:
    def __init__(self, kube: Kube, index: Index, extender: Extender, settings: Settings, metrics: Metrics,
                 clock: Callable[[], float] = time.monotonic):
        self.kube = kube
        self.index = index
        self.extender = extender
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.dry_run = settings.dry_run
        self.timeout = settings.request_timeout
        self.excluded = frozenset(settings.excluded_namespaces)
        self.included = frozenset(settings.controller_namespaces)
        self.hysteresis = Hysteresis(settings.move_cooldown, settings.move_backoff_max)
        self.rate_limit = RateLimit(settings.max_moves_per_minute)
        self.evictions = asyncio.Semaphore(settings.eviction_concurrency)
        self.evicting: dict[str, asyncio.Task] = {}
        self.moving: dict[WorkloadKey, MoveInFlight] = {}
        self.history: dict[WorkloadKey, MoveHistory] = {}
        self.reported_skips: dict[WorkloadKey, str] = {}
        self._wakers: list[asyncio.Event] = []

    # ---- running -------------------------------------------------------------------

    async def run(self) -> None:
        """The leader's work; cancelled the moment leadership is lost."""
        while not self.index.ready:  # acting on a half-listed cluster would misjudge every floor
            await asyncio.sleep(0.2)
        self.index.on_change = self._changed
        log.info("controller started", extra={"dry_run": self.dry_run, "drain": self.settings.drain})
        try:
            await asyncio.gather(
                self._loop("drain", self.drain_once, DRAIN_PERIOD, DRAIN_GAP),
                self._loop("rebalance", self.rebalance_once, self.settings.rebalance_interval, PASS_GAP),
                self._loop("deletion-cost", self.costs_once, COST_PERIOD, PASS_GAP),
            )
        finally:
            self.index.on_change = None
            for task in self.evicting.values():
                task.cancel()
            await asyncio.gather(*self.evicting.values(), return_exceptions=True)
            log.info("controller stopped")

    def _changed(self, kind: str) -> None:
        for waker in self._wakers:
            waker.set()

    async def _loop(self, name: str, body: Callable[[], Awaitable[None]], period: float, gap: float) -> None:
        """Run body every period and on index changes, at most once per gap; errors are
        logged, counted and backed off."""
        wake = asyncio.Event()
        self._wakers.append(wake)
        backoff = Backoff(initial=1.0, maximum=30.0)
        while True:
            try:
                await body()
                backoff.reset()
                delay = period
            except Exception:  # noqa: BLE001 - a loop must survive any failure
                log.exception("controller loop failed", extra={"loop": name})
                self.metrics.loop_errors.labels(name).inc()
                delay = backoff.next_delay()
            await asyncio.sleep(gap)
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), max(0.0, delay - gap))
            except TimeoutError:
                pass

    def _acts_in(self, namespace: str) -> bool:
        return namespace not in self.excluded and (not self.included or namespace in self.included)

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

    # ---- drain ---------------------------------------------------------------------

    async def drain_once(self) -> None:
        if not self.settings.drain:
            return
        index = self.index
        for node, reason in list(index.going_away.items()):
            record = index.nodes.get(node)
            if record is None or record.effective != SPOT:
                continue
            for uid in list(index.pods_on_node(node)):
                pod = index.pods.get(uid)
                if pod is None or uid in self.evicting or not self._may_touch(pod):
                    continue
                if not drainable(pod.owner_kind, pod.mirror, pod.terminating, pod.group is not None):
                    continue
                self.evicting[uid] = asyncio.create_task(self._drain_pod(pod, reason), name=f"evict-{uid}")

    def _may_touch(self, pod: PodRecord) -> bool:
        if not self._acts_in(pod.namespace) or pod.group is None:
            return False
        workload = self.index.workload_of(pod.group)
        return workload is None or workload.rebalance

    async def _drain_pod(self, pod: PodRecord, reason: str) -> None:
        """Evict until the pod is gone, the node is no longer going away, or it is gone itself."""
        backoff = Backoff(initial=0.5, maximum=15.0)
        try:
            while self._still_draining(pod):
                result = await self._evict(pod, RECLAIM, f"spot node {pod.node} is going away: {reason}")
                if result == "dry-run":
                    return
                if result in ("evicted", "gone"):
                    # Hold the claim until the watch shows the pod terminating, or a pass
                    # in between would evict it a second time.
                    await self._until_seen_leaving(pod)
                    return
                await asyncio.sleep(backoff.next_delay())
        finally:
            self.evicting.pop(pod.uid, None)

    async def _until_seen_leaving(self, pod: PodRecord, timeout: float = 30.0) -> None:
        deadline = self.clock() + timeout
        while self.clock() < deadline:
            current = self.index.pods.get(pod.uid)
            if current is None or current.terminating:
                return
            await asyncio.sleep(0.05)

    def _still_draining(self, pod: PodRecord) -> bool:
        current = self.index.pods.get(pod.uid)
        return current is not None and not current.terminating and pod.node in self.index.going_away

    async def _evict(self, pod: PodRecord, cause: str, reason: str) -> str:
        """One eviction attempt; returns evicted, gone, blocked, error or dry-run."""
        ref = f"{pod.namespace}/{pod.name}"
        if self.dry_run:
            log.info("would evict", extra={"pod": ref, "cause": cause, "reason": reason})
            self.metrics.evictions.labels(cause, "dry-run").inc()
            return "dry-run"
        async with self.evictions:
            try:
                await self.kube.evict(pod.namespace, pod.name, self.timeout)
                result = "evicted"
            except KubeError as exc:
                # 429: a PDB (or rate limiting) says not now; 404: already gone.
                result = {404: "gone", 429: "blocked"}.get(exc.status, "error")
                if result == "error":
                    log.warning("eviction failed", extra={"pod": ref, "cause": cause, "error": str(exc)})
            except (OSError, TimeoutError) as exc:
                result = "error"
                log.warning("eviction failed", extra={"pod": ref, "cause": cause, "error": repr(exc)})
        self.metrics.evictions.labels(cause, result).inc()
        if result == "evicted":
            log.info("evicted", extra={"pod": ref, "cause": cause, "reason": reason})
            await self._event(pod, "Normal", f"Evicted{_title(cause)}", reason)
        elif result == "blocked":
            log.info("eviction blocked, will retry", extra={"pod": ref, "cause": cause})
        return result

    # ---- rebalance -----------------------------------------------------------------

    async def rebalance_once(self) -> None:
        below = 0
        for number, workload in enumerate(self.index.top_level_workloads()):
            await _yield_now_and_then(number)
            if not self._acts_in(workload.namespace) or not workload.rebalance:
                continue
            view = self.view(workload)
            below += len(view.on_demand) < view.floor
            if self._move_pending(workload.key, view):
                continue
            decision = plan_move(view, self.has_room)
            if decision is None:
                self.reported_skips.pop(workload.key, None)
            elif isinstance(decision, Skip):
                await self._report_skip(workload, decision)
            else:
                await self._move(workload, view, decision)
        self.metrics.below_floor.set(below)

    def view(self, workload: WorkloadRecord) -> WorkloadView:
        index = self.index
        group = index.current_group(workload)
        pods = []
        for uid in index.pods_of_group.get(group, ()):
            pod = index.pods[uid]
            if pod.terminating:
                continue
            node = index.nodes.get(pod.node)
            # A pod whose node vanished is not serving, whatever its last status said.
            pods.append(Replica(pod.uid, pod.namespace, pod.name, pod.node, node.effective if node else "",
                                pod.ready and node is not None, pod.cpu, pod.memory, pod.created))
        pdbs = index.pdbs_selecting(workload.namespace, workload.template_labels)
        floor = self.extender.floor_of(workload, workload.namespace, workload.template_labels)
        return WorkloadView(
            f"{workload.kind}/{workload.namespace}/{workload.name}",
            workload.replicas,
            floor.k,
            tuple(sorted(pods, key=lambda p: p.name)),
            all(p.disruptions_allowed is not None and p.disruptions_allowed > 0 for p in pdbs),
        )

    def has_room(self, capacity: str, pod: Replica) -> bool:
        """Some node of that class, not going away and not the pod's own, fits its requests."""
        index = self.index
        for name, node in index.nodes.items():
            if node.effective != capacity or name == pod.node or name in index.going_away:
                continue
            cpu, memory = index.requested.get(name, (0, 0))
            if node.cpu - cpu >= pod.cpu and node.memory - memory >= pod.memory:
                return True
        return False

    def _move_pending(self, key: WorkloadKey, view: WorkloadView) -> bool:
        """One move at a time: the last one counts as done once its pod is gone and every
        replica is ready again. A return to spot that did not lower o is a failure."""
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
        on_demand_now = len(view.on_demand)
        history = self.history.setdefault(key, MoveHistory())
        if move.cause == RETURN_TO_SPOT:
            failed = on_demand_now >= move.on_demand_before
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
            wait = self.hysteresis.wait_left(history, now)
            if wait > 0:
                self.metrics.moves_deferred.labels("backoff" if history.failures else "cooldown").inc()
                return
        if not self.rate_limit.allow(now):
            self.metrics.moves_deferred.labels("rate-limit").inc()
            return
        pod = self.index.pods.get(move.pod.uid)
        if pod is None:
            return
        result = await self._evict(pod, move.cause, f"{view.name}: {move.reason}")
        if result in ("evicted", "gone"):
            history.last_move = now
            self.moving[workload.key] = MoveInFlight(pod.uid, move.cause, len(view.on_demand))
            self.reported_skips.pop(workload.key, None)
        elif result == "blocked":
            await self._report_skip(workload, Skip(move.cause, "the eviction was refused (PodDisruptionBudget)"))

    async def _report_skip(self, workload: WorkloadRecord, skip: Skip) -> None:
        """Count every skip; an Event only when the reason changes, not every pass."""
        self.metrics.moves_skipped.labels(skip.cause, skip.reason).inc()
        if self.reported_skips.get(workload.key) == skip.reason:
            return
        self.reported_skips[workload.key] = skip.reason
        log.info("move skipped", extra={"workload": workload.name, "namespace": workload.namespace,
                                        "cause": skip.cause, "reason": skip.reason})
        await self._event(workload, "Normal", f"Skipped{_title(skip.cause)}", skip.reason)

    # ---- deletion cost -------------------------------------------------------------

    async def costs_once(self) -> None:
        budget = PATCHES_PER_PASS
        for number, workload in enumerate(self.index.top_level_workloads()):
            await _yield_now_and_then(number)
            if workload.kind != DEPLOYMENT or not self._acts_in(workload.namespace) or not workload.rebalance:
                continue
            view = self.view(workload)
            for uid, cost in deletion_costs(view.pods, view.floor).items():
                pod = self.index.pods.get(uid)
                if pod is None or pod.deletion_cost == str(cost) or budget <= 0:
                    continue
                budget -= 1
                await self._set_cost(pod, cost)

    async def _set_cost(self, pod: PodRecord, cost: int) -> None:
        if self.dry_run:
            self.metrics.cost_patches.labels("dry-run").inc()
            return
        try:
            await self.kube.annotate_pod(pod.namespace, pod.name, {DELETION_COST: str(cost)}, self.timeout)
            self.metrics.cost_patches.labels("patched").inc()
        except (KubeError, OSError, TimeoutError) as exc:
            self.metrics.cost_patches.labels("error").inc()
            log.warning("deletion cost patch failed", extra={"pod": f"{pod.namespace}/{pod.name}", "error": str(exc)})

    # ---- events --------------------------------------------------------------------

    async def _event(self, obj: PodRecord | WorkloadRecord, kind: str, reason: str, message: str) -> None:
        """A Kubernetes Event on the pod or workload; failing to write one is logged, not fatal."""
        if self.dry_run:
            return
        involved = (
            {"kind": "Pod", "apiVersion": "v1", "uid": obj.uid}
            if isinstance(obj, PodRecord)
            else {"kind": obj.kind, "apiVersion": "apps/v1"}
        )
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{obj.name}.", "namespace": obj.namespace},
            "involvedObject": {**involved, "name": obj.name, "namespace": obj.namespace},
            "reason": reason,
            "message": message[:1024],
            "type": kind,
            "source": {"component": "spot-extender"},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self.kube.post_event(obj.namespace, event, self.timeout)
        except (KubeError, OSError, TimeoutError) as exc:
            self.metrics.loop_errors.labels("events").inc()
            log.warning("event not written", extra={"reason": reason, "error": str(exc)})


async def _yield_now_and_then(number: int, every: int = 100) -> None:
    """Let the event loop run between chunks of a pass: passes share the process with
    scheduler calls, which must not wait for a sweep over thousands of workloads."""
    if number and number % every == 0:
        await asyncio.sleep(0)


def _title(cause: str) -> str:
    """reclaim -> Reclaim, return-to-spot -> ReturnToSpot: an Event reason is CamelCase."""
    return "".join(part.capitalize() for part in cause.split("-"))
