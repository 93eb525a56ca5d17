"""/debug/workloads: per workload R, k and why, replicas by class in the counted revision,
whether the floor is met, and what the controller is doing about it when this replica leads.
Each workload is a WorkloadState: the fleet metrics (fleet.py) and `spot-extender status`
(status_table.py) read its fields, and its to_json() is what /debug/workloads serves.

At 50,000 pods a document takes tens of milliseconds to build, so the build yields to
the event loop between chunks (scheduler calls must not wait behind it), and one build
serves every request, /debug/workloads and /metrics, for a second (a flood of requests
costs one build)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, fields
from typing import Callable, Iterable, Protocol, TypeVar

from ..cluster.index import Index
from ..cluster.records import GroupKey, WorkloadKey, WorkloadRecord
from ..core.settings import Settings
from ..core.vocabulary import Role
from ..decisions.floors import Floors
from ..decisions.moves import MoveState, json_field


class Leadership(Protocol):
    @property
    def is_leader(self) -> bool: ...


class ControllerState(Protocol):
    def state_of(self, key: WorkloadKey) -> MoveState | None:
        """What the controller is doing about the workload; None while it does not run here."""


CACHE_SECONDS = 1.0
CHUNK = 100  # workloads between two turns of the event loop


_REQUIRED = object()


def _key(json_key: str, *types: type, missing=_REQUIRED):
    """A field's key in the JSON document and the JSON types it may hold there; `missing`:
    its value in a document without the key (an older server's)."""
    metadata = {"json": json_key, "types": types, "missing": missing}
    return field(metadata=metadata) if missing is _REQUIRED else field(default=missing, metadata=metadata)


_TEXT, _MAYBE_TEXT, _COUNT = (str,), (str, type(None)), (int,)


@dataclass(frozen=True, slots=True)
class WorkloadState:
    """One workload as /debug/workloads shows it; to_json() is that JSON, key for key."""

    kind: str = _key("kind", *_TEXT)
    namespace: str = _key("namespace", *_TEXT)
    name: str = _key("name", *_TEXT)
    replicas: int = _key("replicas", *_COUNT)  # R
    floor: int = _key("floor", *_COUNT)  # k
    floor_source: str = _key("floorSource", *_TEXT)  # why k has this value
    # why k was lowered or raised to what the pods' constraints allow
    floor_clamp: str | None = _key("floorClamp", *_MAYBE_TEXT)
    # kind/name of the revision whose pods count, None before it exists
    counted_group: str | None = _key("countedGroup", *_MAYBE_TEXT)
    on_demand: int = _key("onDemand", *_COUNT)  # replicas of the counted revision on on-demand nodes
    spot: int = _key("spot", *_COUNT)
    in_flight: int = _key("inFlight", *_COUNT)  # pods of the counted revision held for on-demand, not yet seen bound
    floor_role_pods: int = _key("floorRolePods", *_COUNT)
    spot_role_pods: int = _key("spotRolePods", *_COUNT)
    floor_fallback: str | None = _key("floorFallback", *_MAYBE_TEXT)  # the counted revision's marker
    spot_seek: str | None = _key("spotSeek", *_MAYBE_TEXT)  # the counted revision's marker
    floor_met: bool = _key("floorMet", bool)
    # None unless the controller runs in this process
    controller: MoveState | None = _key("controller", dict, type(None))
    # A surge in progress (controller/surge.py): its live pods and those of them Ready; 0 when none.
    surge_pods: int = _key("surgePods", *_COUNT, missing=0)
    surge_ready: int = _key("surgeReady", *_COUNT, missing=0)

    def to_json(self) -> dict:
        document = {f.metadata["json"]: getattr(self, f.name) for f in _FIELDS}
        if self.controller is not None:
            document["controller"] = self.controller.to_json()
        return document

    @classmethod
    def from_json(cls, document: object) -> WorkloadState:
        """The inverse of to_json, for states read from a running instance; ValueError when
        the document is not one. Keys it does not know are left alone (a newer server's)."""
        if not isinstance(document, dict):
            raise ValueError(f"a workload state is a JSON object, not {type(document).__name__}")
        try:
            values = {f.name: f.metadata["missing"] if f.metadata["json"] not in document
                      and f.metadata["missing"] is not _REQUIRED
                      else json_field(document, f.metadata["json"], *f.metadata["types"]) for f in _FIELDS}
            if values["controller"] is not None:
                try:
                    values["controller"] = MoveState.from_json(values["controller"])
                except ValueError as exc:
                    raise ValueError(f"'controller': {exc}") from None
        except ValueError as exc:
            namespace, name = document.get("namespace"), document.get("name")
            which = f" {namespace}/{name}" if isinstance(namespace, str) and isinstance(name, str) else ""
            raise ValueError(f"not a workload state{which}: {exc}") from None
        return cls(**values)


_FIELDS = fields(WorkloadState)


class Status:
    def __init__(self, index: Index, floors: Floors, settings: Settings, leadership: Leadership | None = None,
                 controller: ControllerState | None = None, clock: Callable[[], float] = time.monotonic):
        self.index = index
        self.floors = floors
        self.excluded = frozenset(settings.excluded_namespaces)
        self.clock = clock
        self.leadership = leadership  # the elector, when leader election runs
        self.controller = controller
        self._cached: tuple[float, list[WorkloadState]] | None = None
        # The JSON of a cached list, made once per build and only when /debug/workloads asks.
        self._documents: tuple[list[WorkloadState], list[dict]] | None = None
        self._building = asyncio.Lock()

    async def document(self) -> dict:
        """Leadership as it is now, and the workloads at most CACHE_SECONDS old, as JSON."""
        async with self._building:
            states = await self._fresh()
            if self._documents is None or self._documents[0] is not states:
                self._documents = (states, await _chunked(states, WorkloadState.to_json))
            documents = self._documents[1]
        leader = self.leadership.is_leader if self.leadership is not None else None
        return {"leader": leader, "workloads": documents}

    async def states(self) -> list[WorkloadState]:
        """The workloads at most CACHE_SECONDS old, from the same build as document()."""
        async with self._building:
            return await self._fresh()

    def workloads(self) -> list[WorkloadState]:
        """The per-workload view, built at once (tests and callers outside the event loop)."""
        return [self._state(w) for w in self._in_view()]

    async def _fresh(self) -> list[WorkloadState]:
        """Called holding self._building: requests arriving during a build wait for it, then share it."""
        if self._cached is None or self.clock() - self._cached[0] > CACHE_SECONDS:
            states = await _chunked(self._in_view(), self._state)
            self._cached = (self.clock(), states)
        return self._cached[1]

    def _in_view(self) -> list[WorkloadRecord]:
        workloads = sorted(self.index.top_level_workloads(), key=lambda w: (w.namespace, w.kind, w.name))
        return [w for w in workloads if w.namespace not in self.excluded]

    def _state(self, workload: WorkloadRecord) -> WorkloadState:
        index, controller = self.index, self.controller
        group = index.current_group(workload)
        floor = self.floors.of_workload(workload)
        counts = index.counts(group)
        on_demand = counts.on_demand if counts else 0
        roles = index.roles(group)
        counted = index.workload(group)
        surge_pods = [p for surge in index.surges_of(workload.key)
                      for p in index.live_pods(GroupKey(surge.kind, surge.namespace, surge.name))]
        return WorkloadState(
            kind=workload.kind,
            namespace=workload.namespace,
            name=workload.name,
            replicas=workload.replicas,
            floor=floor.k,
            floor_source=floor.source,
            floor_clamp=floor.clamp or None,
            counted_group=f"{group.kind}/{group.name}" if group.name else None,
            on_demand=on_demand,
            spot=counts.spot if counts else 0,
            in_flight=index.inflight.on_demand(group),
            floor_role_pods=roles.get(Role.FLOOR, 0),
            spot_role_pods=roles.get(Role.SPOT, 0),
            floor_fallback=counted.floor_fallback if counted is not None else None,
            spot_seek=counted.spot_seek if counted is not None else None,
            floor_met=on_demand >= floor.k,
            surge_pods=len(surge_pods),
            surge_ready=sum(1 for p in surge_pods if p.ready),
            controller=controller.state_of(workload.key) if controller is not None else None,
        )


T = TypeVar("T")
R = TypeVar("R")


async def _chunked(items: Iterable[T], make: Callable[[T], R]) -> list[R]:
    """[make(item) for item in items], letting the event loop run every CHUNK items."""
    out = []
    for number, item in enumerate(items):
        if number and number % CHUNK == 0:
            await asyncio.sleep(0)
        out.append(make(item))
    return out
