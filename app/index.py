"""In-memory index of the cluster, fed by watch events, read by the extender and controllers.

Every count a scheduling call needs is kept up to date per event, so a call costs
O(candidate nodes) and never scans pods. A pod's contribution to the counts is stored
when it is added, so removing it subtracts exactly what was added, whatever changed
on its node in between.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Iterable

from .inflight import InFlight
from .nodes import ON_DEMAND, NodeClassifier, NodeRecord, Pool
from .workloads import (
    DEPLOYMENT,
    REPLICASET,
    STATEFULSET,
    GroupKey,
    PdbRecord,
    PodRecord,
    WorkloadKey,
    WorkloadRecord,
    pdb_record,
    pod_record,
    selector_matches,
    workload_record,
)

NODE = "Node"
POD = "Pod"
PDB = "PodDisruptionBudget"
WORKLOAD_KINDS = (DEPLOYMENT, STATEFULSET, REPLICASET)
KINDS = (NODE, POD, REPLICASET, DEPLOYMENT, STATEFULSET, PDB)


class GroupCounts:
    """Bound, alive replicas of one counted controller object, by class, node and pool."""

    __slots__ = ("on_demand", "spot", "per_node", "per_pool")

    def __init__(self) -> None:
        self.on_demand = 0
        self.spot = 0
        self.per_node: Counter = Counter()
        self.per_pool: Counter = Counter()

    def change(self, node: str, pool: Pool, delta: int) -> None:
        if pool.capacity == ON_DEMAND:
            self.on_demand += delta
        else:
            self.spot += delta
        _bump(self.per_node, node, delta)
        _bump(self.per_pool, pool, delta)


def _bump(counter: Counter, key, delta: int) -> None:
    value = counter[key] + delta
    if value:
        counter[key] = value
    else:
        del counter[key]


class Index:
    def __init__(self, classifier: NodeClassifier, inflight: InFlight):
        self.classifier = classifier
        self.inflight = inflight
        self.nodes: dict[str, NodeRecord] = {}
        self.pool_of: dict[str, Pool] = {}
        self.on_demand_names: set[str] = set()
        self.going_away: dict[str, str] = {}
        self.node_generation = 0  # bumped whenever a node's pool appears, changes or goes
        self.pods: dict[str, PodRecord] = {}
        self.groups: dict[GroupKey, GroupCounts] = {}
        self.workloads: dict[WorkloadKey, WorkloadRecord] = {}
        self.pdbs: dict[str, dict[str, PdbRecord]] = {}
        self.synced: set[str] = set()
        self._pods_on_node: dict[str, set[str]] = {}
        self._contribution: dict[str, tuple[GroupKey, str, Pool]] = {}
        self._replicasets_of: dict[tuple[str, str], set[str]] = {}
        self.pods_of_group: dict[GroupKey, set[str]] = {}  # every pod, pending ones too
        self.requested: dict[str, list[int]] = {}  # node -> [millicores, bytes] of its live pods
        self.on_change: Callable[[str], None] | None = None  # told the kind after each change

    # ---- feeding -------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.synced.issuperset(KINDS)

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
        objs = list(objs)
        fresh = {self._key(kind, obj) for obj in objs}
        for key in [k for k in self._keys(kind) if k not in fresh]:
            self._delete_key(kind, key)
        for obj in objs:
            self._upsert(kind, obj)
        self.synced.add(kind)
        if self.on_change is not None:
            self.on_change(kind)

    def _key(self, kind: str, obj: dict):
        meta = obj.get("metadata") or {}
        if kind == NODE:
            return meta.get("name") or ""
        if kind == POD:
            return meta.get("uid") or ""
        return (meta.get("namespace") or "", meta.get("name") or "")

    def _keys(self, kind: str) -> list:
        if kind == NODE:
            return list(self.nodes)
        if kind == POD:
            return list(self.pods)
        if kind == PDB:
            return [(ns, name) for ns, by_name in self.pdbs.items() for name in by_name]
        return [(k.namespace, k.name) for k in self.workloads if k.kind == kind]

    def _upsert(self, kind: str, obj: dict) -> None:
        if kind == NODE:
            self._upsert_node(self.classifier.record(obj))
        elif kind == POD:
            self._upsert_pod(pod_record(obj))
        elif kind == PDB:
            record = pdb_record(obj)
            self.pdbs.setdefault(record.namespace, {})[record.name] = record
        elif kind in WORKLOAD_KINDS:
            self._upsert_workload(workload_record(kind, obj))
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
            namespace, name = key
            by_name = self.pdbs.get(namespace, {})
            by_name.pop(name, None)
            if not by_name:
                self.pdbs.pop(namespace, None)
        elif kind in WORKLOAD_KINDS:
            self._delete_workload(WorkloadKey(kind, *key))
        else:
            raise ValueError(f"unknown kind {kind}")

    # ---- nodes ---------------------------------------------------------------------

    def _upsert_node(self, record: NodeRecord) -> None:
        name = record.name
        old = self.nodes.get(name)
        self.nodes[name] = record
        self.pool_of[name] = record.pool
        if record.effective == ON_DEMAND:
            self.on_demand_names.add(name)
        else:
            self.on_demand_names.discard(name)
        if record.going_away:
            self.going_away[name] = record.going_away
        else:
            self.going_away.pop(name, None)
        if old is None or old.pool != record.pool:
            self.node_generation += 1
            self._recount_node(name)

    def _delete_node(self, name: str) -> None:
        if self.nodes.pop(name, None) is None:
            return
        del self.pool_of[name]
        self.requested.pop(name, None)
        self.node_generation += 1
        self.on_demand_names.discard(name)
        self.going_away.pop(name, None)
        # Pods still bound to a deleted node are lost capacity: they stop counting.
        self._recount_node(name)

    def _recount_node(self, name: str) -> None:
        for uid in self._pods_on_node.get(name, ()):
            self._uncount(uid)
            self._count(self.pods[uid])

    # ---- pods ----------------------------------------------------------------------

    def _upsert_pod(self, pod: PodRecord) -> None:
        old = self.pods.get(pod.uid)
        if old is not None:
            self._uncount(pod.uid)
            self._unuse(old)
            if old.node != pod.node:
                self._unplace(old)
        self.pods[pod.uid] = pod
        if pod.group is not None:
            self.pods_of_group.setdefault(pod.group, set()).add(pod.uid)
        if pod.node:
            self._pods_on_node.setdefault(pod.node, set()).add(pod.uid)
            self.inflight.discard(pod.uid)
        self._count(pod)
        self._use(pod)

    def _delete_pod(self, uid: str) -> None:
        pod = self.pods.pop(uid, None)
        if pod is None:
            return
        self._uncount(uid)
        self._unuse(pod)
        self._unplace(pod)
        if pod.group is not None:
            members = self.pods_of_group.get(pod.group)
            if members is not None:
                members.discard(uid)
                if not members:
                    del self.pods_of_group[pod.group]
        self.inflight.discard(uid)

    def _use(self, pod: PodRecord) -> None:
        """Requests of live bound pods count against their node, as the scheduler counts them."""
        if pod.node and not pod.terminating:
            used = self.requested.setdefault(pod.node, [0, 0])
            used[0] += pod.cpu
            used[1] += pod.memory

    def _unuse(self, pod: PodRecord) -> None:
        used = self.requested.get(pod.node) if pod.node and not pod.terminating else None
        if used is not None:  # None: the node is gone, and its sums with it
            used[0] -= pod.cpu
            used[1] -= pod.memory

    def _unplace(self, pod: PodRecord) -> None:
        uids = self._pods_on_node.get(pod.node)
        if uids is not None:
            uids.discard(pod.uid)
            if not uids:
                del self._pods_on_node[pod.node]

    def _count(self, pod: PodRecord) -> None:
        pool = self.pool_of.get(pod.node)
        if not pod.counts or pool is None:
            return
        counts = self.groups.get(pod.group)
        if counts is None:
            counts = self.groups[pod.group] = GroupCounts()
        counts.change(pod.node, pool, +1)
        self._contribution[pod.uid] = (pod.group, pod.node, pool)

    def _uncount(self, uid: str) -> None:
        added = self._contribution.pop(uid, None)
        if added is None:
            return
        group, node, pool = added
        counts = self.groups[group]
        counts.change(node, pool, -1)
        if not counts.per_node:
            del self.groups[group]

    # ---- workloads and PDBs --------------------------------------------------------

    def _upsert_workload(self, record: WorkloadRecord) -> None:
        old = self.workloads.get(record.key)
        if old is not None and old.owner_deployment != record.owner_deployment:
            self._unlink_replicaset(old)
        self.workloads[record.key] = record
        if record.owner_deployment:
            self._replicasets_of.setdefault((record.namespace, record.owner_deployment), set()).add(record.name)

    def _delete_workload(self, key: WorkloadKey) -> None:
        record = self.workloads.pop(key, None)
        if record is not None:
            self._unlink_replicaset(record)

    def _unlink_replicaset(self, record: WorkloadRecord) -> None:
        if not record.owner_deployment:
            return
        link = (record.namespace, record.owner_deployment)
        names = self._replicasets_of.get(link)
        if names is not None:
            names.discard(record.name)
            if not names:
                del self._replicasets_of[link]

    # ---- queries -------------------------------------------------------------------

    def workload_of(self, group: GroupKey) -> WorkloadRecord | None:
        """The workload whose R and annotations govern a group; None while unseen."""
        if group.kind == STATEFULSET:
            return self.workloads.get(WorkloadKey(STATEFULSET, group.namespace, group.name))
        replicaset = self.workloads.get(WorkloadKey(REPLICASET, group.namespace, group.name))
        if replicaset is None or not replicaset.owner_deployment:
            return replicaset
        return self.workloads.get(WorkloadKey(DEPLOYMENT, group.namespace, replicaset.owner_deployment))

    def current_group(self, workload: WorkloadRecord) -> GroupKey:
        """The group counted for a workload now: a Deployment's newest ReplicaSet."""
        if workload.kind != DEPLOYMENT:
            return GroupKey(workload.kind, workload.namespace, workload.name)
        names = self._replicasets_of.get((workload.namespace, workload.name), ())
        newest = max(
            names,
            key=lambda n: (self.workloads[WorkloadKey(REPLICASET, workload.namespace, n)].revision, n),
            default="",
        )
        return GroupKey(REPLICASET, workload.namespace, newest)

    def pods_on_node(self, node: str) -> set[str]:
        return self._pods_on_node.get(node, set())

    def pdbs_selecting(self, namespace: str, labels: dict) -> list[PdbRecord]:
        return [p for p in self.pdbs.get(namespace, {}).values() if selector_matches(p.selector, labels)]

    def counts(self, group: GroupKey) -> GroupCounts | None:
        return self.groups.get(group)

    def top_level_workloads(self) -> list[WorkloadRecord]:
        """Deployments, StatefulSets, and ReplicaSets no Deployment owns."""
        return [
            w for w in self.workloads.values() if w.kind != REPLICASET or not w.owner_deployment
        ]

    def sizes(self) -> dict[str, int]:
        return {
            NODE: len(self.nodes),
            POD: len(self.pods),
            DEPLOYMENT: sum(1 for k in self.workloads if k.kind == DEPLOYMENT),
            STATEFULSET: sum(1 for k in self.workloads if k.kind == STATEFULSET),
            REPLICASET: sum(1 for k in self.workloads if k.kind == REPLICASET),
            PDB: sum(len(v) for v in self.pdbs.values()),
            "InFlight": len(self.inflight),
        }
