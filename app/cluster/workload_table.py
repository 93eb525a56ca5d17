"""Workload records and PodDisruptionBudgets, and how pods' groups lead to their workload."""

from __future__ import annotations

from ..api.kinds import BY_NAME, REPLICASET
from ..core.counted import discard_member
from .constraints import selector_matches
from .records import GroupKey, PdbRecord, WorkloadKey, WorkloadRecord


class WorkloadTable:
    def __init__(self) -> None:
        self._records: dict[WorkloadKey, WorkloadRecord] = {}
        self._pdbs: dict[str, dict[str, PdbRecord]] = {}  # namespace -> name -> PDB
        self._replicasets_of: dict[WorkloadKey, set[str]] = {}  # owner -> names of its ReplicaSets
        self._surges_of: dict[WorkloadKey, set[str]] = {}  # workload -> names of its surge ReplicaSets

    # ---- feeding -------------------------------------------------------------------

    def put(self, record: WorkloadRecord) -> None:
        old = self._records.get(record.key)
        if old is not None and old.owner != record.owner:
            self._unlink_replicaset(old)
        if old is not None and old.surge_for != record.surge_for:
            self._unlink_surge(old)
        self._records[record.key] = record
        if record.owner is not None:
            self._replicasets_of.setdefault(record.owner, set()).add(record.name)
        if record.surge_for is not None:
            self._surges_of.setdefault(record.surge_for, set()).add(record.name)

    def drop(self, key: WorkloadKey) -> None:
        record = self._records.pop(key, None)
        if record is not None:
            self._unlink_replicaset(record)
            self._unlink_surge(record)

    def _unlink_replicaset(self, record: WorkloadRecord) -> None:
        if record.owner is not None:
            discard_member(self._replicasets_of, record.owner, record.name)

    def _unlink_surge(self, record: WorkloadRecord) -> None:
        if record.surge_for is not None:
            discard_member(self._surges_of, record.surge_for, record.name)

    def put_pdb(self, record: PdbRecord) -> None:
        self._pdbs.setdefault(record.namespace, {})[record.name] = record

    def drop_pdb(self, namespace: str, name: str) -> None:
        by_name = self._pdbs.get(namespace, {})
        by_name.pop(name, None)
        if not by_name:
            self._pdbs.pop(namespace, None)

    # ---- queries -------------------------------------------------------------------

    def get(self, key: WorkloadKey | GroupKey) -> WorkloadRecord | None:
        """The record of a workload, or of the object whose pods make a group (a ReplicaSet,
        a StatefulSet): the two keys are equal tuples."""
        return self._records.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._records

    def __len__(self) -> int:
        return len(self._records)

    def records(self) -> list[WorkloadRecord]:
        """Every record, a copy: callers may await while they go through it."""
        return list(self._records.values())

    def keys_of_all(self) -> list[WorkloadKey]:
        return list(self._records)

    def keys_of(self, kind: str) -> list[WorkloadKey]:
        return [k for k in self._records if k.kind == kind]

    def pdb_keys(self) -> list[tuple[str, str]]:
        return [(ns, name) for ns, by_name in self._pdbs.items() for name in by_name]

    def pdb_count(self) -> int:
        return sum(len(by_name) for by_name in self._pdbs.values())

    def workload_of(self, group: GroupKey) -> WorkloadRecord | None:
        """The workload whose R and annotations govern a group; None while unseen."""
        record = self._records.get(WorkloadKey(*group))
        if record is None or record.owner is None:
            return record
        return self._records.get(record.owner)

    def current_group(self, workload: WorkloadRecord) -> GroupKey:
        """The group counted for a workload now: for kinds that own ReplicaSets, the newest."""
        if not BY_NAME[workload.kind].owns_replicasets:
            return GroupKey(workload.kind, workload.namespace, workload.name)
        names = self._replicasets_of.get(workload.key, ())
        newest = max(
            names,
            key=lambda n: (self._records[WorkloadKey(REPLICASET, workload.namespace, n)].revision, n),
            default="",
        )
        return GroupKey(REPLICASET, workload.namespace, newest)

    def top_level(self) -> list[WorkloadRecord]:
        """Every workload but ReplicaSets that a watched kind (a Deployment, a Rollout) owns,
        and surge ReplicaSets (they serve one)."""
        return [w for w in self._records.values() if w.owner is None and w.surge_for is None]

    def surges_of(self, workload: WorkloadKey) -> list[WorkloadRecord]:
        """The surge ReplicaSets serving a workload (one, unless a past term left another)."""
        return [self._records[WorkloadKey(REPLICASET, workload.namespace, name)]
                for name in sorted(self._surges_of.get(workload, ()))]

    def surge_workloads(self) -> list[WorkloadKey]:
        """Workloads with at least one surge ReplicaSet."""
        return list(self._surges_of)

    def pdbs_selecting(self, namespace: str, labels: dict) -> list[PdbRecord]:
        return [p for p in self._pdbs.get(namespace, {}).values() if selector_matches(p.selector, labels)]
