"""What the controller may do: pure decisions over plain records, no I/O.

Three kinds of eviction: a reclaim drains pods off spot nodes that are going away;
a floor repair moves one spot replica back to on-demand; a return to spot moves
one surplus on-demand replica to spot. Moves are one replica at a time per
workload and only when every replica is ready, so a move never costs availability.

Once the admission webhook gives a workload's pods roles, a move is a replacement whose
role the webhook decides: fewer than k floor pods means evicting a pod of no floor role,
whose replacement is admitted as floor; floor pods beyond k, or spot pods on on-demand,
mean evicting one, whose replacement is admitted as spot. Workloads whose pods carry no
role are moved by where their pods run, as before.

With an autoscaler that adds spot nodes for pods that need them (seek_spot), every such
move is a spot seek, whose replacement requires spot: it goes on while no spot node has
room, the replacement waiting for the autoscaler's node, and it never lands on on-demand
again (a replacement that only prefers spot can, when its soft spread outweighs that).

MoveState is what the controller reports about a workload's moves, typed, with the JSON
/debug/workloads shows of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from ..core.vocabulary import Capacity, Role
from .roles import statefulset_ordinal

RECLAIM = "reclaim"
FLOOR_REPAIR = "floor-repair"
RETURN_TO_SPOT = "return-to-spot"

# pod-deletion-cost: a ReplicaSet scaling down deletes lower costs first.
SURPLUS_COST = -1000
SPOT_COST = 0
FLOOR_COST = 1000


@dataclass(frozen=True, slots=True)
class Replica:
    uid: str
    namespace: str
    name: str
    node: str  # "" while pending
    capacity: str  # effective class of its node, "" while pending or on a node that is gone
    ready: bool
    cpu: int
    memory: int
    created: str  # RFC 3339, sorts by age
    role: str = ""  # floor or spot from the admission webhook, "" for none


@dataclass(frozen=True, slots=True)
class WorkloadView:
    name: str  # kind/namespace/name, for logs and events
    replicas: int  # R
    floor: int  # k
    pods: tuple[Replica, ...]  # live pods of the counted revision
    pdbs_allow: bool  # every PDB selecting its pods allows one more disruption now
    # A StatefulSet's spec.ordinals.start: its pods' roles go by ordinal (roles.choose). None for other kinds.
    ordinal_start: int | None = None

    @property
    def on_demand(self) -> list[Replica]:
        return [p for p in self.pods if p.capacity == Capacity.ON_DEMAND]

    @property
    def spot(self) -> list[Replica]:
        return [p for p in self.pods if p.capacity == Capacity.SPOT]

    @property
    def uses_roles(self) -> bool:
        """Some pod has a role: the webhook admits this workload's pods."""
        return any(p.role for p in self.pods)

    @property
    def floor_role(self) -> list[Replica]:
        return [p for p in self.pods if p.role == Role.FLOOR]


@dataclass(frozen=True, slots=True)
class Move:
    cause: str  # FLOOR_REPAIR or RETURN_TO_SPOT
    pod: Replica
    reason: str
    seek: bool = False  # its replacement must run on spot: a node is to be added for it


@dataclass(frozen=True, slots=True)
class Skip:
    cause: str
    reason: str


def plan_move(view: WorkloadView, has_room: Callable[[str, Replica], object],
              seek_spot: bool = False) -> Move | Skip | None:
    """The one move this workload should make now, a reason it cannot, or None when
    its replicas already sit where they should. has_room(class, pod) says whether a
    node of that class, not going away, can take the pod's replacement: truthy if so,
    and its `reason` why not (room.Fit), or a plain bool; seek_spot, whether an
    autoscaler adds spot nodes for pods that require spot."""
    if view.uses_roles:
        return _plan_by_role(view, has_room, seek_spot)
    o, k = len(view.on_demand), view.floor
    if o == k:
        return None
    cause = FLOOR_REPAIR if o < k else RETURN_TO_SPOT
    if o < k and not view.spot:
        return None  # nothing on spot to move: the shortfall is pending pods, not placement
    skip = _unsafe(view, cause)
    if skip is not None:
        return skip
    if o < k:
        pod = _pick(view.spot)
        room = has_room(Capacity.ON_DEMAND, pod)
        if not room:
            return Skip(cause, _why_not(room, Capacity.ON_DEMAND))
        return Move(cause, pod, f"on-demand floor {o}/{k}: moving a spot replica to on-demand")
    pod = _pick(view.on_demand)
    room = has_room(Capacity.SPOT, pod)
    if not room:
        return Skip(cause, _why_not(room, Capacity.SPOT))
    return Move(cause, pod, f"{o - k} replica(s) above the on-demand floor {k}: moving one to spot")


def _unsafe(view: WorkloadView, cause: str) -> Skip | None:
    """Why no replica may go now: moves never cost availability."""
    if len(view.pods) != view.replicas or not all(p.ready and p.node for p in view.pods):
        return Skip(cause, "not all replicas are ready")
    if cause == RETURN_TO_SPOT and len(view.pods) < 2:
        return Skip(cause, "it is the only ready replica")
    if not view.pdbs_allow:
        return Skip(cause, "a PodDisruptionBudget allows no disruption now")
    return None


def _plan_by_role(view: WorkloadView, has_room: Callable[[str, Replica], bool],
                  seek_spot: bool) -> Move | Skip | None:
    floor_pods, k = view.floor_role, view.floor
    by_ordinal = view.ordinal_start is not None  # roles.choose: its first k ordinals are floor

    def place(pod: Replica) -> int:
        return statefulset_ordinal(pod.name, view.ordinal_start or 0) or 0
    if len(floor_pods) < k:
        others = [p for p in view.pods if p.role != Role.FLOOR]
        if by_ordinal:  # only a pod of ordinal below k comes back as a floor pod
            others = [p for p in others if place(p) < k]
        if not others:
            return None  # the floor pods are yet to come: pending pods, not roles
        skip = _unsafe(view, FLOOR_REPAIR)
        if skip is not None:
            return skip
        on_demand = [p for p in others if p.capacity == Capacity.ON_DEMAND]
        short = f"{len(floor_pods)}/{k} floor pods"
        if on_demand:  # its replacement takes its place, as a floor pod: no room needed
            return Move(FLOOR_REPAIR, _pick(on_demand), f"{short}: replacing a pod on on-demand with a floor pod")
        pod = _pick(others)
        room = has_room(Capacity.ON_DEMAND, pod)
        if not room:
            return Skip(FLOOR_REPAIR, _why_not(room, Capacity.ON_DEMAND))
        return Move(FLOOR_REPAIR, pod, f"{short}: replacing a spot pod with a floor pod on on-demand")
    # Floor pods beyond k go first, newest first (a StatefulSet's: ordinals k and up); then
    # pods of no floor role on on-demand.
    if by_ordinal:
        surplus = [p for p in floor_pods if place(p) >= k]
    else:
        surplus = floor_pods[k:] and sorted(floor_pods, key=lambda p: (p.created, p.name))[k:]
    misplaced = [p for p in view.on_demand if p.role != Role.FLOOR]
    if not surplus and not misplaced:
        return None
    skip = _unsafe(view, RETURN_TO_SPOT)
    if skip is not None:
        return skip
    pod = _pick(surplus or misplaced)
    what = f"{len(surplus)} floor pod(s) above the floor {k}" if surplus else "a spot pod on on-demand"
    room = has_room(Capacity.SPOT, pod)
    if getattr(room, "unknown", False) or (not room and not getattr(room, "fixable", True)):
        # Never a seek on a guess, nor for a pod no new spot node would take (a selector,
        # a taint, a volume elsewhere): its replacement would come back where it was.
        return Skip(RETURN_TO_SPOT, _why_not(room, Capacity.SPOT))
    if seek_spot:
        # Required even when spot has room: a replacement that only prefers spot can land on
        # on-demand again, its soft spread outweighing the preference.
        how = "a spot node has room" if room else "no spot node has room, so the autoscaler adds one"
        return Move(RETURN_TO_SPOT, pod, f"{what}: replacing one with a pod that requires spot ({how})", seek=True)
    if not room:
        return Skip(RETURN_TO_SPOT, _why_not(room, Capacity.SPOT))
    return Move(RETURN_TO_SPOT, pod, f"{what}: replacing one with a spot pod")


def _why_not(room, capacity: str) -> str:
    return getattr(room, "reason", "") or f"no {capacity} node has room for it"


def _pick(pods: list[Replica]) -> Replica:
    """The replica to move: from the node holding most of the workload, newest first,
    so the spread improves and long-running replicas stay."""
    per_node: dict[str, int] = {}
    for p in pods:
        per_node[p.node] = per_node.get(p.node, 0) + 1
    return max(pods, key=lambda p: (per_node[p.node], p.created, p.name))


def deletion_costs(pods: Iterable[Replica], floor: int) -> dict[str, int]:
    """pod-deletion-cost per pod uid, so a scale-down deletes surplus on-demand
    replicas first, then spot ones, and keeps the floor: the oldest k floor pods, or
    without roles the oldest k on-demand replicas, are the floor."""
    pods = list(pods)
    by_age = sorted(pods, key=lambda p: (p.created, p.name))
    uses_roles = any(p.role for p in pods)
    keep = [p for p in by_age if (p.role == Role.FLOOR if uses_roles else p.capacity == Capacity.ON_DEMAND)][:floor]
    costs = {p.uid: SURPLUS_COST if p.capacity == Capacity.ON_DEMAND or p.role == Role.FLOOR else SPOT_COST for p in pods}
    costs.update({p.uid: FLOOR_COST for p in keep})
    return costs


@dataclass
class MoveHistory:
    """Hysteresis for one workload's moves."""

    last_move: float = float("-inf")
    failures: int = 0  # moves whose replacement landed back where it came from, in a row
    last_failure: str = ""  # why the last one counts as failed, while failures > 0


@dataclass(frozen=True, slots=True)
class Moving:
    """A move whose replacement has not settled yet."""

    cause: str  # FLOOR_REPAIR or RETURN_TO_SPOT
    pod: str  # the uid of the evicted pod


@dataclass(frozen=True, slots=True)
class MoveState:
    """What the controller is doing about one workload's moves: the `controller` part of
    its state in /debug/workloads."""

    moving: Moving | None
    last_skip: str | None  # why the last pass did not move it, until a move goes ahead
    failed_moves: int  # in a row (MoveHistory.failures)
    last_failure: str | None
    next_move_in_seconds: float

    def to_json(self) -> dict:
        moving = self.moving
        return {
            "moving": {"cause": moving.cause, "pod": moving.pod} if moving is not None else None,
            "lastSkip": self.last_skip,
            "failedMoves": self.failed_moves,
            "lastFailure": self.last_failure,
            "nextMoveInSeconds": self.next_move_in_seconds,
        }

    @classmethod
    def from_json(cls, document: object) -> MoveState:
        """The inverse of to_json; ValueError when the document is not one."""
        if not isinstance(document, dict):
            raise ValueError(f"a controller state is a JSON object, not {_json_type(document)}")
        moving = json_field(document, "moving", dict, type(None))
        if moving is not None:
            try:
                moving = Moving(json_field(moving, "cause", str), json_field(moving, "pod", str))
            except ValueError as exc:
                raise ValueError(f"'moving': {exc}") from None
        return cls(
            moving=moving,
            last_skip=json_field(document, "lastSkip", str, type(None)),
            failed_moves=json_field(document, "failedMoves", int),
            last_failure=json_field(document, "lastFailure", str, type(None)),
            next_move_in_seconds=float(json_field(document, "nextMoveInSeconds", float, int)),
        )


def json_field(document: dict, key: str, *types: type):
    """document[key] when it is of one of types (type(None) admits null); ValueError when
    it is missing or of another type. JSON true and false are no numbers here."""
    if key not in document:
        raise ValueError(f"{key!r} is missing")
    value = document[key]
    if not isinstance(value, types) or isinstance(value, bool) and bool not in types:
        expected = " or ".join(_JSON_TYPES.get(t, t.__name__) for t in types)
        raise ValueError(f"{key!r} must be {expected}, not {_json_type(value)}")
    return value


_JSON_TYPES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", dict: "an object",
               list: "an array", type(None): "null"}


def _json_type(value: object) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Hysteresis:
    cooldown: float  # between two moves of one workload
    backoff_max: float  # cap of the doubling after failed moves

    def wait_left(self, history: MoveHistory, now: float) -> float:
        """Seconds until this workload may move again: the cooldown, doubled per failure."""
        delay = min(self.backoff_max, self.cooldown * (2 ** history.failures)) if history.failures else self.cooldown
        return max(0.0, history.last_move + delay - now)


@dataclass
class RateLimit:
    """At most `per_minute` evictions for moves in any sliding minute, cluster-wide."""

    per_minute: int
    _times: list[float] = field(default_factory=list)

    def allow(self, now: float) -> bool:
        self._times = [t for t in self._times if now - t < 60.0]
        if len(self._times) >= self.per_minute:
            return False
        self._times.append(now)
        return True
