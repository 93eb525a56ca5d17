"""Pods as the index keeps them: records by uid, by node and by group, live pods and their
roles per group, and the counts a scheduling call needs (tally.py). A pod event also
confirms what this replica decided about the pod (inflight.py, admitted.py)."""

from __future__ import annotations

from collections import Counter
from types import MappingProxyType
from typing import Callable, Mapping

from ..core.counted import add, discard_member
from .inflight import InFlight
from .nodes import Pool
from .records import GroupKey, PodRecord
from .tally import Tally

_NO_ROLES: Mapping[str, int] = MappingProxyType({})


class PodTable:
    def __init__(self, pool_of: Callable[[str], Pool | None], inflight: InFlight,
                 admission_seen: Callable[[str], None]):
        self._pool = pool_of  # a node's pool now; None: unknown or gone
        self.inflight = inflight
        self._admission_seen = admission_seen  # the watch shows a pod this replica admitted
        self.tally = Tally()
        self._pods: dict[str, PodRecord] = {}
        self._pods_on_node: dict[str, set[str]] = {}
        self._pods_of_group: dict[GroupKey, set[str]] = {}  # every pod, pending ones too
        self._roles_of_group: dict[GroupKey, Counter] = {}  # live pods, bound or not, by role label
        self._live_of_group: Counter = Counter()  # pods not being deleted, bound or not
        self._anti_affine: set[str] = set()  # pods with a required pod anti-affinity (room.py reads them)

    # ---- feeding -------------------------------------------------------------------

    def put(self, pod: PodRecord) -> None:
        old = self._pods.get(pod.uid)
        if old is not None:
            self._count_role(old, -1)
            self._count_live(old, -1)
            self.tally.uncount(pod.uid)
            self.tally.unuse(old)
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
        self.tally.use(pod)
        self._count_role(pod, +1)
        self._count_live(pod, +1)
        if pod.anti_affinity:
            self._anti_affine.add(pod.uid)
        else:
            self._anti_affine.discard(pod.uid)
        if pod.admission:
            self._admission_seen(pod.admission)

    def drop(self, uid: str) -> None:
        pod = self._pods.pop(uid, None)
        if pod is None:
            return
        self._count_role(pod, -1)
        self._count_live(pod, -1)
        self._anti_affine.discard(uid)
        self.tally.uncount(uid)
        self.tally.unuse(pod)
        self._unplace(pod)
        self._leave_group(pod)
        self.inflight.discard(uid)

    def _leave_group(self, pod: PodRecord) -> None:
        if pod.group is not None:
            discard_member(self._pods_of_group, pod.group, pod.uid)

    def _unplace(self, pod: PodRecord) -> None:
        discard_member(self._pods_on_node, pod.node, pod.uid)

    def _count(self, pod: PodRecord) -> None:
        self.tally.count(pod, self._pool(pod.node))

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

    def recount_node(self, name: str) -> None:
        """The node's pool changed, or it went: its pods count where they are now."""
        for uid in self._pods_on_node.get(name, ()):
            self.tally.uncount(uid)
            self._count(self._pods[uid])

    def forget_node(self, name: str) -> None:
        """Pods still bound to a deleted node are lost capacity: they stop counting."""
        self.tally.forget_node(name)
        self.recount_node(name)

    def uids(self) -> list[str]:
        return list(self._pods)

    # ---- queries -------------------------------------------------------------------

    def get(self, uid: str) -> PodRecord | None:
        return self._pods.get(uid)

    def all(self) -> list[PodRecord]:
        """Every pod."""
        return list(self._pods.values())

    def __len__(self) -> int:
        return len(self._pods)

    def of_group(self, group: GroupKey) -> list[PodRecord]:
        """Every pod of the group, pending and terminating ones too."""
        pods = self._pods
        return [pods[uid] for uid in self._pods_of_group.get(group, ())]

    def live(self, group: GroupKey) -> list[PodRecord]:
        """Pods of the group not being deleted, bound or not."""
        pods = self._pods
        return [pod for uid in self._pods_of_group.get(group, ()) if not (pod := pods[uid]).terminating]

    def live_count(self, group: GroupKey) -> int:
        """How many pods of the group are not being deleted, bound or not."""
        return self._live_of_group.get(group, 0)

    def on_node_count(self, node: str) -> int:
        """Pods bound to the node, terminating ones too."""
        return len(self._pods_on_node.get(node, ()))

    def on_node(self, node: str) -> list[PodRecord]:
        """Pods bound to the node, terminating ones too."""
        pods = self._pods
        return [pods[uid] for uid in self._pods_on_node.get(node, ())]

    def anti_affine(self) -> list[PodRecord]:
        """Pods with a required pod anti-affinity: they keep others away too."""
        pods = self._pods
        return [pods[uid] for uid in self._anti_affine]

    def roles(self, group: GroupKey) -> Mapping[str, int]:
        """Live pods of the group that the watch shows, bound or not, by role."""
        return self._roles_of_group.get(group, _NO_ROLES)

    def groups_with(self, role: str) -> list[GroupKey]:
        """Groups with at least one live pod of this role."""
        return [group for group, roles in self._roles_of_group.items() if roles.get(role)]
