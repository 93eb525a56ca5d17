"""The AdmissionReview wire format: what is read from a request, and the answer's shape."""

from __future__ import annotations

import base64

import orjson
import pytest

from spot_extender.serving.admission import BadReview, allowed, parse_review
from tests.helpers import objects as f


def review(pod=None, **request) -> dict:
    body = {"uid": "req-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"}, "operation": "CREATE",
            "namespace": "shop", "object": pod if pod is not None else f.pod("web-1-x", owner=("ReplicaSet", "web-1"))}
    body.update(request)
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": body}


def test_a_pod_create_is_read():
    request = parse_review(orjson.dumps(review(dryRun=True)))
    assert (request.uid, request.operation, request.is_pod, request.namespace, request.dry_run) == (
        "req-1", "CREATE", True, "shop", True)
    assert request.pod["metadata"]["ownerReferences"][0]["name"] == "web-1"


@pytest.mark.parametrize("request_fields, is_pod", [
    ({"kind": {"group": "apps", "version": "v1", "kind": "Deployment"}}, False),
    ({"subResource": "binding"}, False),
    ({"resource": {"group": "", "version": "v1", "resource": "pods/ephemeralcontainers"}}, False),
    ({"operation": "UPDATE"}, True),
])
def test_what_is_not_a_pod_create_is_told_apart(request_fields, is_pod):
    request = parse_review(orjson.dumps(review(**request_fields)))
    assert request.is_pod == is_pod


def pod_with(path: tuple, value) -> dict:
    pod = f.pod("p", owner=("ReplicaSet", "web-1"))
    node = pod
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return pod


@pytest.mark.parametrize("body, uid, words", [
    (b"{", "", "not valid JSON"),
    (b"[]", "", "JSON object"),
    (orjson.dumps({"request": 1}), "", "request is missing"),
    (orjson.dumps(review(uid=7)), "", "request.uid"),
    (orjson.dumps(review(uid="x" * 200)), "", "request.uid"),
    (orjson.dumps({**review(), "apiVersion": "admission.k8s.io/v1beta1"}), "req-1", "apiVersion"),
    (orjson.dumps(review(operation=None)), "req-1", "operation"),
    (orjson.dumps(review(pod=[])), "req-1", "must be a Pod"),
    (orjson.dumps(review(pod_with(("metadata", "labels"), ["a"]))), "req-1", "metadata.labels must be an object"),
    (orjson.dumps(review(pod_with(("metadata", "labels"), {"a": 1}))), "req-1", "strings to strings"),
    (orjson.dumps(review(pod_with(("spec", "tolerations"), [1]))), "req-1", "spec.tolerations"),
    (orjson.dumps(review(pod_with(("spec", "affinity", "nodeAffinity"), "x"))), "req-1", "nodeAffinity"),
    (orjson.dumps(review(pod_with(("spec",), None) | {"spec": None})), "req-1", "spec must be an object"),
    (orjson.dumps(review(pod_with(("spec", "affinity", "nodeAffinity"), {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": 1}]}}))),
     "req-1", "matchExpressions must be a list of objects"),
    (orjson.dumps(review(pod_with(("spec", "affinity", "nodeAffinity"), {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": ["x"]}}))),
     "req-1", "nodeSelectorTerms must be a list of objects"),
    (orjson.dumps(review(pod_with(("spec", "affinity", "nodeAffinity"), {
        "preferredDuringSchedulingIgnoredDuringExecution": [{"preference": {"matchFields": [3]}}]}))),
     "req-1", "matchFields must be a list of objects"),
    (orjson.dumps(review(pod_with(("spec", "affinity", "nodeAffinity"), {
        "preferredDuringSchedulingIgnoredDuringExecution": [{"preference": "x"}]}))),
     "req-1", "preference object"),
])
def test_unreadable_requests_say_why_and_keep_the_uid_they_have(body, uid, words):
    with pytest.raises(BadReview) as bad:
        parse_review(body)
    assert bad.value.uid == uid and words in str(bad.value)


def test_the_answer_admits_with_a_base64_json_patch_or_without_one():
    ops = [{"op": "add", "path": "/metadata/labels", "value": {"a": "b"}}]
    answer = orjson.loads(allowed("req-1", ops))
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    response = answer["response"]
    assert (response["uid"], response["allowed"], response["patchType"]) == ("req-1", True, "JSONPatch")
    assert orjson.loads(base64.b64decode(response["patch"])) == ops
    assert orjson.loads(allowed("req-2"))["response"] == {"uid": "req-2", "allowed": True}
