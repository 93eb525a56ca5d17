"""A pod's role, written into its spec at admission: pure functions over plain values.

A floor pod must run on on-demand: a required node affinity keeps it off every node the
classifier would call spot, so kube-scheduler, Karpenter and Cluster Autoscaler all see
it. A spot pod prefers spot, tolerates spot taints and spreads softly over capacity
pools; one that replaces a pod moved back to spot while no spot node has room requires
spot instead, so an autoscaler adds a spot node for it rather than it landing on
on-demand again (controller/rebalance.py, "spot seek"). The same capacity-label rules that classify nodes build both, so the two never
disagree about what spot is.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..cluster.constraints import Taint, from_pod_spec, tolerated
from ..core.vocabulary import ADMISSION_ANNOTATION, REVISION_LABELS, ROLE_LABEL, ZONE_LABEL, Role


@dataclass(frozen=True)
class RoleRules:
    spot_values: tuple[tuple[str, tuple[str, ...]], ...]  # label key -> values that mean spot
    on_demand_values: tuple[tuple[str, tuple[str, ...]], ...]
    unknown_is_spot: bool  # nodes with no capacity label count as spot (--unknown-class)
    spot_weight: int
    tolerations: tuple[tuple[str, str, str], ...]  # (key, value or "" for any, effect)
    spread_keys: tuple[str, ...]

    @classmethod
    def from_rules(cls, capacity_rules, unknown_class: str, spot_weight: int, tolerations, spread_keys) -> "RoleRules":
        by_class: dict[str, dict[str, list[str]]] = {"spot": {}, "on-demand": {}}
        for key, value, cls_ in capacity_rules:
            values = by_class[cls_].setdefault(key, [])
            if value not in values:
                values.append(value)

        def frozen(table):
            return tuple((k, tuple(v)) for k, v in table.items())

        return cls(frozen(by_class["spot"]), frozen(by_class["on-demand"]), unknown_class == "spot", spot_weight,
                   tuple(tolerations), tuple(spread_keys))

    @property
    def capacity_keys(self) -> frozenset[str]:
        return frozenset(k for k, _ in self.spot_values + self.on_demand_values)

    def narrowed(self, keys: frozenset[str]) -> "RoleRules":
        """These rules on the label keys that classify some node in the cluster only. Terms
        on keys no node carries say nothing, and Karpenter writes a made-up value onto every
        node it makes for each NotIn term on a key it does not know. With no node classified,
        or none of these keys naming spot, every rule stays: a floor is never left unguarded."""
        spot = tuple((k, v) for k, v in self.spot_values if k in keys)
        if not spot:
            return self
        on_demand = tuple((k, v) for k, v in self.on_demand_values if k in keys)
        return dataclasses.replace(self, spot_values=spot, on_demand_values=on_demand)


def choose(floor: int, floor_pods: int, ordinal: int | None = None) -> str:
    """Floor while the workload has fewer than k live floor pods, spot after. A StatefulSet's
    pods go by ordinal instead, counted from its spec.ordinals.start: the first k are floor. A scale-down removes the highest ordinals,
    so the floor pods are the ones that stay (with a PDB of minAvailable R none could be
    moved afterwards), and pods created in parallel cannot over-admit floors."""
    if ordinal is not None:
        return Role.FLOOR if ordinal < floor else Role.SPOT
    return Role.FLOOR if floor_pods < floor else Role.SPOT


def statefulset_ordinal(pod_name: str, start: int = 0) -> int | None:
    """The place of a StatefulSet pod among its replicas, from its name and the set's
    spec.ordinals.start (db-5 of a set starting at 3 -> 2), None if the name has no ordinal."""
    _, _, tail = pod_name.rpartition("-")
    return int(tail) - start if tail.isdigit() and len(tail) < 10 else None


def pinned_reason(spec: dict, rules: RoleRules) -> str | None:
    """Why the pod's own spec already chooses its class of node, or None: a node selector or
    a required node affinity on a capacity label."""
    keys = rules.capacity_keys
    constraints = from_pod_spec(spec)
    for key, _ in constraints.node_selector:
        if key in keys:
            return f"its nodeSelector names {key}"
    for term in constraints.required_terms or ():
        for key, _, _ in term:
            if key in keys:
                return f"its required node affinity names {key}"
    return None


def floor_terms(rules: RoleRules) -> list[list[dict]]:
    """nodeSelectorTerms (ORed lists of ANDed expressions) that admit no node the classifier
    calls spot. NotIn also admits nodes without the label: unlabelled nodes are on-demand
    unless --unknown-class=spot, and then a node must carry an on-demand label."""
    off_spot = {key: {"key": key, "operator": "NotIn", "values": list(values)} for key, values in rules.spot_values}
    if not rules.unknown_is_spot:
        return [list(off_spot.values())]
    terms = []
    for key, values in rules.on_demand_values:
        others = [expr for other, expr in off_spot.items() if other != key]
        terms.append([{"key": key, "operator": "In", "values": list(values)}, *others])
    return terms


def spot_terms(rules: RoleRules) -> list[list[dict]]:
    """nodeSelectorTerms that admit only nodes carrying a spot label (ORed, one per key)."""
    return [[{"key": key, "operator": "In", "values": list(values)}] for key, values in rules.spot_values]


def patch(pod: dict, role: str, rules: RoleRules, spread_labels: dict | None, admission_uid: str,
          autoscaled: bool = False, require_spot: bool = False) -> list[dict]:
    """The JSONPatch that gives the pod its role. Each op adds a whole field, which JSONPatch
    `add` replaces when present, so no op depends on what the pod already has.
    `autoscaled`: an autoscaler provisions for the pod, and reads a preferred spread as
    required (Karpenter does), so floor pods get no zone spread: one small on-demand node
    per zone would cost more than the floors need. The pod's own constraints still stand.
    `require_spot`: a spot pod must run on spot (a spot seek) rather than prefer it."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    ops = [
        _add("/metadata/labels", {**(meta.get("labels") or {}), ROLE_LABEL: role}),
        _add("/metadata/annotations", {**(meta.get("annotations") or {}), ADMISSION_ANNOTATION: admission_uid}),
    ]
    if role == Role.FLOOR:
        affinity = _required_affinity(spec, floor_terms(rules))
    elif require_spot:
        affinity = _required_affinity(spec, spot_terms(rules))
    else:
        affinity = _spot_affinity(spec, rules)
    if affinity is not None:
        ops.append(_add("/spec/affinity", affinity))
    if role == Role.SPOT:
        tolerations = _with_tolerations(spec, rules)
        if tolerations is not None:
            ops.append(_add("/spec/tolerations", tolerations))
    if spread_labels is not None:
        keys = rules.spread_keys if role != Role.FLOOR else () if autoscaled else (ZONE_LABEL,)
        spread = _with_spread(pod, keys, {**spread_labels, ROLE_LABEL: role})
        if spread is not None:
            ops.append(_add("/spec/topologySpreadConstraints", spread))
    return ops


def _add(path: str, value) -> dict:
    return {"op": "add", "path": path, "value": value}


def _node_affinity(spec: dict) -> tuple[dict, dict]:
    """(a copy of spec.affinity, a copy of its nodeAffinity inside it)."""
    affinity = dict(spec.get("affinity") or {})
    node_affinity = affinity["nodeAffinity"] = dict(affinity.get("nodeAffinity") or {})
    return affinity, node_affinity


def _required_affinity(spec: dict, ours: list[list[dict]]) -> dict | None:
    """spec.affinity with its required node affinity ANDed with our terms."""
    if not ours or not all(ours):
        return None  # no spot label rule at all: nothing to require
    affinity, node_affinity = _node_affinity(spec)
    required = dict(node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    existing = required.get("nodeSelectorTerms") or []
    if not existing:
        terms = [{"matchExpressions": expressions} for expressions in ours]
    else:
        # (T1 or T2) and (D1 or D2) = T1D1 or T1D2 or T2D1 or T2D2.
        terms = []
        for term in existing:
            if not isinstance(term, dict) or not (term.get("matchExpressions") or term.get("matchFields")):
                terms.append(term)  # an empty term matches no node, and must go on matching none
                continue
            for expressions in ours:
                terms.append({**term, "matchExpressions": [*(term.get("matchExpressions") or []), *expressions]})
    required["nodeSelectorTerms"] = terms
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = required
    return affinity


def _spot_affinity(spec: dict, rules: RoleRules) -> dict | None:
    affinity, node_affinity = _node_affinity(spec)
    preferred = list(node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or [])
    keys = rules.capacity_keys
    for term in preferred:  # a preference of the pod's own about capacity stands
        expressions = ((term or {}).get("preference") or {}).get("matchExpressions") or () if isinstance(
            term, dict) else ()
        if any(isinstance(e, dict) and isinstance(e.get("key"), str) and e["key"] in keys for e in expressions):
            return None
    if not rules.spot_values:
        return None
    preferred += [
        {"weight": rules.spot_weight,
         "preference": {"matchExpressions": [{"key": key, "operator": "In", "values": list(values)}]}}
        for key, values in rules.spot_values
    ]
    node_affinity["preferredDuringSchedulingIgnoredDuringExecution"] = preferred
    return affinity


def _with_tolerations(spec: dict, rules: RoleRules) -> list | None:
    have = from_pod_spec(spec).tolerations
    missing = [(key, value, effect) for key, value, effect in rules.tolerations
               if not tolerated(Taint(key, value, effect), have)]
    if not missing:
        return None
    added = [{"key": key, "operator": "Equal", "value": value, "effect": effect} if value
             else {"key": key, "operator": "Exists", "effect": effect} for key, value, effect in missing]
    return [*(spec.get("tolerations") or []), *added]


def _with_spread(pod: dict, keys: tuple[str, ...], match_labels: dict) -> list | None:
    spec = pod.get("spec") or {}
    existing = spec.get("topologySpreadConstraints") or []
    taken = {c["topologyKey"] for c in existing if isinstance(c, dict) and isinstance(c.get("topologyKey"), str)}
    labels = (pod.get("metadata") or {}).get("labels") or {}
    revision = [key for key in REVISION_LABELS if key in labels]
    selector = {k: v for k, v in match_labels.items() if k not in revision}  # the API refuses a key in both
    added = []
    for key in keys:
        if key in taken:
            continue  # the pod's own constraint on this key stands
        constraint = {"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway",
                      "labelSelector": {"matchLabels": selector}}
        if revision:
            constraint["matchLabelKeys"] = revision
        added.append(constraint)
    return [*existing, *added] if added else None
