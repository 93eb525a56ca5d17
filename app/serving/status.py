"""/debug/workloads: per workload R, k and why, replicas by class in the counted revision,
whether the floor is met, and what the controller is doing about it when this replica leads.

At 50,000 pods a document takes tens of milliseconds to build, so the build yields to
the event loop between chunks (scheduler calls must not wait behind it), and one
document serves every request for a second (a flood of requests costs one build)."""

from __future__ import annotations

import asyncio
import time
from typing import Callable, Protocol

from ..decisions.floors import Floors
from ..cluster.index import Index
from ..core.vocabulary import Role
from ..core.settings import Settings
from ..cluster.records import WorkloadKey, WorkloadRecord


class Leadership(Protocol):
    @property
    def is_leader(self) -> bool: ...


class ControllerState(Protocol):
    def state_of(self, key: WorkloadKey) -> dict: ...


CACHE_SECONDS = 1.0
CHUNK = 100  # workloads between two turns of the event loop


class Status:
    def __init__(self, index: Index, floors: Floors, settings: Settings, clock: Callable[[], float] = time.monotonic):
        self.index = index
        self.floors = floors
        self.excluded = frozenset(settings.excluded_namespaces)
        self.clock = clock
        self.leadership: Leadership | None = None  # the elector, when leader election runs
        self.controller: ControllerState | None = None  # set by the controller while it runs here
        self._cached: tuple[float, list[dict]] | None = None
        self._building = asyncio.Lock()

    async def document(self) -> dict:
        """Leadership as it is now, and the workloads at most CACHE_SECONDS old."""
        async with self._building:  # requests arriving during a build wait for it, then share it
            if self._cached is None or self.clock() - self._cached[0] > CACHE_SECONDS:
                states = []
                async for state in self._states():
                    states.append(state)
                self._cached = (self.clock(), states)
        leader = self.leadership.is_leader if self.leadership is not None else None
        return {"leader": leader, "workloads": self._cached[1]}

    def workloads(self) -> list[dict]:
        """The per-workload view, built at once (tests and callers outside the event loop)."""
        return [self._state(w) for w in self._in_view()]

    def _in_view(self) -> list[WorkloadRecord]:
        workloads = sorted(self.index.top_level_workloads(), key=lambda w: (w.namespace, w.kind, w.name))
        return [w for w in workloads if w.namespace not in self.excluded]

    async def _states(self):
        for number, workload in enumerate(self._in_view()):
            if number and number % CHUNK == 0:
                await asyncio.sleep(0)
            yield self._state(workload)

    def _state(self, workload: WorkloadRecord) -> dict:
        index, controller = self.index, self.controller
        group = index.current_group(workload)
        floor = self.floors.of_workload(workload)
        counts = index.counts(group)
        on_demand = counts.on_demand if counts else 0
        roles = index.roles_of_group.get(group, {})
        counted = index.workloads.get(WorkloadKey(*group))
        return {
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
            "floorRolePods": roles.get(Role.FLOOR, 0),
            "spotRolePods": roles.get(Role.SPOT, 0),
            "floorFallback": counted.floor_fallback if counted is not None else None,
            "spotSeek": counted.spot_seek if counted is not None else None,
            "floorMet": on_demand >= floor.k,
            "controller": controller.state_of(workload.key) if controller is not None else None,
        }
