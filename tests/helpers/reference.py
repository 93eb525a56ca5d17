"""A brute-force reference of kube-scheduler's filters, written from the API's documented
semantics over raw objects and sharing no code with spot-extender: whether a pod spec
could be bound to a node, given the pods already there. Property tests hold the
webhook's roles, the extender's answers and the controller's moves against it.

It covers what the product claims to follow: nodeSelector, required node affinity
(matchExpressions and matchFields), NoSchedule/NoExecute taints against tolerations,
CPU, memory and extended resource requests, the pod count, and host ports.
"""

from __future__ import annotations

from decimal import Decimal

_UNITS = {"m": Decimal("0.001"), "": Decimal(1), "Ki": Decimal(1024), "Mi": Decimal(1024) ** 2,
          "Gi": Decimal(1024) ** 3}


def quantity(text) -> Decimal:
    text = str(text)
    for suffix in ("Ki", "Mi", "Gi", "m"):
        if text.endswith(suffix):
            return Decimal(text[: -len(suffix)]) * _UNITS[suffix]
    return Decimal(text)


def _expression_holds(expr: dict, labels: dict, name: str, field: bool) -> bool:
    key, op, values = expr["key"], expr["operator"], expr.get("values") or []
    if field:
        value = name if key == "metadata.name" else None
        return (value in values) if op == "In" else (value not in values) if op == "NotIn" else False
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt") and key in labels:
        return int(labels[key]) > int(values[0]) if op == "Gt" else int(labels[key]) < int(values[0])
    return False


def _affinity_admits(spec: dict, labels: dict, name: str) -> bool:
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required is None:
        return True
    for term in required.get("nodeSelectorTerms") or []:
        expressions = term.get("matchExpressions") or []
        fields = term.get("matchFields") or []
        if not expressions and not fields:
            continue  # an empty term matches nothing
        if all(_expression_holds(e, labels, name, False) for e in expressions) and all(
                _expression_holds(e, labels, name, True) for e in fields):
            return True
    return False


def _tolerates(tolerations: list, taint: dict) -> bool:
    for tol in tolerations:
        if tol.get("effect") and tol["effect"] != taint["effect"]:
            continue
        if tol.get("operator") == "Exists":
            if not tol.get("key") or tol["key"] == taint["key"]:
                return True
        elif tol.get("key") == taint["key"] and (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _requests(spec: dict) -> dict[str, Decimal]:
    total: dict[str, Decimal] = {}
    for container in spec.get("containers") or []:
        for resource, value in ((container.get("resources") or {}).get("requests") or {}).items():
            total[resource] = total.get(resource, Decimal(0)) + quantity(value)
    for container in spec.get("initContainers") or []:
        for resource, value in ((container.get("resources") or {}).get("requests") or {}).items():
            total[resource] = max(total.get(resource, Decimal(0)), quantity(value))
    return total


def _host_ports(spec: dict) -> set[tuple[int, str]]:
    return {(p["hostPort"], p.get("protocol") or "TCP") for c in spec.get("containers") or []
            for p in c.get("ports") or [] if p.get("hostPort")}


def schedulable(spec: dict, node: dict) -> bool:
    """The filters that depend on the pod and the node alone: where it may run at all."""
    meta = node["metadata"]
    labels, name = meta.get("labels") or {}, meta["name"]
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    if not _affinity_admits(spec, labels, name):
        return False
    tolerations = spec.get("tolerations") or []
    if any(t["effect"] in ("NoSchedule", "NoExecute") and not _tolerates(tolerations, t)
           for t in (node.get("spec") or {}).get("taints") or []):
        return False
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    wanted = _requests(spec)
    return all(quantity(allocatable.get(r, "0")) >= amount for r, amount in wanted.items() if amount > 0)


def fits(spec: dict, node: dict, pods_there: list[dict]) -> bool:
    """schedulable, and room left beside the pods bound there: requests, pod count, host ports."""
    if not schedulable(spec, node):
        return False
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    if len(pods_there) + 1 > int(allocatable.get("pods", "110")):
        return False
    used: dict[str, Decimal] = {}
    for other in pods_there:
        for resource, amount in _requests(other["spec"]).items():
            used[resource] = used.get(resource, Decimal(0)) + amount
    for resource, amount in _requests(spec).items():
        if amount > 0 and quantity(allocatable.get(resource, "0")) - used.get(resource, Decimal(0)) < amount:
            return False
    taken = set().union(*(_host_ports(other["spec"]) for other in pods_there)) if pods_there else set()
    return not (_host_ports(spec) & taken)
