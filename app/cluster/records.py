"""Slim records for Pods, workloads and PodDisruptionBudgets, built from raw API dicts.

The index keeps only these, never the client's model objects: parsing a Pod into a
model costs ~80x more than orjson and holds far more memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping, NamedTuple
from weakref import WeakValueDictionary

from ..api.kinds import BY_NAME, REPLICASET, STATEFULSET, watched
from ..core.fields import condition, seconds_between
from ..core.settings import boolean_word
from ..core.vocabulary import (
    ADMISSION_ANNOTATION,
    ANNOTATION_FLOOR,
    ANNOTATION_FLOOR_FALLBACK,
    ANNOTATION_MAX_SURGE,
    ANNOTATION_PLACEMENT,
    ANNOTATION_REBALANCE,
    ANNOTATION_SPOT_SEEK,
    ANNOTATION_SURGE,
    DELETION_COST,
    MIRROR_POD,
    OPT_OUT_LABEL,
    OPT_OUT_VALUE,
    ROLE_LABEL,
    SURGE_FOR_ANNOTATION,
    SURGE_LABEL,
    Role,
)
from .constraints import NONE, Constraints, from_pod_spec
from .needs import NO_NEEDS, Needs, PodTerm, host_ports, needs_of, pod_terms
from .resources import pod_extended_requests, pod_requests

DEFAULT_GRACE = 30  # the API's default terminationGracePeriodSeconds
MAX_GRACE = 24 * 3600  # a bound on what a pod spec can make the drain plan around
EMPTY: Mapping[str, str] = MappingProxyType({})
# Why a pod waits for a node, from its PodScheduled condition. Only UNSCHEDULABLE is a lack of
# room a node of another class could fix; the others wait on the pod's own gates or volumes.
UNSCHEDULABLE = "unschedulable"
GATED = "gated"
WAITING_FOR_VOLUME = "waiting-for-volume"


class GroupKey(NamedTuple):
    """The controller object whose pods are counted together."""

    kind: str  # a kind that counts_pods (kinds.py): ReplicaSet or StatefulSet
    namespace: str
    name: str


class WorkloadKey(NamedTuple):
    kind: str  # a workload kind of kinds.WATCHED
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class PodRecord:
    uid: str
    namespace: str
    name: str
    node: str  # "" while pending
    group: GroupKey | None  # None: not a pod of a managed workload kind
    terminating: bool
    ready: bool
    owner_kind: str = ""  # kind of the controlling owner, "" for none
    mirror: bool = False  # a static pod's mirror: never evicted
    cpu: int = 0  # requested millicores
    memory: int = 0  # requested bytes
    deletion_cost: str | None = None  # the pod-deletion-cost annotation as set now
    created: str = ""  # creationTimestamp, RFC 3339: sorts by age
    grace: int = DEFAULT_GRACE  # terminationGracePeriodSeconds
    ready_after: float | None = None  # seconds from creation to Ready, while Ready: its start-up time
    role: str = ""  # floor or spot, as the webhook labelled it; "" for none
    admission: str = ""  # the uid of the admission that gave the role
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY)  # shared between pods with the same labels: anti-affinity reads them
    host_ports: tuple[tuple[int, str, str], ...] = ()
    extended: tuple[tuple[str, int], ...] = ()  # requests beyond CPU and memory (GPUs)
    unscheduled: str = ""  # why kube-scheduler has not placed it: "" or one of UNSCHEDULED_REASONS
    anti_affinity: tuple[PodTerm, ...] = ()  # its required pod anti-affinity: it keeps others away too

    @property
    def counts(self) -> bool:
        """Bound, alive pods of a counted controller take part in floor counting."""
        return bool(self.node) and not self.terminating and self.group is not None


@dataclass(frozen=True, slots=True)
class WorkloadRecord:
    kind: str
    namespace: str
    name: str
    replicas: int
    floor: str | None  # raw annotation values; interpreted by policy
    placement: str | None
    template_labels: dict
    rebalance: bool = True  # False when the owner opted out of the controller
    # ReplicaSets only: the controlling workload of a kind that owns ReplicaSets, and
    # this ReplicaSet's revision by that kind's annotation.
    owner: WorkloadKey | None = None
    revision: int = 0
    constraints: Constraints = NONE  # where its pods may run, from the pod template
    floor_fallback: str | None = None  # set while its floor pods are admitted as spot (ANNOTATION_FLOOR_FALLBACK)
    spot_seek: str | None = None  # set while its spot pods must run on spot (ANNOTATION_SPOT_SEEK)
    needs: Needs = NO_NEEDS  # what its pods need beyond CPU, memory and constraints (app/cluster/needs.py)
    ordinal_start: int = 0  # StatefulSets: spec.ordinals.start, the ordinal of its first pod
    uid: str = ""  # metadata.uid: an owner reference naming another uid is not of this object
    surge: bool = False  # opted in to surge pods during a reclaim (ANNOTATION_SURGE)
    max_surge: str | None = None  # raw ANNOTATION_MAX_SURGE
    # A surge ReplicaSet only (controller/surge.py): the workload it serves and the uid of the
    # ReplicaSet it stands beside, which controls it. Its pods are spot, outside every floor.
    surge_for: WorkloadKey | None = None
    surge_beside: str = ""

    @property
    def key(self) -> WorkloadKey:
        return WorkloadKey(self.kind, self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class PdbRecord:
    namespace: str
    name: str
    selector: dict | None  # None selects nothing; {} selects every pod in the namespace
    min_available: int | str | None
    max_unavailable: int | str | None
    disruptions_allowed: int | None = None  # from status; None until the controller reports


class Owner(NamedTuple):
    kind: str
    name: str
    api_group: str  # "" for the core group: "apps/v1" -> "apps", "v1" -> ""
    uid: str = ""

    @property
    def watched_kind(self):
        """The kinds.Kind this reference names, None for a kind (or a group) not watched."""
        return watched(self.api_group, self.kind)


def controller_of(meta: dict) -> Owner | None:
    """The controlling owner reference, if any."""
    for ref in meta.get("ownerReferences") or ():
        if isinstance(ref, dict) and ref.get("controller"):
            kind, name, api_version = ref.get("kind"), ref.get("name"), ref.get("apiVersion")
            if isinstance(kind, str) and isinstance(name, str):
                api_group = api_version.rpartition("/")[0] if isinstance(api_version, str) else ""
                uid = ref.get("uid")
                return Owner(kind, name, api_group, uid if isinstance(uid, str) else "")
    return None


def group_of(meta: dict) -> GroupKey | None:
    owner = controller_of(meta)
    kind = owner.watched_kind if owner is not None else None
    if kind is None or not kind.counts_pods:
        return None
    return GroupKey(owner.kind, meta.get("namespace") or "", owner.name)


def pod_record(pod: dict) -> PodRecord:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    phase = status.get("phase")
    ready_condition = condition(status, "Ready")
    ready = ready_condition is not None and ready_condition.get("status") == "True"
    annotations = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    owner = controller_of(meta)
    cpu, memory = pod_requests(spec)
    admission = annotations.get(ADMISSION_ANNOTATION)
    return PodRecord(
        uid=meta.get("uid") or "",
        namespace=meta.get("namespace") or "",
        name=meta.get("name") or "",
        node=spec.get("nodeName") or "",
        group=group_of(meta),
        terminating=bool(meta.get("deletionTimestamp")) or phase in ("Succeeded", "Failed"),
        ready=ready,
        owner_kind=owner.kind if owner else "",
        mirror=MIRROR_POD in annotations,
        cpu=cpu,
        memory=memory,
        deletion_cost=annotations.get(DELETION_COST),
        created=meta.get("creationTimestamp") or "",
        grace=_grace(spec.get("terminationGracePeriodSeconds")),
        ready_after=seconds_between(meta.get("creationTimestamp"), ready_condition.get("lastTransitionTime"))
        if ready else None,
        role=admitted_role(labels, annotations),
        admission=admission if isinstance(admission, str) else "",
        labels=_interned_labels(labels),
        host_ports=host_ports(spec),
        extended=pod_extended_requests(spec),
        unscheduled="" if spec.get("nodeName") else _unscheduled(status, spec),
        anti_affinity=pod_terms(spec, "podAntiAffinity") if spec.get("affinity") else (),
    )


def _unscheduled(status: dict, spec: dict) -> str:
    scheduled = condition(status, "PodScheduled")
    if scheduled is None or scheduled.get("status") != "False":
        return GATED if spec.get("schedulingGates") else ""
    reason = scheduled.get("reason")
    if reason == "SchedulingGated":
        return GATED
    if reason == "Unschedulable":
        # An unbound or missing claim: no node of any class is the cure.
        message = scheduled.get("message")
        if isinstance(message, str) and any(
                words in message.lower() for words in ("persistentvolumeclaim", "non-existent pv")):
            return WAITING_FOR_VOLUME
        return UNSCHEDULABLE
    return str(reason or "")[:64]


class Labels(dict):
    """A pod's labels, shared by every pod with the same ones and never changed in place."""

    __slots__ = ("__weakref__",)

    def _read_only(self, *args, **kwargs):
        raise TypeError("a pod's labels in the index are shared: never changed in place")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _read_only  # type: ignore[assignment]


# Held only while some pod holds them: the labels of deleted pods go with the pods.
_LABEL_SETS: "WeakValueDictionary[frozenset, Labels]" = WeakValueDictionary()


def _interned_labels(labels) -> Mapping[str, str]:
    """One read-only mapping per distinct label set: a ReplicaSet's pods share theirs."""
    if not isinstance(labels, dict) or not labels:
        return EMPTY
    try:
        key = frozenset(labels.items())
    except TypeError:  # a value that is no string: the API server would have refused it
        return EMPTY
    found = _LABEL_SETS.get(key)
    if found is None:
        found = Labels(labels)
        _LABEL_SETS[key] = found
    return found


def _grace(value) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return min(max(value, 0), MAX_GRACE)
    return DEFAULT_GRACE


def workload_record(kind: str, obj: dict) -> WorkloadRecord:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    annotations = meta.get("annotations") or {}
    replicas = spec.get("replicas")
    namespace = meta.get("namespace") or ""
    owner, revision = None, "0"
    controller = controller_of(meta) if kind == REPLICASET else None
    owning = controller.watched_kind if controller is not None else None
    if owning is not None and owning.owns_replicasets:
        owner = WorkloadKey(owning.name, namespace, controller.name)
        revision = annotations.get(owning.revision_annotation, "0")
    return WorkloadRecord(
        kind=kind,
        namespace=namespace,
        name=meta.get("name") or "",
        # The API defaults spec.replicas to 1; a missing value means the default.
        replicas=replicas if isinstance(replicas, int) and replicas >= 0 else 1,
        floor=annotations.get(ANNOTATION_FLOOR),
        placement=annotations.get(ANNOTATION_PLACEMENT),
        template_labels=((spec.get("template") or {}).get("metadata") or {}).get("labels") or {},
        rebalance=boolean_word(annotations.get(ANNOTATION_REBALANCE, "true")) is not False,
        owner=owner,
        revision=int(revision) if str(revision).isdigit() else 0,
        constraints=_interned(from_pod_spec((spec.get("template") or {}).get("spec") or {})),
        floor_fallback=_text_or_none(annotations.get(ANNOTATION_FLOOR_FALLBACK)),
        spot_seek=_text_or_none(annotations.get(ANNOTATION_SPOT_SEEK)),
        needs=_interned_needs(needs_of((spec.get("template") or {}).get("spec") or {},
                                       _claim_templates(spec) if kind == STATEFULSET else ())),
        ordinal_start=_ordinal_start(spec) if kind == STATEFULSET else 0,
        uid=meta.get("uid") or "",
        surge=boolean_word(annotations.get(ANNOTATION_SURGE, "")) is True,
        max_surge=_text_or_none(annotations.get(ANNOTATION_MAX_SURGE)),
        **(_surge_of(meta, namespace, controller) if kind == REPLICASET and owner is None else {}),
    )


def _surge_of(meta: dict, namespace: str, controller: Owner | None) -> dict:
    """A surge ReplicaSet's fields: its label names the uid of the ReplicaSet that controls
    it, and its annotation the workload, "Kind/name". Anything else is no surge."""
    beside = (meta.get("labels") or {}).get(SURGE_LABEL)
    served = (meta.get("annotations") or {}).get(SURGE_FOR_ANNOTATION)
    if not beside or controller is None or controller.kind != REPLICASET or controller.uid != beside:
        return {}
    kind, _, name = served.partition("/") if isinstance(served, str) else ("", "", "")
    owning = BY_NAME.get(kind) if name else None
    if owning is None or not owning.owns_replicasets:
        return {}
    return {"surge_for": WorkloadKey(kind, namespace, name), "surge_beside": beside}


def _claim_templates(spec: dict) -> tuple[str, ...]:
    templates = spec.get("volumeClaimTemplates")
    return tuple(name for t in templates if isinstance(t, dict)
                 and isinstance(name := (t.get("metadata") or {}).get("name"), str) and name
                 ) if isinstance(templates, list) else ()


_NEEDS: dict[Needs, Needs] = {}


def _interned_needs(needs: Needs) -> Needs:
    if needs is NO_NEEDS:
        return needs
    if len(_NEEDS) > 10_000:
        _NEEDS.clear()
    return _NEEDS.setdefault(needs, needs)


def _ordinal_start(spec: dict) -> int:
    start = (spec.get("ordinals") or {}).get("start") if isinstance(spec.get("ordinals"), dict) else None
    return start if isinstance(start, int) and not isinstance(start, bool) and start >= 0 else 0


def admitted_role(labels, annotations) -> str:
    """The role the webhook gave a pod, "" for none. A role label counts only beside the
    admission record the webhook writes with it, and never on a pod opted out of the
    webhook: a pod template cannot choose its own role, or it would escape its floor (a
    `spot` template) or be kept off spot for good (a `floor` one)."""
    if not isinstance(labels, dict) or labels.get(OPT_OUT_LABEL) == OPT_OUT_VALUE:
        return ""
    role = labels.get(ROLE_LABEL)
    if role not in Role.ROLES or not isinstance(annotations, dict):
        return ""
    admission = annotations.get(ADMISSION_ANNOTATION)
    return role if isinstance(admission, str) and admission else ""


def _text_or_none(value) -> str | None:
    return value if isinstance(value, str) else None


_CONSTRAINTS: dict[Constraints, Constraints] = {}


def _interned(constraints: Constraints) -> Constraints:
    """One object per distinct value: revisions and peers share templates, and the
    controller caches answers per object."""
    if len(_CONSTRAINTS) > 10_000:
        _CONSTRAINTS.clear()
    return _CONSTRAINTS.setdefault(constraints, constraints)


def pdb_record(pdb: dict) -> PdbRecord:
    meta = pdb.get("metadata") or {}
    spec = pdb.get("spec") or {}
    return PdbRecord(
        namespace=meta.get("namespace") or "",
        name=meta.get("name") or "",
        selector=spec.get("selector"),
        min_available=spec.get("minAvailable"),
        max_unavailable=spec.get("maxUnavailable"),
        disruptions_allowed=(pdb.get("status") or {}).get("disruptionsAllowed"),
    )


def unverified(meta: dict, counted: WorkloadRecord | None) -> str | None:
    """Why a pod in a request (an admission, a filter call) does not match its owner as the
    index knows it, or None: the caller may have made it up."""
    if counted is None:
        return "unknown-owner"
    owner = controller_of(meta)
    if owner is None or not owner.uid or owner.uid != counted.uid:
        return "owner-uid"
    revision = (meta.get("labels") or {}).get("pod-template-hash")
    expected = counted.template_labels.get("pod-template-hash")
    if counted.kind == REPLICASET and revision != expected:
        return "revision"
    return None

