"""Where a pod may run at all: its node selector, its required node affinity, and its
tolerations against a node's NoSchedule and NoExecute taints, as kube-scheduler's
NodeAffinity and TaintToleration filters judge them. Pure: plain values in, bool out.

The controller uses it so it never moves a replica to a class of node that would not
take it, and clamps a floor (or a return to spot) that a workload's pods could not meet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

BLOCKING_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str


@dataclass(frozen=True, slots=True)
class Constraints:
    node_selector: tuple[tuple[str, str], ...] = ()
    # requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: ORed terms, each
    # ANDing (key, operator, values) requirements; "metadata.name" keys come from matchFields.
    required_terms: tuple[tuple[tuple[str, str, tuple[str, ...]], ...], ...] | None = None
    tolerations: tuple[tuple[str, str, str, str], ...] = ()  # (key, operator, value, effect)


NONE = Constraints()


def with_tolerations(constraints: Constraints, added: tuple[tuple[str, str, str], ...]) -> Constraints:
    """The constraints of a pod that also tolerates `added`, (key, value or "" for any, effect)
    as --spot-tolerations lists them: what a spot pod's spec holds after the webhook."""
    extra = tuple((key, "Equal" if value else "Exists", value, effect) for key, value, effect in added)
    if not extra:
        return constraints
    return Constraints(constraints.node_selector, constraints.required_terms, constraints.tolerations + extra)


def _strings(values) -> tuple[str, ...]:
    return tuple(v for v in values if isinstance(v, str)) if isinstance(values, list) else ()


def from_pod_spec(spec: dict) -> Constraints:
    """The constraints of a pod spec (or a pod template's spec). Malformed parts, which the
    API server would have refused, are read as absent."""
    selector = spec.get("nodeSelector")
    node_selector = tuple(sorted(
        (k, v) for k, v in selector.items() if isinstance(k, str) and isinstance(v, str)
    )) if isinstance(selector, dict) else ()

    required = None
    affinity = (spec.get("affinity") or {}).get("nodeAffinity") if isinstance(spec.get("affinity"), dict) else None
    node_selection = (affinity or {}).get("requiredDuringSchedulingIgnoredDuringExecution") if isinstance(
        affinity, dict) else None
    if isinstance(node_selection, dict) and isinstance(node_selection.get("nodeSelectorTerms"), list):
        terms = []
        for term in node_selection["nodeSelectorTerms"]:
            if not isinstance(term, dict):
                continue
            requirements = []
            for field, prefix in (("matchExpressions", ""), ("matchFields", "field:")):
                exprs = term.get(field)
                for expr in exprs if isinstance(exprs, list) else ():
                    if isinstance(expr, dict) and isinstance(expr.get("key"), str):
                        requirements.append((prefix + expr["key"], str(expr.get("operator")), _strings(expr.get("values"))))
            terms.append(tuple(requirements))
        required = tuple(terms)

    tolerations = []
    for tol in spec.get("tolerations") or ():
        if isinstance(tol, dict):
            tolerations.append(tuple(str(tol.get(k) or "") for k in ("key", "operator", "value", "effect")))
    if not node_selector and required is None and not tolerations:
        return NONE
    return Constraints(node_selector, required, tuple(tolerations))


def requirement_holds(key: str, operator: str, values: tuple[str, ...], labels: Mapping[str, str], name: str) -> bool:
    """One node selector requirement, or label selector expression, against a node's labels."""
    if key.startswith("field:"):
        # The one field the API allows: metadata.name, with In or NotIn.
        if operator not in ("In", "NotIn"):
            return False
        present, value = key == "field:metadata.name", name
    else:
        present, value = key in labels, labels.get(key)
    if operator == "In":
        return present and value in values
    if operator == "NotIn":
        return not present or value not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and len(values) == 1:
        try:
            have, want = int(value), int(values[0])
        except ValueError:
            return False
        return have > want if operator == "Gt" else have < want
    return False


def selector_matches(selector: dict | None, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics: matchLabels AND every matchExpression; None selects
    nothing, {} everything, and an unknown operator nothing (the API server refuses one)."""
    if not isinstance(selector, dict):
        return False
    match_labels = selector.get("matchLabels") or {}
    if not isinstance(match_labels, dict) or any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expr in selector.get("matchExpressions") or ():
        if not isinstance(expr, dict) or not isinstance(expr.get("key"), str):
            return False
        if expr.get("operator") not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
        if not requirement_holds(expr["key"], expr["operator"], _strings(expr.get("values") or []), labels, ""):
            return False
    return True


def tolerated(taint: Taint, tolerations: tuple[tuple[str, str, str, str], ...]) -> bool:
    for key, operator, value, effect in tolerations:
        if effect and effect != taint.effect:
            continue
        if operator == "Exists":
            if not key or key == taint.key:
                return True
        elif key == taint.key and value == taint.value:  # Equal, the default operator
            return True
    return False


def admits(constraints: Constraints, name: str, labels: Mapping[str, str], taints: tuple[Taint, ...]) -> bool:
    """Would kube-scheduler's NodeAffinity and TaintToleration filters let the pod onto the node?"""
    for key, value in constraints.node_selector:
        if labels.get(key) != value:
            return False
    if constraints.required_terms is not None:
        # An empty list of terms selects no node; an empty term selects none either.
        if not any(term and all(requirement_holds(*req, labels, name) for req in term)
                   for term in constraints.required_terms):
            return False
    return all(taint.effect not in BLOCKING_EFFECTS or tolerated(taint, constraints.tolerations) for taint in taints)
