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
from hypothesis import HealthCheck, given, settings, strategies as st

from spot_extender.cli import build
from spot_extender.index import KINDS, NODE, POD
from spot_extender.resources import parse_quantity
from spot_extender.settings import Settings, SettingsError
from spot_extender.wire import BadRequest, parse_args
from tests.helpers import objects as f
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
    for kind in KINDS:
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
    for kind in KINDS:
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
