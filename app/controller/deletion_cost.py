"""Deletion cost: keep controller.kubernetes.io/pod-deletion-cost on the pods of kinds
whose ReplicaSets honour it, so a scale-down removes surplus on-demand replicas first,
then spot ones, and keeps the floor."""

from __future__ import annotations

from ..core import logs
from ..api import ApiError, Kube
from ..decisions.floors import Floors
from ..cluster.index import Index
from ..api.kinds import BY_NAME
from ..core.metrics import Metrics
from ..decisions.moves import deletion_costs
from ..core.settings import Settings
from ..cluster.records import PodRecord
from .scope import Scope
from .views import workload_view, yield_now_and_then
from ..core.vocabulary import DELETION_COST

log = logs.get("deletion-cost")

PATCHES_PER_PASS = 50  # the rest waits for the next pass, so one pass cannot flood the API


class DeletionCost:
    name = "deletion-cost"
    period = 5.0
    gap = 1.0

    def __init__(self, kube: Kube, index: Index, floors: Floors, scope: Scope, settings: Settings, metrics: Metrics):
        self.kube = kube
        self.index = index
        self.floors = floors
        self.scope = scope
        self.metrics = metrics
        self.dry_run = settings.dry_run
        self.timeout = settings.request_timeout

    async def once(self) -> None:
        budget = PATCHES_PER_PASS
        for number, workload in enumerate(self.index.top_level_workloads()):
            await yield_now_and_then(number)
            if not BY_NAME[workload.kind].deletion_cost or not self.scope.may_move(workload):
                continue
            view = workload_view(self.index, self.floors, workload)
            for uid, cost in deletion_costs(view.pods, view.floor).items():
                pod = self.index.pods.get(uid)
                if pod is None or pod.deletion_cost == str(cost) or budget <= 0:
                    continue
                budget -= 1
                await self._set(pod, cost)

    async def _set(self, pod: PodRecord, cost: int) -> None:
        if self.dry_run:
            self.metrics.cost_patches.labels("dry-run").inc()
            return
        try:
            await self.kube.annotate_pod(pod.namespace, pod.name, {DELETION_COST: str(cost)}, self.timeout)
            self.metrics.cost_patches.labels("patched").inc()
        except ApiError as exc:
            self.metrics.cost_patches.labels("error").inc()
            log.warning("deletion cost patch failed", extra={"pod": f"{pod.namespace}/{pod.name}", "error": str(exc)})
