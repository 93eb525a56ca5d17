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
from dataclasses import dataclass
from functools import partial
from typing import Callable, Hashable, Iterable

from ..api.kinds import KIND_NAMES, NODE, PDB, POD, PV, PVC, WORKLOAD_KINDS
from ..core.settings import Settings
from .admitted import Admitted
from .freshness import Freshness
from .inflight import InFlight
from .node_table import NodeTable
from .nodes import NodeClassifier, NodeRecord
from .pod_table import PodTable
from .records import (
    GroupKey,
    WorkloadKey,
    pdb_record,
    pod_record,
    workload_record,
)
from .volumes import VolumeTable, claim_record, volume_record
from .workload_table import WorkloadTable


@dataclass(frozen=True, slots=True)
class _Feed:
    """How one kind's events reach its table."""

    key: Callable[[dict], Hashable]  # the table key of a raw object
    record: Callable[[dict], object]  # the slim record the table keeps of it
    put: Callable[[object], None]
    drop: Callable[[Hashable], None]
    keys: Callable[[], list]  # every key the table holds


def _name(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("name") or ""


def _uid(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("uid") or ""


def _namespaced(obj: dict) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


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
        self._nodes = nodes = NodeTable(classifier, lambda: self.clock(), lambda: self.wall())
        self._workloads = WorkloadTable()
        self._volumes = VolumeTable()
        self._pods = PodTable(nodes.pools().get, inflight, lambda admission: self.admitted.seen(admission))
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
        self.surges_of = workloads.surges_of
        self.surge_workloads = workloads.surge_workloads
        self.pdbs_selecting = workloads.pdbs_selecting
        self.claim_pins = self._volumes.pins
        # And the pod queries of the pod table, with its counts.
        pods = self._pods
        self.pod = pods.get
        self.pods = pods.all
        self.pods_of = pods.of_group  # every pod of the group, pending and terminating ones too
        self.live_pods = pods.live  # pods of the group not being deleted, bound or not
        self.live_count = pods.live_count
        self.pods_on_node = pods.on_node  # bound to the node, terminating ones too
        self.pods_on_node_count = pods.on_node_count
        self.anti_affine_pods = pods.anti_affine
        self.roles = pods.roles  # live pods of the group that the watch shows, by role
        self.groups_with = pods.groups_with
        self.counts = pods.tally.of
        self.requested = pods.tally.requested
        self._synced_kinds: set[str] = set()
        self._synced = asyncio.Event()
        self._subscribers: list[Callable[[str], None]] = []
        self._feeds = self._build_feeds()

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
        feed = self._feeds.get(kind) or self._unknown(kind)
        if event_type == "DELETED":
            feed.drop(feed.key(obj))
        else:
            feed.put(feed.record(obj))
        self._changed(kind)

    def replace(self, kind: str, objs: Iterable[dict]) -> None:
        """The result of a (re-)list: whatever is not in it is gone."""
        listed: set = set()
        self.put_listed(kind, objs, listed)
        self.end_list(kind, listed)

    def put_listed(self, kind: str, objs: Iterable[dict], listed: set) -> None:
        """One page of a (re-)list, applied as it arrives; `listed` collects its keys for end_list.
        Until then what the list has not reached yet stays as it was."""
        feed = self._feeds.get(kind) or self._unknown(kind)
        for obj in objs:
            listed.add(feed.key(obj))
            feed.put(feed.record(obj))

    def end_list(self, kind: str, listed: set) -> None:
        """The (re-)list is complete: whatever it did not hold is gone."""
        feed = self._feeds.get(kind) or self._unknown(kind)
        for key in [k for k in feed.keys() if k not in listed]:
            feed.drop(key)
        self._synced_kinds.add(kind)
        if self._synced_kinds.issuperset(KIND_NAMES):
            self._synced.set()
        self._changed(kind)

    @staticmethod
    def _unknown(kind: str) -> _Feed:
        raise ValueError(f"unknown kind {kind}")

    def _build_feeds(self) -> dict[str, _Feed]:
        """How each kind's objects reach its table."""
        nodes, pods, workloads, volumes = self._nodes, self._pods, self._workloads, self._volumes
        feeds = {
            NODE: _Feed(_name, self.classifier.record, self._upsert_node, self._delete_node, lambda: list(nodes.names())),
            POD: _Feed(_uid, pod_record, pods.put, pods.drop, pods.uids),
            PDB: _Feed(_namespaced, pdb_record, workloads.put_pdb, lambda k: workloads.drop_pdb(*k), workloads.pdb_keys),
            PV: _Feed(_name, volume_record, volumes.put_volume, volumes.drop_volume, volumes.volume_names),
            PVC: _Feed(_namespaced, claim_record, volumes.put_claim, lambda k: volumes.drop_claim(*k), volumes.claim_keys),
        }
        for kind in WORKLOAD_KINDS:
            feeds[kind] = _Feed(
                _namespaced, partial(workload_record, kind), workloads.put,
                lambda k, kind=kind: workloads.drop(WorkloadKey(kind, *k)),
                lambda kind=kind: [(k.namespace, k.name) for k in workloads.keys_of(kind)])
        return feeds

    def _upsert_node(self, record: NodeRecord) -> None:
        if self._nodes.put(record):
            self._pods.recount_node(record.name)

    def _delete_node(self, name: str) -> None:
        if self._nodes.drop(name):
            self._pods.forget_node(name)

    # ---- queries besides those bound in __init__ --------------------------------------

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
