"""The floor k of a workload: the one place the extender, the controller and the status
view ask, so they can never disagree about it.

For the controller and the status view the floor is also clamped to what the workload's
pods can do: pods that no on-demand node would admit (a node selector for spot, say)
have a floor of 0, and pods that no spot node would admit (required affinity to
on-demand, or spot nodes tainted against them) keep every replica on on-demand. Such a
workload is then neither short of its floor nor a candidate for moves.

Where the webhook gives pods their roles, a spot pod also tolerates --spot-tolerations
(AKS taints every spot pool): spot is judged with them. In extender-only mode the
template's tolerations are all a pod gets, and spot is judged with those alone."""

from __future__ import annotations

from dataclasses import replace

from ..cluster.constraints import Constraints, admits, with_tolerations
from ..cluster.index import Index
from ..cluster.needs import NO_NEEDS, Needs
from ..cluster.records import WorkloadRecord
from ..cluster.volumes import volumes_admit
from ..core import logs
from ..core.settings import Settings
from ..core.vocabulary import Capacity
from .policy import Floor, compute_floor

log = logs.get("floors")

# A surge ReplicaSet's pods stand in for doomed spot replicas for a few minutes: none is a floor.
SURGE_FLOOR = Floor(0, "surge ReplicaSet: its pods are spot")


class Floors:
    def __init__(self, index: Index, settings: Settings):
        self.index = index
        self.default = settings.default_floor
        self.from_max_unavailable = settings.floor_from_max_unavailable
        self._warned = logs.Once()
        self._classes: dict[tuple, tuple] = {}  # by (constraints, extended requests), this placement generation
        self._classes_generation = -1
        self._spot_tolerations = settings.spot_toleration_rules
        self._as_spot_pods: dict[Constraints, Constraints] = {}

    def of(self, workload: WorkloadRecord | None, namespace: str, pod_labels: dict) -> Floor:
        """k for a workload; PDBs are matched against pod_labels (the pod's, or its template's)."""
        if workload is None:
            # The watch has not delivered the owner yet: assume the default floor.
            return Floor(self.default, "default (workload not in index yet)")
        if workload.surge_for is not None:
            return SURGE_FLOOR
        floor = compute_floor(
            workload.replicas,
            workload.floor,
            workload.placement,
            self.index.pdbs_selecting(namespace, pod_labels),
            self.default,
            self.from_max_unavailable,
        )
        if floor.problems and self._warned.first((workload.key, floor.problems)):
            log.warning("ignored workload annotation", extra={
                "workload": f"{workload.kind}/{workload.namespace}/{workload.name}", "problems": floor.problems,
            })
        return floor

    def of_workload(self, workload: WorkloadRecord, roles: bool | None = None) -> Floor:
        """k as the controller must keep it: clamped to the classes the pods can run on.
        `roles`: the webhook gives the pods roles (None: its counted pods say whether)."""
        floor = self.of(workload, workload.namespace, workload.template_labels)
        if floor is SURGE_FLOOR:
            return floor
        if roles is None:
            roles = bool(self.index.roles(self.index.current_group(workload)))
        needs = workload.needs
        present, allowed = self.classes_admitting(workload.constraints, needs, workload.namespace)
        spot_side = self.spot_constraints(workload.constraints, roles)
        if spot_side is not workload.constraints:
            allowed = (allowed - {Capacity.SPOT}) | (self.classes_admitting(spot_side, needs, workload.namespace)[1] & {Capacity.SPOT})
        # A class with no node at all (every spot node reclaimed) clamps nothing: it is
        # missing capacity, and the moves wait for room as they always do.
        if floor.k > 0 and Capacity.ON_DEMAND in present and Capacity.ON_DEMAND not in allowed:
            return replace(floor, k=0, clamp=f"its pods cannot run on any on-demand node ({_what(needs)})")
        if floor.k < workload.replicas and Capacity.SPOT in present and Capacity.SPOT not in allowed and Capacity.ON_DEMAND in allowed:
            return replace(floor, k=workload.replicas, clamp=f"its pods cannot run on any spot node ({_what(needs)})")
        return floor

    def volume_classes(self, namespace: str, claims: tuple[str, ...]) -> frozenset[str] | None:
        """Classes with a node (not going away) where the volumes bound to these claims can be
        attached; None when it cannot tell (a claim not bound or not seen)."""
        pins, unknown = self.index.claim_pins(namespace, claims)
        if unknown or not pins:
            return None  # nothing known, or nothing pinned: the volumes decide nothing
        going_away = self.index.going_away()
        found: set[str] = set()
        for name, node in self.index.nodes():
            if name not in going_away and node.effective not in found and volumes_admit(pins, name, node.labels):
                found.add(node.effective)
                if len(found) == 2:
                    break
        return frozenset(found)

    def spot_constraints(self, constraints: Constraints, roles: bool) -> Constraints:
        """Where a spot pod so constrained may run: with the webhook's tolerations when it
        gives roles. The same object for the same constraints, so caches keyed by it hold."""
        if not roles:
            return constraints
        answer = self._as_spot_pods.get(constraints)
        if answer is None:
            if len(self._as_spot_pods) > 10_000:
                self._as_spot_pods.clear()
            answer = self._as_spot_pods[constraints] = with_tolerations(constraints, self._spot_tolerations)
        return answer

    def classes_admitting(self, constraints: Constraints, needs: Needs = NO_NEEDS,
                          namespace: str = "") -> tuple[frozenset[str], frozenset[str]]:
        """(classes with any node, classes with a node that would admit pods so constrained and
        has their extended resources at all, where the volumes of the template's own claims
        attach), room aside. Nodes going away are neither: their going-away taints must not
        read as pods that cannot run on spot. Cached until a node's class, labels, taints,
        extended resources or going away change; claims whose volumes are unknown pin nothing."""
        if self._classes_generation != self.index.placement_generation:
            self._classes.clear()
            self._classes_generation = self.index.placement_generation
        key = (constraints, needs.extended)
        answer = self._classes.get(key) if not needs.claims else None
        if answer is None:
            pins = self.index.claim_pins(namespace, needs.claims)[0] if needs.claims else []
            wanted = needs.extended
            present: set[str] = set()
            found: set[str] = set()
            going_away = self.index.going_away()
            for name, node in self.index.nodes():
                if name in going_away:
                    continue
                present.add(node.effective)
                if node.effective not in found and admits(constraints, name, node.labels, node.taints) and (
                        not wanted or _has_resources(node.extended, wanted)) and (
                        not pins or volumes_admit(pins, name, node.labels)):
                    found.add(node.effective)
                    if len(found) == 2:
                        break
            answer = (frozenset(present), frozenset(found))
            if not needs.claims:
                self._classes[key] = answer
        return answer


def _has_resources(allocatable: tuple[tuple[str, int], ...], wanted: tuple[tuple[str, int], ...]) -> bool:
    have = dict(allocatable)
    return all(have.get(name, 0) >= amount for name, amount in wanted)


def _what(needs: Needs) -> str:
    parts = ["node selector, required affinity or taints"]
    if needs.extended:
        parts.append("extended resources: " + ", ".join(name for name, _ in needs.extended))
    if needs.claims:
        parts.append("volumes")
    return "; ".join(parts)
