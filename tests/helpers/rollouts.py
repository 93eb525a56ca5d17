"""Argo Rollouts without the Rollout controller: its CRD, and a Rollout with the
ReplicaSet its controller would make, so the real ReplicaSet controller makes the pods."""

from __future__ import annotations

from tests.cluster.api import ApiError
from tests.helpers import objects as o
from tests.helpers.waiting import wait_for

GROUP, VERSION = "argoproj.io", "v1alpha1"
ROLLOUTS = f"/apis/{GROUP}/{VERSION}/namespaces/{{ns}}/rollouts"
CRD_NAME = f"rollouts.{GROUP}"


def install_rollout_crd(api) -> None:
    """The Rollout CRD, reduced to what the API server needs to serve the kind."""
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": GROUP,
            "names": {"kind": "Rollout", "listKind": "RolloutList", "plural": "rollouts", "singular": "rollout"},
            "scope": "Namespaced",
            "versions": [{
                "name": VERSION, "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }],
        },
    }
    try:
        api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    except ApiError as exc:
        if exc.status != 409:
            raise

    def established() -> bool:
        got = api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD_NAME}")
        conditions = (got.get("status") or {}).get("conditions") or []  # null until the controller reports
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    wait_for(established, 30, what="Rollout CRD established")


TEMPLATE_HASH = "rollouts-pod-template-hash"


def create_rollout(api, name: str, ns: str, replicas: int, annotations: dict | None = None,
                   pod_annotations: dict | None = None, template_hash: str | None = None) -> dict:
    """A Rollout and the ReplicaSet its controller would make for revision 1. With
    `template_hash`, that ReplicaSet selects and labels its pods by it, as Argo's does
    (its stable and canary Services select on it)."""
    template = o.deployment(name, replicas, namespace=ns)["spec"]["template"]
    if pod_annotations:
        template["metadata"]["annotations"] = pod_annotations
    selector = {"app": name}
    if template_hash:
        selector = {**selector, TEMPLATE_HASH: template_hash}
        template["metadata"]["labels"] = {**template["metadata"]["labels"], TEMPLATE_HASH: template_hash}
    rollout = api.post(ROLLOUTS.format(ns=ns), {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Rollout",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": template},
    })
    owner = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Rollout", "name": name,
             "uid": rollout["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
    api.post(f"/apis/apps/v1/namespaces/{ns}/replicasets", {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": f"{name}-6c8f9", "namespace": ns, "ownerReferences": [owner],
                     "annotations": {"rollout.argoproj.io/revision": "1"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": selector}, "template": template},
    })
    return rollout
