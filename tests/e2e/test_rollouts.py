"""Argo Rollouts as a workload kind: only its CRD is installed (no Rollout controller), and
the test creates the ReplicaSet a Rollout controller would, owned by the Rollout. The
real ReplicaSet controller then makes the pods, and kube-scheduler places them through
the extender."""

from __future__ import annotations

import json

from tests.cluster.api import ApiError
from tests.helpers import kube as k
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


def create_rollout(api, name: str, ns: str, replicas: int, annotations: dict | None = None) -> dict:
    """A Rollout and the ReplicaSet its controller would make for revision 1."""
    template = o.deployment(name, replicas, namespace=ns)["spec"]["template"]
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
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": template},
    })
    return rollout


def workload_view(env, ns: str, name: str) -> dict | None:
    for workload in json.loads(env.extender.get("/debug/workloads"))["workloads"]:
        if (workload["kind"], workload["namespace"], workload["name"]) == ("Rollout", ns, name):
            return workload
    return None


def test_rollouts_keep_exactly_their_floor_on_demand(env, ns):
    install_rollout_crd(env.api)
    k.create(env.api, o.pdb("checkout", {"app": "checkout"}, min_available=3, namespace=ns))
    create_rollout(env.api, "web", ns, 5, annotations={"spot-extender.io/on-demand-floor": "2"})
    create_rollout(env.api, "checkout", ns, 4)
    # The extender found the kind once its CRD was served (it started without it).
    wait_for(lambda: workload_view(env, ns, "web") and workload_view(env, ns, "checkout"), 30,
             what="the Rollouts in /debug/workloads")

    for app, replicas, floor, source in (("web", 5, 2, "annotation"), ("checkout", 4, 3, "pdb checkout")):
        placed = k.wait_ready(env.api, ns, app, replicas)
        assert sum(p.capacity == "on-demand" for p in placed) == floor, (app, placed)

        def settled(app=app, floor=floor, source=source):  # the view may be a second old
            view = workload_view(env, ns, app)
            return view if (view["floor"], view["floorSource"], view["onDemand"], view["floorMet"]) == (
                floor, source, floor, True) else None

        view = wait_for(settled, 10, what=f"{app} in /debug/workloads as placed")
        assert view["countedGroup"] == f"ReplicaSet/{app}-6c8f9"

    # Scale-down order follows the floor for Rollout pods too.
    def costs() -> dict[str, str] | None:
        pods = env.api.get(f"/api/v1/namespaces/{ns}/pods", labelSelector="app=web")["items"]
        found = {p["metadata"]["name"]: p["metadata"].get("annotations", {}).get(
            "controller.kubernetes.io/pod-deletion-cost") for p in pods}
        return found if len(found) == 5 and all(found.values()) else None

    found = wait_for(costs, 30, what="pod-deletion-cost on the Rollout's pods")
    assert sorted(found.values()) == ["0", "0", "0", "1000", "1000"], found
