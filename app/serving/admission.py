"""The admission.k8s.io/v1 AdmissionReview wire format, for pods.

kube-apiserver posts an AdmissionReview and reads back `response`: the request's uid,
`allowed`, and an optional base64 JSONPatch. This webhook never rejects, so every answer,
a malformed request's included, is allowed; a request whose uid cannot be read gets an
empty one, which kube-apiserver treats as a failed call (failurePolicy: Ignore admits).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import orjson

API_VERSION = "admission.k8s.io/v1"
MAX_UID = 128  # a request uid is a UUID: anything far longer is not one


class BadReview(ValueError):
    """A request that cannot be read as a pod's AdmissionReview; `uid` is what could be read."""

    def __init__(self, message: str, uid: str = ""):
        super().__init__(message)
        self.uid = uid


@dataclass(frozen=True, slots=True)
class PodAdmission:
    uid: str
    operation: str  # CREATE, UPDATE, ...
    is_pod: bool  # the request is about a core v1 Pod itself, not a subresource
    namespace: str
    dry_run: bool
    pod: dict  # request.object: the pod as it will be created


# Fields of the pod the webhook reads, with the type the API gives them.
_POD_FIELDS = (
    (("metadata", "labels"), dict),
    (("metadata", "annotations"), dict),
    (("metadata", "ownerReferences"), list),
    (("spec",), dict),
    (("spec", "nodeSelector"), dict),
    (("spec", "affinity"), dict),
    (("spec", "affinity", "nodeAffinity"), dict),
    (("spec", "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"), dict),
    (("spec", "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms"),
     list),
    (("spec", "affinity", "nodeAffinity", "preferredDuringSchedulingIgnoredDuringExecution"), list),
    (("spec", "tolerations"), list),
    (("spec", "topologySpreadConstraints"), list),
)


def parse_review(body: bytes) -> PodAdmission:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadReview(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadReview("body must be a JSON object (AdmissionReview)")
    request = doc.get("request")
    if not isinstance(request, dict):
        raise BadReview("request is missing or not an object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid or len(uid) > MAX_UID:
        raise BadReview("request.uid must be a non-empty string")
    if doc.get("apiVersion") != API_VERSION:
        raise BadReview(f"apiVersion must be {API_VERSION}", uid)
    kind, resource = request.get("kind"), request.get("resource")
    is_pod = (isinstance(kind, dict) and kind.get("group", "") == "" and kind.get("kind") == "Pod"
              and not request.get("subResource")
              and (not isinstance(resource, dict) or resource.get("resource", "pods") == "pods"))
    pod = request.get("object")
    operation = request.get("operation")
    namespace = request.get("namespace", "")
    if not isinstance(operation, str) or not isinstance(namespace, str):
        raise BadReview("request.operation and request.namespace must be strings", uid)
    if is_pod:
        if not isinstance(pod, dict):
            raise BadReview("request.object must be a Pod", uid)
        for key in ("metadata", "spec"):
            if not isinstance(pod.get(key), dict):
                raise BadReview(f"Pod {key} must be an object", uid)
        for path, kind_type in _POD_FIELDS:
            value = _at(pod, path)
            if value is not None and not isinstance(value, kind_type):
                raise BadReview(f"Pod {'.'.join(path)} must be {'an object' if kind_type is dict else 'a list'}", uid)
        labels = pod.get("metadata", {}).get("labels") or {}
        if not all(isinstance(v, str) for v in labels.values()):
            raise BadReview("Pod metadata.labels must map strings to strings", uid)
        for key in ("tolerations", "topologySpreadConstraints"):
            if not all(isinstance(item, dict) for item in (pod.get("spec") or {}).get(key) or ()):
                raise BadReview(f"Pod spec.{key} must be a list of objects", uid)
        _check_node_affinity(pod["spec"], uid)
    return PodAdmission(uid, operation, is_pod, namespace, request.get("dryRun") is True,
                        pod if isinstance(pod, dict) else {})


def _check_node_affinity(spec: dict, uid: str) -> None:
    """Mutating admission runs before validation: the terms the patch merges into must have
    the shapes the API gives them."""
    node_affinity = _at(spec, ("affinity", "nodeAffinity")) or {}
    where = "Pod spec.affinity.nodeAffinity"
    terms = _at(node_affinity, ("requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")) or []
    preferred = node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or []
    for term in terms:
        if not isinstance(term, dict):
            raise BadReview(f"{where} nodeSelectorTerms must be a list of objects", uid)
        _check_requirements(term, f"{where} nodeSelectorTerms", uid)
    for item in preferred:
        preference = item.get("preference") if isinstance(item, dict) else None
        if not isinstance(item, dict) or (preference is not None and not isinstance(preference, dict)):
            raise BadReview(f"{where} preferred terms must be objects with a preference object", uid)
        _check_requirements(preference or {}, f"{where} preferred terms", uid)


def _check_requirements(term: dict, where: str, uid: str) -> None:
    for key in ("matchExpressions", "matchFields"):
        value = term.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(e, dict) for e in value)):
            raise BadReview(f"{where}: {key} must be a list of objects", uid)


def _at(doc: dict, path: tuple[str, ...]):
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def allowed(uid: str, patch: list[dict] | None = None) -> bytes:
    """An AdmissionReview answer that admits the pod, with the JSONPatch if there is one."""
    response: dict = {"uid": uid, "allowed": True}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(orjson.dumps(patch)).decode()
    return orjson.dumps({"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response})
