"""Which namespaces and workloads the controller may act on."""

from __future__ import annotations

from ..cluster.index import Index
from ..cluster.records import PodRecord, WorkloadRecord
from ..core.settings import Settings


class Scope:
    def __init__(self, index: Index, settings: Settings):
        self.index = index
        self.excluded = frozenset(settings.excluded_namespaces)
        self.included = frozenset(settings.controller_namespaces)

    def acts_in(self, namespace: str) -> bool:
        return namespace not in self.excluded and (not self.included or namespace in self.included)

    def may_move(self, workload: WorkloadRecord) -> bool:
        """The workload is in scope and has not opted out (spot-extender.io/rebalance: "false")."""
        return self.acts_in(workload.namespace) and workload.rebalance

    def is_surge(self, pod: PodRecord) -> bool:
        """A surge ReplicaSet's pod in a namespace the controller acts in (controller/surge.py)."""
        if pod.group is None or not self.acts_in(pod.namespace):
            return False
        workload = self.index.workload(pod.group)
        return workload is not None and workload.surge_for is not None

    def may_touch(self, pod: PodRecord) -> bool:
        """The pod's workload is in scope; never a surge pod: its own ReplicaSet is scaled instead."""
        if pod.group is None or not self.acts_in(pod.namespace):
            return False
        workload = self.index.workload_of(pod.group)
        return workload is None or workload.rebalance and workload.surge_for is None
