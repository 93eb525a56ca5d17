"""Whether some node of a class could take a pod now, judged as kube-scheduler's filters
would from what the index holds: not going away; node selector, required node affinity and
taints; the node affinity of the volumes its claims are bound to; CPU, memory, extended
resources (GPUs) and the pod count left; host ports; required pod anti-affinity against the
pods already there. Where the index cannot tell (a claim not bound, a required pod
affinity, an anti-affinity over namespaces picked by a selector) the answer is UNKNOWN, and
a move that depends on it waits rather than evicting on a guess.

The controller's moves and floor fallback, and the extender's floor hold, all ask here."""

from __future__ import annotations

from dataclasses import dataclass

from .constraints import NONE, Constraints, admits
from .index import Index
from .needs import HOSTNAME_KEY, NO_NEEDS, AntiAffinity, Needs, ports_conflict
from .nodes import ON_DEMAND, NodeRecord
from .volumes import volumes_admit


@dataclass(frozen=True, slots=True)
class Fit:
    verdict: bool | None  # True: node has room; False: no node of the class; None: cannot tell
    reason: str = ""  # why not, a fixed sentence (it labels a metric)
    node: str = ""

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


def find_room(index: Index, capacity: str, pod: Pod, besides: str = "") -> Fit:
    """The first node of that class other than `besides` that could take the pod."""
    needs = pod.needs
    if needs.pod_affinity:
        return Fit(None, "cannot tell: it has a required pod affinity")
    if any(term.other_namespaces for term in needs.anti_affinity):
        return Fit(None, "cannot tell: its pod anti-affinity selects namespaces by label")
    pins, unknown = index.volumes.pins(pod.namespace, needs.claims_of(pod.name)) if needs.claims or \
        needs.claim_templates else ([], "")
    if unknown:
        return Fit(None, f"cannot tell: {unknown}")
    stage = -1  # the furthest any node got: 0 of the class, 1 admitted, 2 its volumes attach there
    blocked: dict[AntiAffinity, set[str]] = {}
    names = index.on_demand_names if capacity == ON_DEMAND else index.nodes.keys()
    for name in names:
        node = index.nodes.get(name)
        if node is None or node.effective != capacity or name == besides or name in index.going_away:
            continue
        stage = max(stage, 0)
        if not admits(pod.constraints, name, node.labels, node.taints):
            continue
        stage = max(stage, 1)
        if pins and not volumes_admit(pins, name, node.labels):
            continue
        stage = 2
        if _fits(index, name, node, pod) and not any(
                _anti_affinity_blocks(index, term, node, pod, blocked) for term in needs.anti_affinity):
            return Fit(True, node=name)
    if stage == -1:
        return Fit(False, f"no other {capacity} node is up")
    if stage == 0:
        return Fit(False, f"no {capacity} node admits it (node selector, affinity or taints)")
    if stage == 1:
        return Fit(False, f"its volumes cannot be attached on any {capacity} node")
    return Fit(False, f"no {capacity} node has room for it")


def node_with_room(index: Index, capacity: str, cpu: int, memory: int, constraints: Constraints = NONE,
                   needs: Needs = NO_NEEDS) -> str | None:
    """The name of such a node, or None (and None when it cannot tell)."""
    fit = find_room(index, capacity, Pod(cpu, memory, constraints, needs))
    return fit.node or None


def _fits(index: Index, name: str, node: NodeRecord, pod: Pod) -> bool:
    used_cpu, used_memory = index.requested.get(name, (0, 0))
    if node.cpu - used_cpu < pod.cpu or node.memory - used_memory < pod.memory:
        return False
    on_node = index.pods_on_node(name)
    if node.pods and len(on_node) + 1 > node.pods:
        return False
    needs = pod.needs
    if not needs.extended and not needs.host_ports:
        return True
    allocatable = dict(node.extended)
    used: dict[str, int] = {}
    ports: list[tuple[int, str, str]] = []
    for uid in on_node:
        other = index.pods.get(uid)
        if other is None or other.terminating:
            continue
        for resource, amount in other.extended:
            used[resource] = used.get(resource, 0) + amount
        ports.extend(other.host_ports)
    if any(allocatable.get(r, 0) - used.get(r, 0) < amount for r, amount in needs.extended):
        return False
    return not ports_conflict(needs.host_ports, tuple(ports))


def _anti_affinity_blocks(index: Index, term: AntiAffinity, node: NodeRecord, pod: Pod,
                          blocked: dict[AntiAffinity, set[str]]) -> bool:
    """A pod the term selects runs in the node's topology domain (the node itself for hostname)."""
    domain = node.labels.get(term.topology_key)
    if domain is None:
        return False  # a node without the key is a domain of its own with nothing in it
    if term.topology_key == HOSTNAME_KEY:  # the common case: only this node's pods matter
        return _selects_any(index, term, pod, index.pods_on_node(node.name))
    if term not in blocked:  # once per call: every domain holding a selected pod
        blocked[term] = {labels[term.topology_key] for name, record in index.nodes.items()
                         if term.topology_key in (labels := record.labels)
                         and _selects_any(index, term, pod, index.pods_on_node(name))}
    return domain in blocked[term]


def _selects_any(index: Index, term: AntiAffinity, pod: Pod, uids) -> bool:
    namespaces = term.namespaces or (pod.namespace,)
    for uid in uids:
        other = index.pods.get(uid)
        if other is not None and not other.terminating and other.uid != pod.uid and \
                other.namespace in namespaces and term.selects(other.labels):
            return True
    return False
