"""/debug/workloads: per workload R, k and why, replicas by class in the counted revision,
whether the floor is met, and what the controller is doing about it when this replica leads."""

from __future__ import annotations

from typing import Protocol

from .floors import Floors
from .index import Index
from .settings import Settings
from .workloads import WorkloadKey


class Leadership(Protocol):
    @property
    def is_leader(self) -> bool: ...


class ControllerState(Protocol):
    def state_of(self, key: WorkloadKey) -> dict: ...


class Status:
    def __init__(self, index: Index, floors: Floors, settings: Settings):
        self.index = index
        self.floors = floors
        self.excluded = frozenset(settings.excluded_namespaces)
        self.leadership: Leadership | None = None  # the elector, when leader election runs
        self.controller: ControllerState | None = None  # set by the controller while it runs here

    def document(self) -> dict:
        return {
            "leader": self.leadership.is_leader if self.leadership is not None else None,
            "workloads": self.workloads(),
        }

    def workloads(self) -> list[dict]:
        index, controller = self.index, self.controller
        states = []
        for workload in sorted(index.top_level_workloads(), key=lambda w: (w.namespace, w.kind, w.name)):
            if workload.namespace in self.excluded:
                continue
            group = index.current_group(workload)
            floor = self.floors.of_workload(workload)
            counts = index.counts(group)
            on_demand = counts.on_demand if counts else 0
            states.append({
                "kind": workload.kind,
                "namespace": workload.namespace,
                "name": workload.name,
                "replicas": workload.replicas,
                "floor": floor.k,
                "floorSource": floor.source,
                "floorClamp": floor.clamp or None,
                "countedGroup": f"{group.kind}/{group.name}" if group.name else None,
                "onDemand": on_demand,
                "spot": counts.spot if counts else 0,
                "inFlight": index.inflight.on_demand(group),
                "floorMet": on_demand >= floor.k,
                "controller": controller.state_of(workload.key) if controller is not None else None,
            })
        return states
