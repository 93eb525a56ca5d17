"""A workload as the controller's pure decisions (app/decisions/moves.py) see it."""

from __future__ import annotations

import asyncio
from typing import Mapping

from ..api.kinds import STATEFULSET
from ..cluster.constraints import NONE, Constraints
from ..cluster.index import Index
from ..cluster.needs import NO_NEEDS, Needs
from ..cluster.records import WorkloadRecord
from ..decisions.floors import Floors
from ..decisions.moves import Replica, WorkloadView
from ..decisions.room import Fit, Pod, find_room


def workload_view(index: Index, floors: Floors, workload: WorkloadRecord) -> WorkloadView:
    """The live pods of the counted revision, R, k, and whether every PDB allows a disruption."""
    group = index.current_group(workload)
    pods = []
    for pod in index.live_pods(group):
        node = index.node(pod.node)
        # A pod whose node vanished is not serving, whatever its last status said.
        pods.append(Replica(pod.uid, pod.namespace, pod.name, pod.node, node.effective if node else "",
                            pod.ready and node is not None, pod.cpu, pod.memory, pod.created, pod.role))
    pdbs = index.pdbs_selecting(workload.namespace, workload.template_labels)
    return WorkloadView(
        f"{workload.kind}/{workload.namespace}/{workload.name}",
        workload.replicas,
        floors.of_workload(workload, roles=any(p.role for p in pods)).k,
        tuple(sorted(pods, key=lambda p: p.name)),
        all(p.disruptions_allowed is not None and p.disruptions_allowed > 0 for p in pdbs),
        workload.ordinal_start if workload.kind == STATEFULSET else None,
    )


async def yield_now_and_then(number: int, every: int = 100) -> None:
    """Let the event loop run between chunks of a pass: passes share the process with
    scheduler calls, which must not wait for a sweep over thousands of workloads."""
    if number and number % every == 0:
        await asyncio.sleep(0)


def has_room(index: Index, capacity: str, pod: Replica, constraints: Constraints = NONE,
             needs: Needs = NO_NEEDS, labels: Mapping[str, str] | None = None) -> Fit:
    """Whether some node of that class other than the pod's own could take its replacement
    (room.find_room): the template's constraints, needs and labels, this pod's own claims."""
    return find_room(index, capacity, Pod(pod.cpu, pod.memory, constraints, needs, pod.namespace, pod.name,
                                          pod.uid, labels or {}), besides=pod.node)
