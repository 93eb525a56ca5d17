"""What a pod needs of a node beyond its node selector, affinity and tolerations: extended
resources (GPUs), host ports, required pod affinity and anti-affinity, and the
PersistentVolumeClaims whose volumes may pin it to a zone. Pure: read from a pod spec (or
a pod template's spec, whose limits stand in for requests it leaves out, as the API
server's defaults do for a pod), judged by app/decisions/room.py against what the index knows.
Malformed parts, which the API server would have refused, are read as absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from .constraints import requirement_holds
from .resources import pod_extended_requests

# A frozen metav1.LabelSelector: (matchLabels items, matchExpressions as (key, operator, values)).
FrozenSelector = tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str, tuple[str, ...]], ...]]


@dataclass(frozen=True, slots=True)
class PodTerm:
    """One required pod (anti-)affinity term: the pods it selects must (must not) share the
    topology domain."""

    topology_key: str
    selector: FrozenSelector | None  # None selects nothing
    namespaces: tuple[str, ...]  # () with own_namespace: the pod's own
    other_namespaces: bool  # a namespaceSelector: which namespaces it names is not followed

    def selects(self, labels: Mapping[str, str]) -> bool:
        if self.selector is None:
            return False
        match_labels, expressions = self.selector
        return all(labels.get(k) == v for k, v in match_labels) and all(
            requirement_holds(key, op, values, labels, "") for key, op, values in expressions)


@dataclass(frozen=True, slots=True)
class Needs:
    extended: tuple[tuple[str, int], ...] = ()  # requests in thousandths (resources.MILLI)
    host_ports: tuple[tuple[int, str, str], ...] = ()  # (port, protocol, host IP or "")
    anti_affinity: tuple[PodTerm, ...] = ()
    affinity: tuple[PodTerm, ...] = ()  # required pod affinity
    claims: tuple[str, ...] = ()  # PersistentVolumeClaims the spec names
    claim_templates: tuple[str, ...] = ()  # a StatefulSet's volumeClaimTemplates: <name>-<pod> each

    def claims_of(self, pod_name: str) -> tuple[str, ...]:
        """The claims of one pod: a StatefulSet's templates give each pod its own."""
        if not self.claim_templates or not pod_name:
            return self.claims
        return self.claims + tuple(f"{template}-{pod_name}" for template in self.claim_templates)



NO_NEEDS = Needs()


def needs_of(spec: dict, claim_templates: tuple[str, ...] = ()) -> Needs:
    """The needs of a pod spec. Malformed parts, which the API server would have refused,
    are read as absent."""
    needs = Needs(
        extended=pod_extended_requests(spec),
        host_ports=host_ports(spec),
        anti_affinity=pod_terms(spec, "podAntiAffinity"),
        affinity=pod_terms(spec, "podAffinity"),
        claims=claim_names(spec),
        claim_templates=claim_templates,
    )
    return NO_NEEDS if needs == NO_NEEDS else needs


def host_ports(spec: dict) -> tuple[tuple[int, str, str], ...]:
    """(port, protocol, host IP) taken on the node; with hostNetwork every container port is
    a host port (the API server's default)."""
    host_network = spec.get("hostNetwork") is True
    ports = []
    for container in [*_list(spec.get("containers")), *_list(spec.get("initContainers"))]:
        for port in _list(container.get("ports")) if isinstance(container, dict) else ():
            if not isinstance(port, dict):
                continue
            number = port.get("hostPort") or (port.get("containerPort") if host_network else None)
            if isinstance(number, int) and not isinstance(number, bool) and number > 0:
                ports.append((number, str(port.get("protocol") or "TCP"), str(port.get("hostIP") or "")))
    return tuple(sorted(set(ports)))


def _list(value) -> list:
    return value if isinstance(value, list) else []


def ports_conflict(wanted: tuple[tuple[int, str, str], ...], used: tuple[tuple[int, str, str], ...]) -> bool:
    """kube-scheduler's NodePorts: one port and protocol, on the same host IP or either on all."""
    for port, protocol, ip in wanted:
        for other_port, other_protocol, other_ip in used:
            if port == other_port and protocol == other_protocol and (
                    ip == other_ip or ip in ("", "0.0.0.0") or other_ip in ("", "0.0.0.0")):
                return True
    return False


def pod_terms(spec: dict, kind: str) -> tuple[PodTerm, ...]:
    """The required terms of spec.affinity.podAffinity or .podAntiAffinity."""
    affinity = spec.get("affinity")
    section = affinity.get(kind) if isinstance(affinity, dict) else None
    terms = section.get("requiredDuringSchedulingIgnoredDuringExecution") if isinstance(section, dict) else None
    found = []
    for term in _list(terms):
        key = term.get("topologyKey") if isinstance(term, dict) else None
        if not isinstance(key, str) or not key:
            continue
        namespaces = term.get("namespaces")
        found.append(PodTerm(
            key, _freeze(term.get("labelSelector")),
            tuple(n for n in namespaces if isinstance(n, str)) if isinstance(namespaces, list) else (),
            term.get("namespaceSelector") is not None))
    return tuple(found)


def _freeze(selector) -> FrozenSelector | None:
    if not isinstance(selector, dict):
        return None
    match_labels = selector.get("matchLabels") or {}
    expressions = []
    for expr in _list(selector.get("matchExpressions")):
        if not isinstance(expr, dict) or not isinstance(expr.get("key"), str):
            return None  # unreadable: select nothing, as the API server would have refused it
        values = expr.get("values") or []
        expressions.append((expr["key"], str(expr.get("operator")),
                            tuple(v for v in values if isinstance(v, str)) if isinstance(values, list) else ()))
    if not isinstance(match_labels, dict):
        return None
    return tuple(sorted((str(k), str(v)) for k, v in match_labels.items())), tuple(expressions)


def claim_names(spec: dict) -> tuple[str, ...]:
    names = []
    for volume in _list(spec.get("volumes")):
        claim = volume.get("persistentVolumeClaim") if isinstance(volume, dict) else None
        name = claim.get("claimName") if isinstance(claim, dict) else None
        if isinstance(name, str) and name:
            names.append(name)
    return tuple(names)
