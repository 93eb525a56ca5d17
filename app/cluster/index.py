"""In-memory index of the cluster, fed by watch events, read by the extender and controllers.

Every count a scheduling call needs is kept up to date per event, so a call costs
O(candidate nodes) and never scans pods. A pod's contribution to the counts is stored
when it is added, so removing it subtracts exactly what was added, whatever changed
on its node in between.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Callable, Iterable

from .admitted import Admitted
from ..core.counted import add, discard_member
from .freshness import Freshness
from .inflight import InFlight
from ..api.kinds import KIND_NAMES, NODE, PDB, POD, PV, PVC, WORKLOAD_KINDS
from .nodes import DELETING, NOT_READY, NodeClassifier, NodeRecord, Pool
from ..core.settings import Settings
from .records import (
    GroupKey,
    PdbRecord,
    PodRecord,
    WorkloadKey,
    WorkloadRecord,
    pdb_record,
    pod_record,
    workload_record,
)
from .tally import GroupCounts, Tally
from .volumes import VolumeTable, claim_record, volume_record
from .workload_table import WorkloadTable
from ..core.vocabulary import AUTOSCALER_LABEL, Capacity

FIRM_SIGNALS = frozenset({DELETING, NOT_READY})  # the node goes now, whatever notice a taint gives


class Index:
    def __init__(self, classifier: NodeClassifier, inflight: InFlight,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 admitted: Admitted | None = None):
        self.classifier = classifier
        self.inflight = inflight
        # Not `admitted or ...`: an empty Admitted is falsy (it has a length).
        self.admitted = admitted if admitted is not None else Admitted(Settings.admission_ttl, clock)
        self.clock = clock
        self.wall = wall
        self.nodes: dict[str, NodeRecord] = {}
        self.pool_of: dict[str, Pool] = {}
        self.on_demand_names: set[str] = set()
        # Capacity label keys that classify some node, by how many: the webhook writes
        # affinity terms on these keys only (see roles.RoleRules.narrowed).
        self.capacity_keys: Counter = Counter()
        self.autoscaled_nodes = 0  # nodes an autoscaler made (nodes.AUTOSCALER_LABEL)
        self.going_away: dict[str, str] = {}
        # When each going-away node ends, on self.clock: every replica keeps it, so a new
        # leader paces a drain against the notice as first seen, not from its election.
        self.deadlines: dict[str, float] = {}
        self._deadline_firm: set[str] = set()  # deadlines a later notice taint may not move
        self.node_generation = 0  # bumped whenever a node's pool appears, changes or goes
        # bumped whenever a node's class, labels, taints, extended resources or going away change
        self.placement_generation = 0
        self.pods: dict[str, PodRecord] = {}
        self.tally = Tally()
        self.groups = self.tally.groups
        self.requested = self.tally.requested  # node -> [millicores, bytes] of its live pods
        self.workload_table = WorkloadTable()
        self.workloads = self.workload_table.records
        self.pdbs = self.workload_table.pdbs
        self.volumes = VolumeTable()
        self.synced: set[str] = set()
        self._synced = asyncio.Event()
        self.freshness = Freshness()
        self._pods_on_node: dict[str, set[str]] = {}
        self.pods_of_group: dict[GroupKey, set[str]] = {}  # every pod, pending ones too
        self.roles_of_group: dict[GroupKey, Counter] = {}  # live pods, bound or not, by role label
        self._live_of_group: Counter = Counter()  # pods not being deleted, bound or not
        self.anti_affine: set[str] = set()  # pods with a required pod anti-affinity (room.py reads them)
        self.on_change: Callable[[str], None] | None = None  # told the kind after each change

    # ---- feeding -------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        """Until every kind has been listed once (an absent optional kind counts as listed, empty)."""
        await self._synced.wait()

    def apply(self, kind: str, event_type: str, obj: dict) -> None:
        """One watch event: ADDED, MODIFIED or DELETED."""
        if event_type == "DELETED":
            self._delete(kind, obj)
        else:
            self._upsert(kind, obj)
        if self.on_change is not None:
            self.on_change(kind)

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
        self.synced.add(kind)
        if self.synced.issuperset(KIND_NAMES):
            self._synced.set()
        if self.on_change is not None:
            self.on_change(kind)

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
            return list(self.nodes)
        if kind == POD:
            return list(self.pods)
        if kind == PDB:
            return [(ns, name) for ns, by_name in self.pdbs.items() for name in by_name]
        if kind == PV:
            return list(self.volumes.volumes)
        if kind == PVC:
            return list(self.volumes.claims)
        return [(k.namespace, k.name) for k in self.workloads if k.kind == kind]

    def _upsert(self, kind: str, obj: dict) -> None:
        if kind == NODE:
            self._upsert_node(self.classifier.record(obj))
        elif kind == POD:
            self._upsert_pod(pod_record(obj))
        elif kind == PDB:
            self.workload_table.put_pdb(pdb_record(obj))
        elif kind == PV:
            self.volumes.put_volume(volume_record(obj))
        elif kind == PVC:
            self.volumes.put_claim(claim_record(obj))
        elif kind in WORKLOAD_KINDS:
            self.workload_table.put(workload_record(kind, obj))
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
            self.workload_table.drop_pdb(*key)
        elif kind == PV:
            self.volumes.drop_volume(key)
        elif kind == PVC:
            self.volumes.drop_claim(*key)
        elif kind in WORKLOAD_KINDS:
            self.workload_table.drop(WorkloadKey(kind, *key))
        else:
            raise ValueError(f"unknown kind {kind}")

    # ---- nodes ---------------------------------------------------------------------

    def _upsert_node(self, record: NodeRecord) -> None:
        name = record.name
        old = self.nodes.get(name)
        self.nodes[name] = record
        self.pool_of[name] = record.pool
        if old is not None:
            self._count_capacity_key(old, -1)
            self.autoscaled_nodes -= AUTOSCALER_LABEL in old.labels
        self._count_capacity_key(record, 1)
        self.autoscaled_nodes += AUTOSCALER_LABEL in record.labels
        if record.effective == Capacity.ON_DEMAND:
            self.on_demand_names.add(name)
        else:
            self.on_demand_names.discard(name)
        if record.going_away:
            self.going_away[name] = record.going_away
            self._keep_deadline(name, record)
        else:
            self.going_away.pop(name, None)
            self.deadlines.pop(name, None)
            self._deadline_firm.discard(name)
        if old is None or (old.pool, old.labels, old.taints, bool(old.going_away), old.extended) != (
            record.pool, record.labels, record.taints, bool(record.going_away), record.extended
        ):
            self.placement_generation += 1
        if old is None or old.pool != record.pool:
            self.node_generation += 1
            self._recount_node(name)

    def _delete_node(self, name: str) -> None:
        old = self.nodes.pop(name, None)
        if old is None:
            return
        self._count_capacity_key(old, -1)
        self.autoscaled_nodes -= AUTOSCALER_LABEL in old.labels
        del self.pool_of[name]
        self.requested.pop(name, None)
        self.node_generation += 1
        self.placement_generation += 1
        self.on_demand_names.discard(name)
        self.going_away.pop(name, None)
        self.deadlines.pop(name, None)
        self._deadline_firm.discard(name)
        # Pods still bound to a deleted node are lost capacity: they stop counting.
        self._recount_node(name)

    def _count_capacity_key(self, record: NodeRecord, delta: int) -> None:
        key = self.classifier.capacity_key(record.labels)
        if key is None:
            return
        self.capacity_keys[key] += delta
        if self.capacity_keys[key] <= 0:
            del self.capacity_keys[key]

    def _keep_deadline(self, name: str, record: NodeRecord) -> None:
        """A notice never grows, with one exception: a deadline of 'now' that came from a
        signal without a notice (a cordon, a taint that gives none) moves to the notice a
        taint brings later, since termination handlers cordon and taint in either order.
        A deletion or a NotReady node still means now, and stays so."""
        deadline = self._deadline(record)
        kept = self.deadlines.get(name)
        if kept is None or (record.notice > 0 and name not in self._deadline_firm):
            self.deadlines[name] = deadline
        else:
            self.deadlines[name] = min(deadline, kept)
        if record.notice > 0 or record.going_away in FIRM_SIGNALS:
            self._deadline_firm.add(name)

    def _deadline(self, record: NodeRecord) -> float:
        now = self.clock()
        if record.signalled_at is None:
            return now + record.notice
        age = min(max(0.0, self.wall() - record.signalled_at), record.notice)
        return now - age + record.notice

    def _recount_node(self, name: str) -> None:
        for uid in self._pods_on_node.get(name, ()):
            self.tally.uncount(uid)
            self._count(self.pods[uid])

    # ---- pods ----------------------------------------------------------------------

    def _upsert_pod(self, pod: PodRecord) -> None:
        old = self.pods.get(pod.uid)
        if old is not None:
            self._count_role(old, -1)
            self._count_live(old, -1)
            self.tally.uncount(pod.uid)
            self.tally.unuse(old)
            if old.node != pod.node:
                self._unplace(old)
            if old.group != pod.group:  # released by its owner (relabelled), or adopted
                self._leave_group(old)
        self.pods[pod.uid] = pod
        if pod.group is not None:
            self.pods_of_group.setdefault(pod.group, set()).add(pod.uid)
        if pod.node:
            self._pods_on_node.setdefault(pod.node, set()).add(pod.uid)
            self.inflight.discard(pod.uid)
        else:
            self.inflight.seen(pod.uid, pod.group)  # what the scheduler was told about it is confirmed
        self._count(pod)
        self.tally.use(pod)
        self._count_role(pod, +1)
        self._count_live(pod, +1)
        if pod.anti_affinity:
            self.anti_affine.add(pod.uid)
        else:
            self.anti_affine.discard(pod.uid)
        if pod.admission:
            self.admitted.seen(pod.admission)

    def _delete_pod(self, uid: str) -> None:
        pod = self.pods.pop(uid, None)
        if pod is None:
            return
        self._count_role(pod, -1)
        self._count_live(pod, -1)
        self.anti_affine.discard(uid)
        self.tally.uncount(uid)
        self.tally.unuse(pod)
        self._unplace(pod)
        self._leave_group(pod)
        self.inflight.discard(uid)

    def _leave_group(self, pod: PodRecord) -> None:
        if pod.group is not None:
            discard_member(self.pods_of_group, pod.group, pod.uid)

    def _unplace(self, pod: PodRecord) -> None:
        discard_member(self._pods_on_node, pod.node, pod.uid)

    def _count(self, pod: PodRecord) -> None:
        self.tally.count(pod, self.pool_of.get(pod.node))

    def _count_live(self, pod: PodRecord, delta: int) -> None:
        if pod.group is not None and not pod.terminating:
            add(self._live_of_group, pod.group, delta)

    def _count_role(self, pod: PodRecord, delta: int) -> None:
        if not pod.role or pod.group is None or pod.terminating:
            return
        roles = self.roles_of_group.setdefault(pod.group, Counter())
        roles[pod.role] += delta
        if roles[pod.role] <= 0:
            del roles[pod.role]
            if not roles:
                del self.roles_of_group[pod.group]

    # ---- queries -------------------------------------------------------------------

    def workload_of(self, group: GroupKey) -> WorkloadRecord | None:
        return self.workload_table.workload_of(group)

    def current_group(self, workload: WorkloadRecord) -> GroupKey:
        return self.workload_table.current_group(workload)

    def pods_on_node(self, node: str) -> set[str]:
        return self._pods_on_node.get(node, set())

    def pdbs_selecting(self, namespace: str, labels: dict) -> list[PdbRecord]:
        return self.workload_table.pdbs_selecting(namespace, labels)

    def counts(self, group: GroupKey) -> GroupCounts | None:
        return self.groups.get(group)

    def live_pods(self, group: GroupKey) -> int:
        """Pods of the group not being deleted, bound or not."""
        return self._live_of_group.get(group, 0)

    def room(self, group: GroupKey) -> int | None:
        """Pods of the group the watch may not show yet: its owner's replicas less its live
        pods. None while the owner is not in the index."""
        counted = self.workloads.get(WorkloadKey(*group))
        return counted.replicas - self.live_pods(group) if counted is not None else None

    def shown_role_pods(self, group: GroupKey, role: str) -> int:
        """Live pods of the group with this role that the watch shows, bound or not."""
        return self.roles_of_group.get(group, {}).get(role, 0)

    def role_pods(self, group: GroupKey, role: str) -> int:
        """Live pods of the group with this role, bound or not, and this replica's admissions
        of it that the watch has not shown yet."""
        return self.roles_of_group.get(group, {}).get(role, 0) + self.admitted.count(group, role)

    def top_level_workloads(self) -> list[WorkloadRecord]:
        return self.workload_table.top_level()

    def sizes(self) -> dict[str, int]:
        per_kind = Counter(k.kind for k in self.workloads)
        return {
            NODE: len(self.nodes),
            POD: len(self.pods),
            **{kind: per_kind.get(kind, 0) for kind in WORKLOAD_KINDS},
            PDB: sum(len(v) for v in self.pdbs.values()),
            PV: len(self.volumes.volumes),
            PVC: len(self.volumes.claims),
            "InFlight": len(self.inflight),
            "Admitted": len(self.admitted),
        }
