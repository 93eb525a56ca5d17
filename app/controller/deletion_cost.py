"""Deletion cost: keep controller.kubernetes.io/pod-deletion-cost on the pods of kinds
whose ReplicaSets honour it, so a scale-down removes surplus on-demand replicas first,
then spot ones, and keeps the floor."""

from __future__ import annotations

from ..api.kinds import BY_NAME
from ..decisions.moves import deletion_costs
from .context import LoopContext
from .views import workload_view, yield_now_and_then

PATCHES_PER_PASS = 50  # the rest waits for the next pass, so one pass cannot flood the API


class DeletionCost:
    name = "deletion-cost"
    period = 5.0
    gap = 1.0

    def __init__(self, ctx: LoopContext):
        self.index = ctx.index
        self.floors = ctx.floors
        self.scope = ctx.scope
        self.writer = ctx.writer

    async def once(self) -> None:
        budget = PATCHES_PER_PASS
        for number, workload in enumerate(self.index.top_level_workloads()):
            await yield_now_and_then(number)
            if not BY_NAME[workload.kind].deletion_cost or not self.scope.may_move(workload):
                continue
            view = workload_view(self.index, self.floors, workload)
            for uid, cost in deletion_costs(view.pods, view.floor).items():
                pod = self.index.pod(uid)
                if pod is None or pod.deletion_cost == str(cost) or budget <= 0:
                    continue
                budget -= 1
                await self.writer.set_deletion_cost(pod, cost)
