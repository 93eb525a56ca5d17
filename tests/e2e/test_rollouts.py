"""Argo Rollouts as a workload kind: only its CRD is installed (no Rollout controller), and
the test creates the ReplicaSet a Rollout controller would, owned by the Rollout. The
real ReplicaSet controller then makes the pods, and kube-scheduler places them through
the extender."""

from __future__ import annotations

import json

from tests.helpers import kube as k
from tests.helpers import objects as o
from tests.helpers.rollouts import create_rollout, install_rollout_crd
from tests.helpers.waiting import wait_for


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
