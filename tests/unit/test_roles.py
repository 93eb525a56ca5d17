"""The role policy: which role, and the patch that writes it, applied the way kube-apiserver
applies it (jsonpatch) and judged the way kube-scheduler judges nodes (constraints.admits)."""

from __future__ import annotations

import copy

import jsonpatch
import pytest

from spot_extender.cluster.constraints import Taint, admits, from_pod_spec
from spot_extender.cluster.nodes import NodeClassifier
from spot_extender.core.settings import Settings, env_name, from_sources
from spot_extender.core.vocabulary import ADMISSION_ANNOTATION, ROLE_LABEL, Role
from spot_extender.decisions.roles import (
    RoleRules,
    choose,
    floor_terms,
    patch,
    pinned_reason,
    statefulset_ordinal,
)
from tests.helpers import objects as f


def rules(**settings: str) -> RoleRules:
    s = from_sources(None, {env_name(name): value for name, value in settings.items()})
    return RoleRules.from_rules(s.capacity_rules, s.unknown_class, s.spot_preference_weight, s.spot_toleration_rules,
                                s.spread_topology_keys)


RULES = rules()
TEMPLATE_LABELS = {"app": "web"}
ADMITTED = {ADMISSION_ANNOTATION: "3f1c-request-uid"}


def rs_pod(spec_extra: dict | None = None, labels: dict | None = None) -> dict:
    pod = f.pod("", owner=("ReplicaSet", "web-5d8f"), labels=labels or {"app": "web", "pod-template-hash": "5d8f"})
    pod["metadata"].pop("name")
    pod["spec"].update(spec_extra or {})
    return pod


def applied(pod: dict, role: str, rule_set: RoleRules = RULES, spread=TEMPLATE_LABELS) -> dict:
    ops = patch(pod, role, rule_set, spread, "req-1")
    return jsonpatch.apply_patch(copy.deepcopy(pod), ops)


@pytest.mark.parametrize("k, floor_pods, role", [
    (1, 0, Role.FLOOR), (1, 1, Role.SPOT), (2, 1, Role.FLOOR), (2, 3, Role.SPOT), (0, 0, Role.SPOT), (5, 5, Role.SPOT),
])
def test_choose(k, floor_pods, role):
    assert choose(k, floor_pods) == role


@pytest.mark.parametrize("k, floor_pods, ordinal, role", [
    (2, 2, 0, Role.FLOOR), (2, 5, 1, Role.FLOOR), (2, 2, 2, Role.SPOT), (2, 0, 3, Role.SPOT), (0, 0, 0, Role.SPOT), (1, 5, None, Role.SPOT),
    (1, 0, None, Role.FLOOR),
])
def test_a_statefulsets_floor_pods_are_its_ordinals_below_k(k, floor_pods, ordinal, role):
    assert choose(k, floor_pods, ordinal) == role


@pytest.mark.parametrize("name, ordinal", [("db-0", 0), ("db-12", 12), ("db", None), ("db-x", None),
                                           ("my-db-3", 3), ("db-", None), ("db-99999999999", None)])
def test_statefulset_ordinal(name, ordinal):
    assert statefulset_ordinal(name) == ordinal


# Nodes as each provider labels them, with the class the classifier gives them.
NODES = [
    ({"node.kubernetes.io/capacity": "spot"}, "spot"),
    ({"node.kubernetes.io/capacity": "on-demand"}, "on-demand"),
    ({"karpenter.sh/capacity-type": "spot"}, "spot"),
    ({"karpenter.sh/capacity-type": "on-demand"}, "on-demand"),
    ({"karpenter.sh/capacity-type": "reserved"}, "on-demand"),
    ({"eks.amazonaws.com/capacityType": "SPOT"}, "spot"),
    ({"eks.amazonaws.com/capacityType": "ON_DEMAND"}, "on-demand"),
    ({"cloud.google.com/gke-spot": "true"}, "spot"),
    ({"cloud.google.com/gke-preemptible": "true"}, "spot"),
    ({"cloud.google.com/gke-provisioning": "preemptible"}, "spot"),
    ({"cloud.google.com/gke-provisioning": "standard"}, "on-demand"),
    ({"kubernetes.azure.com/scalesetpriority": "spot"}, "spot"),
    ({"kubernetes.azure.com/scalesetpriority": "regular"}, "on-demand"),
    ({}, "unknown"),
]


@pytest.mark.parametrize("unknown_class", ["on-demand", "spot"])
def test_floor_affinity_admits_no_node_the_classifier_calls_spot(unknown_class):
    settings = Settings(unknown_class=unknown_class)
    classifier = NodeClassifier(settings)
    floor = applied(rs_pod(), Role.FLOOR, rules(unknown_class=unknown_class))
    constraints = from_pod_spec(floor["spec"])
    for labels, labelled_as in NODES:
        record = classifier.record(f.node("n", None, labels=labels))
        assert record.capacity == labelled_as, labels
        assert admits(constraints, "n", {**record.labels}, ()) == (record.effective == "on-demand"), labels


def test_floor_terms_per_unknown_class():
    assert len(floor_terms(RULES)) == 1  # NotIn every spot label, in one term
    assert all(e["operator"] == "NotIn" for e in floor_terms(RULES)[0])
    with_spot_unknown = floor_terms(rules(unknown_class="spot"))
    assert len(with_spot_unknown) == 5  # one per on-demand label key: the node must carry one
    assert all(term[0]["operator"] == "In" for term in with_spot_unknown)


def test_floor_affinity_is_anded_into_each_of_the_pods_own_terms():
    own = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]},
        {},  # matches no node, and must go on matching none
    ]}}}}
    floor = applied(rs_pod(own), Role.FLOOR)
    constraints = from_pod_spec(floor["spec"])
    cases = [("n1", {"zone": "a", "node.kubernetes.io/capacity": "on-demand"}, True),
             ("n1", {"zone": "a", "node.kubernetes.io/capacity": "spot"}, False),
             ("n1", {"zone": "b", "node.kubernetes.io/capacity": "on-demand"}, False),
             ("n2", {"zone": "b"}, True),
             ("n2", {"zone": "b", "karpenter.sh/capacity-type": "spot"}, False)]
    for name, labels, expected in cases:
        assert admits(constraints, name, labels, ()) == expected, (name, labels)
    assert {} in floor["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]


def test_floor_pod_gets_its_label_the_admission_uid_and_a_zone_spread_of_its_revision():
    floor = applied(rs_pod(), Role.FLOOR)
    meta = floor["metadata"]
    assert meta["labels"] == {"app": "web", "pod-template-hash": "5d8f", ROLE_LABEL: Role.FLOOR}
    assert meta["annotations"][ADMISSION_ANNOTATION] == "req-1"
    assert floor["spec"]["topologySpreadConstraints"] == [{
        "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": {"app": "web", ROLE_LABEL: Role.FLOOR}}, "matchLabelKeys": ["pod-template-hash"],
    }]
    assert "tolerations" not in floor["spec"]  # a floor pod has no business on a tainted spot node
    assert "preferredDuringSchedulingIgnoredDuringExecution" not in floor["spec"]["affinity"]["nodeAffinity"]


def test_spot_pod_prefers_spot_tolerates_spot_taints_and_spreads_over_pools():
    spot = applied(rs_pod(), Role.SPOT)
    spec = spot["spec"]
    assert spot["metadata"]["labels"][ROLE_LABEL] == Role.SPOT
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in spec["affinity"]["nodeAffinity"]
    preferred = spec["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert {p["weight"] for p in preferred} == {100}
    assert {e["key"] for p in preferred for e in p["preference"]["matchExpressions"]} == {
        k for k, _ in RULES.spot_values}
    assert spec["tolerations"] == [
        {"key": key, "operator": "Equal", "value": value, "effect": "NoSchedule"} for key, value in (
            ("kubernetes.azure.com/scalesetpriority", "spot"), ("cloud.google.com/gke-spot", "true"),
            ("karpenter.sh/capacity-type", "spot"), ("eks.amazonaws.com/capacityType", "SPOT"))]
    aks_spot = (Taint("kubernetes.azure.com/scalesetpriority", "spot", "NoSchedule"),)
    assert admits(from_pod_spec(spec), "n", {}, aks_spot)
    assert [(c["topologyKey"], c["whenUnsatisfiable"], c["labelSelector"]["matchLabels"][ROLE_LABEL])
            for c in spec["topologySpreadConstraints"]] == [
        ("topology.kubernetes.io/zone", "ScheduleAnyway", Role.SPOT),
        ("node.kubernetes.io/instance-type", "ScheduleAnyway", Role.SPOT)]


def test_a_statefulset_pod_spreads_within_its_controller_revision():
    pod = rs_pod(labels={"app": "db", "controller-revision-hash": "db-7c", "statefulset.kubernetes.io/pod-name": "db-0"})
    spot = applied(pod, Role.SPOT, spread={"app": "db"})
    for constraint in spot["spec"]["topologySpreadConstraints"]:
        assert constraint["matchLabelKeys"] == ["controller-revision-hash"]
        assert constraint["labelSelector"]["matchLabels"] == {"app": "db", ROLE_LABEL: Role.SPOT}  # never the pod's name


def test_what_the_pod_already_has_is_not_overridden():
    own = {
        "tolerations": [{"key": "kubernetes.azure.com/scalesetpriority", "operator": "Exists"}],
        "topologySpreadConstraints": [{"maxSkew": 3, "topologyKey": "topology.kubernetes.io/zone",
                                       "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {}}],
        "affinity": {"podAntiAffinity": {"x": 1}, "nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 7, "preference": {"matchExpressions": [
                {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}]}}]}},
    }
    spot = applied(rs_pod(own), Role.SPOT)
    spec = spot["spec"]
    assert spec["tolerations"][0] == own["tolerations"][0]  # it covers AKS's taint: not added again
    assert [t["key"] for t in spec["tolerations"]] == [
        "kubernetes.azure.com/scalesetpriority", "cloud.google.com/gke-spot", "karpenter.sh/capacity-type",
        "eks.amazonaws.com/capacityType"]
    assert spec["affinity"] == own["affinity"]  # its own capacity preference stands
    assert [c["topologyKey"] for c in spec["topologySpreadConstraints"]] == [
        "topology.kubernetes.io/zone", "node.kubernetes.io/instance-type"]
    assert spec["topologySpreadConstraints"][0] == own["topologySpreadConstraints"][0]
    floor = applied(rs_pod(own), Role.FLOOR)
    assert floor["spec"]["affinity"]["podAntiAffinity"] == {"x": 1}
    assert floor["spec"]["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] == own[
        "affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]


def test_unseen_owner_means_no_spread_and_a_pod_without_labels_gets_some():
    pod = rs_pod()
    del pod["metadata"]["labels"]
    floor = applied(pod, Role.FLOOR, spread=None)
    assert floor["metadata"]["labels"] == {ROLE_LABEL: Role.FLOOR}
    assert "topologySpreadConstraints" not in floor["spec"]


@pytest.mark.parametrize("spec, reason", [
    ({"nodeSelector": {"karpenter.sh/capacity-type": "spot"}}, "its nodeSelector names karpenter.sh/capacity-type"),
    ({"nodeSelector": {"disk": "ssd"}}, None),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "node.kubernetes.io/capacity", "operator": "NotIn", "values": ["spot"]}]}]}}}},
     "its required node affinity names node.kubernetes.io/capacity"),
    ({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "preference": {"matchExpressions": [
            {"key": "node.kubernetes.io/capacity", "operator": "In", "values": ["spot"]}]}}]}}}, None),
    ({}, None),
])
def test_pinned_reason(spec, reason):
    assert pinned_reason(spec, RULES) == reason


def test_settings_shape_the_patch():
    custom = rules(spot_preference_weight="7", spot_tolerations="pool=spot:NoSchedule,cheap:NoExecute",
                   spread_topology_keys="", capacity_labels="pool=spot:spot,pool=od:on-demand")
    spot = applied(rs_pod(), Role.SPOT, custom)
    assert spot["spec"]["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] == [
        {"weight": 7, "preference": {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["spot"]}]}}]
    assert spot["spec"]["tolerations"][-2:] == [
        {"key": "pool", "operator": "Equal", "value": "spot", "effect": "NoSchedule"},
        {"key": "cheap", "operator": "Exists", "effect": "NoExecute"}]
    assert "topologySpreadConstraints" not in spot["spec"]
    floor = applied(rs_pod(), Role.FLOOR, custom)
    assert floor["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": "NotIn", "values": ["spot"]}]}]}


def test_a_spot_seek_requires_spot_anded_into_the_pods_own_terms_and_still_tolerates_spot_taints():
    own = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}}
    ops = patch(rs_pod(own), Role.SPOT, RULES, TEMPLATE_LABELS, "req-1", require_spot=True)
    seeking = jsonpatch.apply_patch(rs_pod(own), ops)
    constraints = from_pod_spec(seeking["spec"])
    cases = [({"zone": "a", "karpenter.sh/capacity-type": "spot"}, True),
             ({"zone": "a", "cloud.google.com/gke-spot": "true"}, True),
             ({"zone": "b", "karpenter.sh/capacity-type": "spot"}, False),
             ({"zone": "a", "karpenter.sh/capacity-type": "on-demand"}, False),
             ({"zone": "a"}, False)]
    for labels, expected in cases:
        assert admits(constraints, "n", labels, ()) == expected, labels
    node_affinity = seeking["spec"]["affinity"]["nodeAffinity"]
    assert "preferredDuringSchedulingIgnoredDuringExecution" not in node_affinity
    assert seeking["metadata"]["labels"][ROLE_LABEL] == Role.SPOT
    assert {"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot",
            "effect": "NoSchedule"} in seeking["spec"]["tolerations"]


@pytest.mark.parametrize("keys, spot_keys", [
    ({"karpenter.sh/capacity-type"}, ["karpenter.sh/capacity-type"]),
    ({"karpenter.sh/capacity-type", "node.kubernetes.io/capacity"},
     ["node.kubernetes.io/capacity", "karpenter.sh/capacity-type"]),
    (set(), None),  # no node classified: every rule
    ({"unrelated.example.com/pool"}, None),  # no key that names spot: every rule
])
def test_rules_narrowed_to_the_capacity_keys_nodes_carry(keys, spot_keys):
    narrowed = RULES.narrowed(frozenset(keys))
    if spot_keys is None:
        assert narrowed is RULES
        return
    assert [k for k, _ in narrowed.spot_values] == spot_keys
    assert {k for k, _ in narrowed.on_demand_values} <= set(keys)
    floor = applied(rs_pod(), Role.FLOOR, narrowed)
    expressions = floor["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"][0]["matchExpressions"]
    assert sorted(e["key"] for e in expressions) == sorted(spot_keys)
