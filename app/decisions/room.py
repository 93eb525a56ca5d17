"""Whether some node of a class could take a pod now, judged as kube-scheduler's filters
would from what the index holds: not going away; node selector, required node affinity and
taints; the node affinity of the volumes its claims are bound to; CPU, memory, extended
resources (GPUs) and the pod count left; host ports; required pod affinity and
anti-affinity, its own against the pods there and theirs against it. Where the index
cannot tell (a claim not bound, a term over namespaces picked by label, more terms than
it follows) the answer is UNKNOWN, and a move that depends on it waits rather than
evicting on a guess.

The controller's moves and floor fallback, and the extender's floor hold, all ask here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

from ..cluster.constraints import NONE, Constraints, admits
from ..cluster.index import Index
from ..cluster.needs import NO_NEEDS, Needs, PodTerm, ports_conflict
from ..cluster.nodes import NodeRecord
from ..cluster.records import PodRecord
from ..cluster.volumes import volumes_admit
from ..core.vocabulary import HOSTNAME_LABEL, Capacity

# A term costs a scan of the cluster's pods (hostname terms: of one node's); a pod spec
# with more than this many is judged UNKNOWN rather than let a request stall the process.
MAX_POD_TERMS = 8


@dataclass(frozen=True, slots=True)
class Fit:
    verdict: bool | None  # True: node has room; False: no node of the class; None: cannot tell
    reason: str = ""  # why not, a fixed sentence (it labels a metric)
    node: str = ""
    # A "no" that a new node of the class would cure (room, or no node up): an autoscaler
    # can; a "no" from selectors, taints or volumes it cannot.
    fixable: bool = False

    def __bool__(self) -> bool:
        return self.verdict is True

    @property
    def unknown(self) -> bool:
        return self.verdict is None


@dataclass(frozen=True, slots=True)
class Pod:
    """The pod to place, as far as room goes: a replacement has its template's needs."""

    cpu: int = 0
    memory: int = 0
    constraints: Constraints = NONE
    needs: Needs = NO_NEEDS
    namespace: str = ""
    name: str = ""  # a StatefulSet pod's claims follow its name
    uid: str = ""  # the pod being replaced: its own presence blocks nothing
    labels: Mapping[str, str] = field(default_factory=dict)  # what other pods' terms select it by


def find_room(index: Index, capacity: str, pod: Pod, besides: str = "") -> Fit:
    """The first node of that class other than `besides` that could take the pod."""
    needs = pod.needs
    terms = (*needs.affinity, *needs.anti_affinity)
    if len(terms) > MAX_POD_TERMS:
        return Fit(None, "cannot tell: more pod affinity terms than it follows")
    if any(term.other_namespaces for term in terms):
        return Fit(None, "cannot tell: its pod affinity selects namespaces by label")
    pins, unknown = index.claim_pins(pod.namespace, needs.claims_of(pod.name)) if needs.claims or \
        needs.claim_templates else ([], "")
    if unknown:
        return Fit(None, f"cannot tell: {unknown}")
    kept_away, unknown = _kept_away_by_others(index, pod)
    if unknown:
        return Fit(None, f"cannot tell: {unknown}")
    domains = _Domains(index, pod)
    stage = -1  # the furthest any node got: 0 of the class, 1 admitted, 2 its volumes attach there
    names = index.on_demand_nodes() if capacity == Capacity.ON_DEMAND else index.node_names()
    for name in names:
        node = index.node(name)
        if node is None or node.effective != capacity or name == besides or name in index.going_away():
            continue
        stage = max(stage, 0)
        if not admits(pod.constraints, name, node.labels, node.taints):
            continue
        stage = max(stage, 1)
        if pins and not volumes_admit(pins, name, node.labels):
            continue
        stage = 2
        if any(node.labels.get(key) in blocked for key, blocked in kept_away.items()):
            continue
        if _fits(index, name, node, pod) and all(domains.allows(term, node) for term in needs.affinity) and \
                not any(domains.holds(term, node) for term in needs.anti_affinity):
            return Fit(True, node=name)
    if stage == -1:
        return Fit(False, f"no other {capacity} node is up", fixable=True)
    if stage == 0:
        return Fit(False, f"no {capacity} node admits it (node selector, affinity or taints)")
    if stage == 1:
        return Fit(False, f"its volumes cannot be attached on any {capacity} node")
    return Fit(False, f"no {capacity} node has room for it", fixable=True)


def node_with_room(index: Index, capacity: str, pod: Pod) -> str | None:
    """The name of such a node, or None (and None when it cannot tell)."""
    return find_room(index, capacity, pod).node or None


def _fits(index: Index, name: str, node: NodeRecord, pod: Pod) -> bool:
    used_cpu, used_memory = index.requested(name)
    if node.cpu - used_cpu < pod.cpu or node.memory - used_memory < pod.memory:
        return False
    if node.pods and index.pods_on_node_count(name) + 1 > node.pods:
        return False
    needs = pod.needs
    if not needs.extended and not needs.host_ports:
        return True
    allocatable = dict(node.extended)
    used: dict[str, int] = {}
    ports: list[tuple[int, str, str]] = []
    for other in index.pods_on_node(name):  # terminating pods too: kube-scheduler counts them until they are gone
        for resource, amount in other.extended:
            used[resource] = used.get(resource, 0) + amount
        ports.extend(other.host_ports)
    if any(allocatable.get(r, 0) - used.get(r, 0) < amount for r, amount in needs.extended):
        return False
    return not ports_conflict(needs.host_ports, tuple(ports))


def _kept_away_by_others(index: Index, pod: Pod) -> tuple[dict[str, set[str]], str]:
    """({topology key: domains} where a running pod's required anti-affinity selects this
    pod, why it cannot tell or "")."""
    kept: dict[str, set[str]] = {}
    for other in index.anti_affine_pods():
        node = index.node(other.node) if other.node else None
        if node is None or other.terminating or other.uid == pod.uid:
            continue
        for term in other.anti_affinity:
            if not term.selects(pod.labels):
                continue
            if term.other_namespaces:
                return {}, "a running pod's anti-affinity selects namespaces by label"
            if pod.namespace in (term.namespaces or (other.namespace,)):
                domain = node.labels.get(term.topology_key)
                if domain is not None:
                    kept.setdefault(term.topology_key, set()).add(domain)
    return kept, ""


class _Domains:
    """Topology domains holding a pod a term selects, worked out once per term and call."""

    def __init__(self, index: Index, pod: Pod):
        self.index, self.pod = index, pod
        self._holding: dict[PodTerm, set[str]] = {}

    def holds(self, term: PodTerm, node: NodeRecord) -> bool:
        """A pod the term selects runs in the node's domain (the node itself for hostname)."""
        domain = node.labels.get(term.topology_key)
        if domain is None:
            return False  # a node without the key is a domain of its own with nothing in it
        if term.topology_key == HOSTNAME_LABEL:  # the common case: only this node's pods matter
            return self._selects_any(term, self.index.pods_on_node(node.name))
        return domain in self._domains(term)

    def allows(self, term: PodTerm, node: NodeRecord) -> bool:
        """Required affinity: a selected pod runs in the node's domain; or none runs anywhere
        and the pod selects itself (the first of a group that keeps together)."""
        if self.holds(term, node):
            return True
        return not self._domains(term) and term.selects(self.pod.labels) and \
            self.pod.namespace in (term.namespaces or (self.pod.namespace,))

    def _domains(self, term: PodTerm) -> set[str]:
        if term not in self._holding:
            index = self.index
            self._holding[term] = {labels[term.topology_key] for name, record in index.nodes()
                                   if term.topology_key in (labels := record.labels)
                                   and self._selects_any(term, index.pods_on_node(name))}
        return self._holding[term]

    def _selects_any(self, term: PodTerm, pods: Iterable[PodRecord]) -> bool:
        namespaces = term.namespaces or (self.pod.namespace,)
        for other in pods:
            if not other.terminating and other.uid != self.pod.uid and \
                    other.namespace in namespaces and term.selects(other.labels):
                return True
        return False
