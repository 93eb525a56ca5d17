"""The floor k of a workload: the one place the extender, the controller and the status
view ask, so they can never disagree about it."""

from __future__ import annotations

from . import logs
from .index import Index
from .policy import Floor, compute_floor
from .settings import Settings
from .workloads import WorkloadRecord

log = logs.get("floors")


class Floors:
    def __init__(self, index: Index, settings: Settings):
        self.index = index
        self.default = settings.default_floor
        self.from_max_unavailable = settings.floor_from_max_unavailable
        self._warned = logs.Once()

    def of(self, workload: WorkloadRecord | None, namespace: str, pod_labels: dict) -> Floor:
        """k for a workload; PDBs are matched against pod_labels (the pod's, or its template's)."""
        if workload is None:
            # The watch has not delivered the owner yet: assume the default floor.
            return Floor(self.default, "default (workload not in index yet)")
        floor = compute_floor(
            workload.replicas,
            workload.floor,
            workload.placement,
            self.index.pdbs_selecting(namespace, pod_labels),
            self.default,
            self.from_max_unavailable,
        )
        if floor.problems and self._warned.first((workload.key, floor.problems)):
            log.warning("ignored workload annotation", extra={
                "workload": f"{workload.kind}/{workload.namespace}/{workload.name}", "problems": floor.problems,
            })
        return floor

    def of_workload(self, workload: WorkloadRecord) -> Floor:
        return self.of(workload, workload.namespace, workload.template_labels)
