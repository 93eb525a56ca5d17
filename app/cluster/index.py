"""In-memory index of the cluster, fed by watch events, read by the extender, the webhook
and the controller loops through named queries.

It dispatches each event to its table (node_table.py, workload_table.py, volumes.py,
tally.py) and keeps the pod tables itself. Every count a scheduling call needs is kept
up to date per event, so a call costs O(candidate nodes) and never scans pods. Whoever
needs to hear of changes subscribes; no caller reads a table's dicts.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from types import MappingProxyType
from typing import Callable, Iterable, Mapping

from ..api.kinds import KIND_NAMES, NODE, PDB, POD, PV, PVC, WORKLOAD_KINDS
from ..core.counted import add, discard_member
from ..core.settings import Settings
from .admitted import Admitted
from .freshness import Freshness
from .inflight import InFlight
from .node_table import NodeTable
from .nodes import NodeClassifier, NodeRecord
from .records import (
    GroupKey,
    PodRecord,
    WorkloadKey,
    pdb_record,
    pod_record,
    workload_record,
)
from .tally import Tally
from .volumes import VolumeTable, claim_record, volume_record
from .workload_table import WorkloadTable

_NO_ROLES: Mapping[str, int] = MappingProxyType({})


class Index:
    def __init__(self, classifier: NodeClassifier, inflight: InFlight,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 admitted: Admitted | None = None):
        self.classifier = classifier  # the extender classifies nodes kube-scheduler sends whole
        self.inflight = inflight
        # Not `admitted or ...`: an empty Admitted is falsy (it has a length).
        self.admitted = admitted if admitted is not None else Admitted(Settings.admission_ttl, clock)
        self.freshness = Freshness()
        self.clock = clock
        self.wall = wall
        # Read through self, so that tests can move the index's clocks.
        self._nodes = NodeTable(classifier, lambda: self.clock(), lambda: self.wall())
        self._workloads = WorkloadTable()
        self._volumes = VolumeTable()
        self._tally = Tally()
        nodes = self._nodes
        # Node queries are the node table's own (see node_table.py), answered without a hop
        # through the index: the extender asks some of them on every call.
        self.node = nodes.get
        self.nodes = nodes.items  # every node by name: do not await while going through them
        self.node_names = nodes.names
        self.node_count = nodes.__len__
        self.pools = nodes.pools
        self.on_demand_nodes = nodes.on_demand
        self.going_away = nodes.going_away
        self.deadline = nodes.deadline
        self.capacity_keys = nodes.capacity_keys
        # So are the workload, count and volume queries of their tables.
        workloads = self._workloads
        self.workload = workloads.get  # by GroupKey or WorkloadKey: equal tuples, one hash
        self.has_workload = workloads.__contains__
        self.workload_of = workloads.workload_of
        self.current_group = workloads.current_group
        self.workloads = workloads.records
        self.top_level_workloads = workloads.top_level
        self.pdbs_selecting = workloads.pdbs_selecting
        self.counts = self._tally.of
        self.requested = self._tally.requested
        self.claim_pins = self._volumes.pins
        self._pods: dict[str, PodRecord] = {}
        self._pods_on_node: dict[str, set[str]] = {}
        self._pods_of_group: dict[GroupKey, set[str]] = {}  # every pod, pending ones too
        self._roles_of_group: dict[GroupKey, Counter] = {}  # live pods, bound or not, by role label
        self._live_of_group: Counter = Counter()  # pods not being deleted, bound or not
        self._anti_affine: set[str] = set()  # pods with a required pod anti-affinity (room.py reads them)
        self._synced_kinds: set[str] = set()
        self._synced = asyncio.Event()
        self._subscribers: list[Callable[[str], None]] = []

    # ---- feeding -------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._synced.is_set()

    def unsynced(self) -> list[str]:
        """Kinds not listed once yet, in watch order."""
        return [k for k in KIND_NAMES if k not in self._synced_kinds]

    async def wait_synced(self) -> None:
        """Until every kind has been listed once (an absent optional kind counts as listed, empty)."""
        await self._synced.wait()

    def subscribe(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """callback(kind) after every change; returns what unsubscribes it."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def _changed(self, kind: str) -> None:
        for callback in self._subscribers:
            callback(kind)

    def apply(self, kind: str, event_type: str, obj: dict) -> None:
        """One watch event: ADDED, MODIFIED or DELETED."""
        if event_type == "DELETED":
            self._delete(kind, obj)
        else:
            self._upsert(kind, obj)
        self._changed(kind)

    def replace(self, kind: str, objs: Iterable[dict]) -> None:
        """The result of a (re-)list: whatever is not in it is gone."""
        listed: set = set()
        self.put_listed(kind, objs, listed)
        self.end_list(kind, listed)

    def put_listed(self, kind: str, objs: Iterable[dict], listed: set) -> None:
        """One page of a (re-)list, applied as it arrives; `listed` collects its keys for end_list.
        Until then what the list has not reached yet stays as it was."""
        for obj in objs:
            listed.add(self._key(kind, obj))
            self._upsert(kind, obj)

    def end_list(self, kind: str, listed: set) -> None:
        """The (re-)list is complete: whatever it did not hold is gone."""
        for key in [k for k in self._keys(kind) if k not in listed]:
            self._delete_key(kind, key)
        self._synced_kinds.add(kind)
        if self._synced_kinds.issuperset(KIND_NAMES):
            self._synced.set()
        self._changed(kind)

    def _key(self, kind: str, obj: dict):
        meta = obj.get("metadata") or {}
        if kind == NODE:
            return meta.get("name") or ""
        if kind == POD:
            return meta.get("uid") or ""
        if kind == PV:
            return meta.get("name") or ""
        return (meta.get("namespace") or "", meta.get("name") or "")

    def _keys(self, kind: str) -> list:
        if kind == NODE:
            return list(self._nodes.names())
        if kind == POD:
            return list(self._pods)
        if kind == PDB:
            return self._workloads.pdb_keys()
        if kind == PV:
            return self._volumes.volume_names()
        if kind == PVC:
            return self._volumes.claim_keys()
        return [(k.namespace, k.name) for k in self._workloads.keys_of(kind)]

    def _upsert(self, kind: str, obj: dict) -> None:
        if kind == NODE:
            self._upsert_node(self.classifier.record(obj))
        elif kind == POD:
            self._upsert_pod(pod_record(obj))
        elif kind == PDB:
            self._workloads.put_pdb(pdb_record(obj))
        elif kind == PV:
            self._volumes.put_volume(volume_record(obj))
        elif kind == PVC:
            self._volumes.put_claim(claim_record(obj))
        elif kind in WORKLOAD_KINDS:
            self._workloads.put(workload_record(kind, obj))
        else:
            raise ValueError(f"unknown kind {kind}")

    def _delete(self, kind: str, obj: dict) -> None:
        self._delete_key(kind, self._key(kind, obj))

    def _delete_key(self, kind: str, key) -> None:
        if kind == NODE:
            self._delete_node(key)
        elif kind == POD:
            self._delete_pod(key)
        elif kind == PDB:
            self._workloads.drop_pdb(*key)
        elif kind == PV:
            self._volumes.drop_volume(key)
        elif kind == PVC:
            self._volumes.drop_claim(*key)
        elif kind in WORKLOAD_KINDS:
            self._workloads.drop(WorkloadKey(kind, *key))
        else:
            raise ValueError(f"unknown kind {kind}")

    # ---- nodes ---------------------------------------------------------------------

    def _upsert_node(self, record: NodeRecord) -> None:
        if self._nodes.put(record):
            self._recount_node(record.name)

    def _delete_node(self, name: str) -> None:
        if not self._nodes.drop(name):
            return
        self._tally.forget_node(name)
        # Pods still bound to a deleted node are lost capacity: they stop counting.
        self._recount_node(name)

    def _recount_node(self, name: str) -> None:
        for uid in self._pods_on_node.get(name, ()):
            self._tally.uncount(uid)
            self._count(self._pods[uid])

    # ---- pods ----------------------------------------------------------------------

    def _upsert_pod(self, pod: PodRecord) -> None:
        old = self._pods.get(pod.uid)
        if old is not None:
            self._count_role(old, -1)
            self._count_live(old, -1)
            self._tally.uncount(pod.uid)
            self._tally.unuse(old)
            if old.node != pod.node:
                self._unplace(old)
            if old.group != pod.group:  # released by its owner (relabelled), or adopted
                self._leave_group(old)
        self._pods[pod.uid] = pod
        if pod.group is not None:
            self._pods_of_group.setdefault(pod.group, set()).add(pod.uid)
        if pod.node:
            self._pods_on_node.setdefault(pod.node, set()).add(pod.uid)
            self.inflight.discard(pod.uid)
        else:
            self.inflight.seen(pod.uid, pod.group)  # what the scheduler was told about it is confirmed
        self._count(pod)
        self._tally.use(pod)
        self._count_role(pod, +1)
        self._count_live(pod, +1)
        if pod.anti_affinity:
            self._anti_affine.add(pod.uid)
        else:
            self._anti_affine.discard(pod.uid)
        if pod.admission:
            self.admitted.seen(pod.admission)

    def _delete_pod(self, uid: str) -> None:
        pod = self._pods.pop(uid, None)
        if pod is None:
            return
        self._count_role(pod, -1)
        self._count_live(pod, -1)
        self._anti_affine.discard(uid)
        self._tally.uncount(uid)
        self._tally.unuse(pod)
        self._unplace(pod)
        self._leave_group(pod)
        self.inflight.discard(uid)

    def _leave_group(self, pod: PodRecord) -> None:
        if pod.group is not None:
            discard_member(self._pods_of_group, pod.group, pod.uid)

    def _unplace(self, pod: PodRecord) -> None:
        discard_member(self._pods_on_node, pod.node, pod.uid)

    def _count(self, pod: PodRecord) -> None:
        self._tally.count(pod, self._nodes.pool(pod.node))

    def _count_live(self, pod: PodRecord, delta: int) -> None:
        if pod.group is not None and not pod.terminating:
            add(self._live_of_group, pod.group, delta)

    def _count_role(self, pod: PodRecord, delta: int) -> None:
        if not pod.role or pod.group is None or pod.terminating:
            return
        roles = self._roles_of_group.setdefault(pod.group, Counter())
        add(roles, pod.role, delta)
        if not roles:
            del self._roles_of_group[pod.group]

    # ---- queries: nodes (and those bound in __init__) ----------------------------------

    @property
    def autoscaled_nodes(self) -> int:
        """Nodes an autoscaler made (vocabulary.AUTOSCALER_LABEL)."""
        return self._nodes.autoscaled

    @property
    def node_generation(self) -> int:
        """Changes whenever a node's pool appears, changes or goes."""
        return self._nodes.generation

    @property
    def placement_generation(self) -> int:
        """Changes whenever a node's class, labels, taints, extended resources or going away change."""
        return self._nodes.placement_generation

    # ---- queries: pods ---------------------------------------------------------------

    def pod(self, uid: str) -> PodRecord | None:
        return self._pods.get(uid)

    def pods(self) -> list[PodRecord]:
        """Every pod."""
        return list(self._pods.values())

    def pod_count(self) -> int:
        return len(self._pods)

    def pods_of(self, group: GroupKey) -> list[PodRecord]:
        """Every pod of the group, pending and terminating ones too."""
        pods = self._pods
        return [pods[uid] for uid in self._pods_of_group.get(group, ())]

    def live_pods(self, group: GroupKey) -> list[PodRecord]:
        """Pods of the group not being deleted, bound or not."""
        pods = self._pods
        return [pod for uid in self._pods_of_group.get(group, ()) if not (pod := pods[uid]).terminating]

    def live_count(self, group: GroupKey) -> int:
        """How many pods of the group are not being deleted, bound or not."""
        return self._live_of_group.get(group, 0)

    def pods_on_node_count(self, node: str) -> int:
        """Pods bound to the node, terminating ones too."""
        return len(self._pods_on_node.get(node, ()))

    def pods_on_node(self, node: str) -> list[PodRecord]:
        """Pods bound to the node, terminating ones too."""
        pods = self._pods
        return [pods[uid] for uid in self._pods_on_node.get(node, ())]

    def anti_affine_pods(self) -> list[PodRecord]:
        """Pods with a required pod anti-affinity: they keep others away too."""
        pods = self._pods
        return [pods[uid] for uid in self._anti_affine]

    def roles(self, group: GroupKey) -> Mapping[str, int]:
        """Live pods of the group that the watch shows, bound or not, by role."""
        return self._roles_of_group.get(group, _NO_ROLES)

    def groups_with(self, role: str) -> list[GroupKey]:
        """Groups with at least one live pod of this role."""
        return [group for group, roles in self._roles_of_group.items() if roles.get(role)]

    def room(self, group: GroupKey) -> int | None:
        """Pods of the group the watch may not show yet: its owner's replicas less its live
        pods. None while the owner is not in the index."""
        counted = self.workload(group)
        return counted.replicas - self.live_count(group) if counted is not None else None

    def shown_role_pods(self, group: GroupKey, role: str) -> int:
        """Live pods of the group with this role that the watch shows, bound or not."""
        return self.roles(group).get(role, 0)

    def role_pods(self, group: GroupKey, role: str) -> int:
        """Live pods of the group with this role, bound or not, and this replica's admissions
        of it that the watch has not shown yet."""
        return self.roles(group).get(role, 0) + self.admitted.count(group, role)

    def sizes(self) -> dict[str, int]:
        per_kind = Counter(k.kind for k in self._workloads.keys_of_all())
        return {
            NODE: len(self._nodes),
            POD: len(self._pods),
            **{kind: per_kind.get(kind, 0) for kind in WORKLOAD_KINDS},
            PDB: self._workloads.pdb_count(),
            PV: len(self._volumes.volume_names()),
            PVC: len(self._volumes.claim_keys()),
            "InFlight": len(self.inflight),
            "Admitted": len(self.admitted),
        }
