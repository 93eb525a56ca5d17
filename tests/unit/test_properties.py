"""Property-based tests of every parser that takes outside input: extender requests in
both modes (and the answers built from them), admission reviews (and the patches built
from them), and every setting. Whatever comes in,
the result is a value or the parser's own error, never another exception."""

from __future__ import annotations

import asyncio
import base64
import dataclasses

import jsonpatch
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spot_extender.assembly import build
from spot_extender.cluster.index import KIND_NAMES, NODE, POD
from spot_extender.cluster.resources import parse_quantity
from spot_extender.controller.views import has_room, workload_view
from spot_extender.core.settings import Settings, SettingsError
from spot_extender.decisions.moves import FLOOR_REPAIR, Move, plan_move
from spot_extender.serving.wire import BadRequest, parse_args
from tests.helpers import objects as f
from tests.helpers import reference
from tests.helpers.metrics import registry_value

# JSON values of every type, nested a few levels deep.
scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False,
                                                                                  allow_infinity=False) | st.text(max_size=20)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8),
                                                                                                   inner, max_size=4),
                           max_leaves=20)
quantities = st.one_of(st.text(max_size=30), st.from_regex(r"\A[+-]?[0-9.]{0,45}([eE][+-]?[0-9]{0,12})?(Ki|Mi|m|k|E)?\Z"),
                       scalars)


def positions(node, path=()):
    """Every place in a document that holds a value, as a path of keys."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield (*path, key)
        yield from positions(value, (*path, key))


def mutated(base: dict, data) -> dict:
    """A copy of base with the value at one place, any place, replaced by anything."""
    doc = orjson.loads(orjson.dumps(base))
    path = data.draw(st.sampled_from(list(positions(doc))))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = data.draw(json_values)
    return doc


def extender():
    parts = build(Settings())
    for kind in KIND_NAMES:
        parts.index.replace(kind, [])
    for name, cls in (("s1", "spot"), ("o1", "on-demand")):
        parts.index.apply(NODE, "ADDED", f.node(name, cls))
    parts.index.apply("Deployment", "ADDED", f.deployment("web", 3))
    parts.index.apply("ReplicaSet", "ADDED", f.replicaset("web-1", "web"))
    parts.index.apply(POD, "ADDED", f.pod("web-1-a", owner=("ReplicaSet", "web-1"), node_name="o1"))
    return parts.extender


EXTENDER = extender()
POD_OF_WEB = f.pod("web-1-b", owner=("ReplicaSet", "web-1"))
VALID = [
    {"Pod": POD_OF_WEB, "NodeNames": ["s1", "o1", "ghost"]},
    {"Pod": POD_OF_WEB, "Nodes": {"items": [f.node("s1", "spot"), f.node("o1", "on-demand"), f.node("x", None)]}},
]


def answer_or_reject(body: bytes) -> None:
    try:
        args = parse_args(body)
    except BadRequest:
        return
    # Whatever parse_args lets through, both verbs answer.
    orjson.loads(EXTENDER.filter(args))
    orjson.loads(EXTENDER.prioritize(args))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_requests_are_answered_or_rejected_in_both_modes(data):
    answer_or_reject(orjson.dumps(mutated(data.draw(st.sampled_from(VALID)), data)))


@settings(max_examples=300)
@given(json_values)
def test_any_json_document_is_answered_or_rejected(doc):
    answer_or_reject(orjson.dumps(doc))


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_any_bytes_are_answered_or_rejected(raw):
    answer_or_reject(raw)


@settings(max_examples=300)
@given(st.data())
def test_absurd_node_quantities_are_answered_or_rejected(data):
    node = f.node("n", "spot")
    node["status"]["allocatable"] = {"cpu": data.draw(quantities), "memory": data.draw(quantities)}
    answer_or_reject(orjson.dumps({"Pod": POD_OF_WEB, "Nodes": {"items": [node]}}))


@given(quantities)
def test_quantities_parse_or_raise_value_error(value):
    try:
        parse_quantity(value)
    except ValueError:
        pass


def webhook():
    parts = build(Settings(webhook_owner_wait=0.0))
    for kind in KIND_NAMES:
        parts.index.replace(kind, [])
    parts.index.apply("Deployment", "ADDED", f.deployment("web", 3))
    parts.index.apply("ReplicaSet", "ADDED", f.replicaset("web-1", "web"))
    return parts.webhook


WEBHOOK = webhook()
POD_TO_ADMIT = f.pod("web-1-c", owner=("ReplicaSet", "web-1"))
POD_TO_ADMIT["spec"].update({
    "nodeSelector": {"disk": "ssd"}, "tolerations": [{"key": "a", "operator": "Exists"}],
    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}],
    "affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "preference": {"matchExpressions": [{"key": "x", "operator": "Exists"}]}}]}},
})
REVIEW = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
    "uid": "req-1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
    "namespace": "default", "object": POD_TO_ADMIT}}


def admitted_whatever_comes(body: bytes) -> None:
    """The webhook answers everything with an AdmissionReview that admits, and a patch it
    gives applies to the pod it came with."""
    errors_before = registry_value(WEBHOOK.metrics, "spot_extender_admissions_total", outcome="error")
    answer = orjson.loads(asyncio.run(WEBHOOK.review(body)))
    response = answer["response"]
    assert answer["apiVersion"] == "admission.k8s.io/v1" and response["allowed"] is True
    # Whatever the parser lets through, the decision handles: nothing ends as an error of its own.
    assert registry_value(WEBHOOK.metrics, "spot_extender_admissions_total", outcome="error") == errors_before
    if "patch" in response:
        jsonpatch.apply_patch(orjson.loads(body)["request"]["object"], orjson.loads(base64.b64decode(response["patch"])))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_admission_reviews_are_admitted(data):
    admitted_whatever_comes(orjson.dumps(mutated(REVIEW, data)))


@settings(max_examples=200)
@given(json_values)
def test_any_json_document_sent_to_the_webhook_is_admitted(doc):
    admitted_whatever_comes(orjson.dumps({"apiVersion": "admission.k8s.io/v1", "request": doc}))
    admitted_whatever_comes(orjson.dumps(doc))


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_any_bytes_sent_to_the_webhook_are_admitted(raw):
    answer = orjson.loads(asyncio.run(WEBHOOK.review(raw)))
    assert answer["response"]["allowed"] is True


SETTINGS = [f for f in dataclasses.fields(Settings)]


@settings(max_examples=500)
@given(st.sampled_from(SETTINGS), st.text(max_size=40))
def test_every_setting_parses_or_raises_a_settings_error(field, text):
    try:
        field.metadata["parse"](text)
    except SettingsError:
        pass


# ---- Random small clusters against a brute-force reference of kube-scheduler's filters ----
# (tests/helpers/reference.py, written from the API's semantics with no code of ours).

AKS_SPOT_TAINT = {"key": "kubernetes.azure.com/scalesetpriority", "value": "spot", "effect": "NoSchedule"}
DEDICATED_TAINT = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
WEBHOOK_TOLERATIONS = [{"key": k, "operator": "Equal" if v else "Exists", **({"value": v} if v else {}), "effect": e}
                       for k, v, e in Settings().spot_toleration_rules]


@st.composite
def small_clusters(draw):
    """1-5 nodes of both classes with random taints, labels and capacity, and 1-3 workloads
    with random selectors, tolerations, requests and floors, some admitted by the webhook."""
    nodes = []
    for i in range(draw(st.integers(1, 5))):
        capacity = draw(st.sampled_from(["spot", "on-demand"]))
        raw = f.node(f"n{i}", capacity, zone=draw(st.sampled_from(["zone-a", "zone-b"])),
                     labels={"team": draw(st.sampled_from(["a", "b"]))})
        taints = [t for t in (capacity == "spot" and draw(st.booleans()) and AKS_SPOT_TAINT,
                              draw(st.booleans()) and DEDICATED_TAINT) if t]
        if taints:
            raw["spec"]["taints"] = taints
        raw["status"]["allocatable"] = {"cpu": draw(st.sampled_from(["1", "2", "4"])), "memory": "8Gi",
                                        "pods": draw(st.sampled_from(["2", "110"])),
                                        **({"nvidia.com/gpu": "1"} if draw(st.booleans()) else {})}
        nodes.append(raw)
    workloads = []
    for w in range(draw(st.integers(1, 3))):
        replicas = draw(st.integers(1, 4))
        requests = {"cpu": draw(st.sampled_from(["100m", "500m", "1"])), "memory": "64Mi",
                    **({"nvidia.com/gpu": "1"} if draw(st.booleans()) else {})}
        spec: dict = {"containers": [{"name": "app", "image": "app:1", "resources": {"requests": requests}}]}
        if draw(st.booleans()):
            spec["nodeSelector"] = {"team": draw(st.sampled_from(["a", "b"]))}
        if draw(st.booleans()):
            spec["tolerations"] = [{"key": "dedicated", "operator": "Exists"}]
        # webhook: its pods get roles; steered: the extender is asked (else placed as while it was down)
        workloads.append((f"w{w}", replicas, draw(st.none() | st.integers(0, replicas)), spec, draw(st.booleans()),
                          draw(st.booleans())))
    return nodes, workloads


def _with_tolerations(spec: dict, tolerations: list) -> dict:
    return {**spec, "tolerations": [*(spec.get("tolerations") or []), *tolerations]}


def _expected_floor(replicas, floor, spec, nodes, webhook) -> int:
    """k by the reference: the floor as set, unless no on-demand node could ever hold the pods
    (then 0), or no spot node could hold a spot pod while on-demand could (then R)."""
    on_demand = [n for n in nodes if n["metadata"]["labels"][f.CAPACITY_LABEL] == "on-demand"]
    spot = [n for n in nodes if n["metadata"]["labels"][f.CAPACITY_LABEL] == "spot"]
    as_spot_pod = _with_tolerations(spec, WEBHOOK_TOLERATIONS) if webhook else spec
    can_on_demand = any(reference.schedulable(spec, n) for n in on_demand)
    can_spot = any(reference.schedulable(as_spot_pod, n) for n in spot)
    if on_demand and not can_on_demand:
        return 0
    if spot and not can_spot and can_on_demand:
        return replicas
    return min(1 if floor is None else floor, replicas)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_clusters(), st.randoms(use_true_random=False))
def test_roles_filter_answers_and_moves_agree_with_a_brute_force_reference(cluster, rnd):
    nodes, workloads = cluster
    parts = build(Settings(webhook_owner_wait=0.0))
    index = parts.index
    for kind in KIND_NAMES:
        index.replace(kind, [])
    for raw in nodes:
        index.apply(NODE, "ADDED", raw)
    capacity = {n["metadata"]["name"]: n["metadata"]["labels"][f.CAPACITY_LABEL] for n in nodes}
    bound: dict[str, list[dict]] = {name: [] for name in capacity}
    for name, replicas, floor, spec, webhook, steered in workloads:
        deployment = f.deployment(name, replicas, annotations={} if floor is None else {
            "spot-extender.io/on-demand-floor": str(floor)})
        deployment["spec"]["template"]["spec"] = spec
        index.apply("Deployment", "ADDED", deployment)
        index.apply("ReplicaSet", "ADDED", f.replicaset(f"{name}-1", name, replicas))
        k = _expected_floor(replicas, floor, spec, nodes, webhook)
        roles = []
        for r in range(replicas):
            pod = f.pod(f"{name}-1-{r}", owner=("ReplicaSet", f"{name}-1"), labels={"app": name})
            pod["spec"] = orjson.loads(orjson.dumps(spec))
            if webhook:
                review = {**REVIEW, "request": {**REVIEW["request"], "uid": f"req-{name}-{r}", "object": pod}}
                response = orjson.loads(asyncio.run(parts.webhook.review(orjson.dumps(review))))["response"]
                pod = jsonpatch.apply_patch(pod, orjson.loads(base64.b64decode(response["patch"])))
                role = pod["metadata"]["labels"]["spot-extender.io/role"]
                roles.append(role)
                if role == "floor":  # a floor pod never fits a spot node, whatever else it allows
                    assert not any(reference.schedulable(pod["spec"], n) for n in nodes
                                   if capacity[n["metadata"]["name"]] == "spot")
            # kube-scheduler's own filters first, then the extender's among what passed.
            candidates = [n["metadata"]["name"] for n in nodes if reference.fits(pod["spec"], n, bound[
                n["metadata"]["name"]])]
            answer = orjson.loads(parts.extender.filter(parse_args(orjson.dumps({"Pod": pod, "NodeNames": candidates}))))
            passed = answer.get("NodeNames") or []
            assert set(passed) <= set(candidates)
            if webhook:
                assert sorted(passed) == sorted(candidates)  # a pod with a role is never refused a feasible node
            # Unsteered pods land on spot where they can, as while the extender was down: floors break.
            choices = passed if steered else [c for c in candidates if capacity[c] == "spot"] or candidates
            if choices:
                node = rnd.choice(choices)
                pod["spec"]["nodeName"] = node
                pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
                bound[node].append(pod)
            index.apply(POD, "ADDED", pod)
        if webhook:
            assert roles.count("floor") == k, (roles, k)
    # Every move the controller would plan now lands somewhere, by the reference.
    for workload in index.top_level_workloads():
        view = workload_view(index, parts.floors, workload)
        spot_side = parts.floors.spot_constraints(workload.constraints, view.uses_roles)
        decision = plan_move(view, lambda cls, pod: has_room(
            index, cls, pod, spot_side if cls == "spot" else workload.constraints, workload.needs))
        if not isinstance(decision, Move):
            continue
        target = "on-demand" if decision.cause == FLOOR_REPAIR else "spot"
        template = next(w[3] for w in workloads if w[0] == workload.name)
        replacement = _with_tolerations(template, WEBHOOK_TOLERATIONS) if (
            view.uses_roles and target == "spot") else template
        left = {name: [p for p in pods if p["metadata"]["uid"] != decision.pod.uid] for name, pods in bound.items()}
        assert any(reference.fits(replacement, n, left[n["metadata"]["name"]]) for n in nodes
                   if capacity[n["metadata"]["name"]] == target), (decision, workload.name)
