"""Placement by the real kube-scheduler calling the extender, read back from the API server."""

from __future__ import annotations

from tests.helpers import kube
from tests.helpers import objects as o
from tests.helpers.fleet import ON_DEMAND_NODES, SPOT_NODES, assert_spread
from tests.helpers.kube import on_demand
from tests.helpers.waiting import wait_for


def test_single_replica_workloads_land_on_on_demand(env, ns):
    kube.create(env.api, o.deployment("solo", 1, namespace=ns))
    kube.create(env.api, o.statefulset("solo-db", 1, namespace=ns))
    for app in ("solo", "solo-db"):
        placed = kube.wait_ready(env.api, ns, app, 1)
        assert [p.capacity for p in placed] == ["on-demand"], placed


def test_ten_replicas_at_once_keep_exactly_the_floor_on_demand_and_spread(env, ns):
    kube.create(env.api, o.deployment("web", 10, namespace=ns))
    placed = kube.wait_ready(env.api, ns, "web", 10)
    assert on_demand(placed) == 1, placed
    spot = [p for p in placed if p.capacity == "spot"]
    assert len(spot) == 9
    assert_spread(spot)
    # The fleet series say the same, read from the running process's /metrics.
    web = {"namespace": ns, "kind": "Deployment", "workload": "web"}
    expected = {("spot_extender_workload_replicas", "spot"): 9, ("spot_extender_workload_replicas", "on-demand"): 1,
                ("spot_extender_workload_desired_replicas", None): 10, ("spot_extender_workload_floor", None): 1,
                ("spot_extender_workload_floor_met", None): 1}

    def fleet_series() -> dict:
        return {(name, cls): env.metric(name, {**web, "class": cls} if cls else web) for name, cls in expected}

    wait_for(lambda: fleet_series() == expected, timeout=30, what=f"fleet series {expected}")
    assert env.metric("spot_extender_spot_share") > 0
    assert 0 < env.metric("spot_extender_estimated_savings_ratio") < 0.7  # at most 70%: spot priced at 0.3


def test_pdb_min_available_and_annotations_set_the_floor(env, ns):
    kube.create(env.api, o.pdb("api", {"app": "api"}, min_available=2, namespace=ns))
    kube.create(env.api, o.deployment("api", 5, namespace=ns))
    kube.create(env.api, o.deployment("floor2", 6, namespace=ns, annotations={"spot-extender.io/on-demand-floor": "2"}))
    kube.create(env.api, o.deployment("pct", 10, namespace=ns, annotations={"spot-extender.io/on-demand-floor": "30%"}))
    kube.create(env.api, o.deployment("core", 3, namespace=ns, annotations={"spot-extender.io/placement": "on-demand"}))
    kube.create(env.api, o.deployment("batch", 4, namespace=ns, annotations={"spot-extender.io/placement": "spot"}))
    expected = {"api": (5, 2), "floor2": (6, 2), "pct": (10, 3), "core": (3, 3), "batch": (4, 0)}
    for app, (replicas, floor) in expected.items():
        placed = kube.wait_ready(env.api, ns, app, replicas)
        assert on_demand(placed) == floor, (app, placed)
    # A floor of two spreads over the two on-demand zones, so one zone outage leaves one.
    for app in ("api", "floor2"):
        zones = {p.pool.split("/")[1] for p in kube.placements(env.api, ns, app) if p.capacity == "on-demand"}
        assert zones == {"zone-a", "zone-b"}, (app, zones)


def test_spot_full_sends_replicas_to_on_demand(env, ns):
    for name, _, _ in SPOT_NODES:
        env.api.merge_patch(f"/api/v1/nodes/{name}", {"spec": {"unschedulable": True}})
    kube.create(env.api, o.deployment("web", 6, namespace=ns))
    placed = kube.wait_ready(env.api, ns, "web", 6)
    assert on_demand(placed) == 6, placed


def test_on_demand_full_floor_pod_falls_back_to_spot(env, ns):
    before = env.metric("spot_extender_fallbacks_total")
    # Fill every on-demand node: bare pods bound directly, asking for all the CPU.
    for name, _, _ in ON_DEMAND_NODES:
        hog = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"hog-{name}", "namespace": ns, "labels": {"app": "hog"}},
            "spec": {"nodeName": name, "containers": [
                {"name": "hog", "image": "registry.invalid/hog:1", "resources": {"requests": {"cpu": "7900m"}}}
            ]},
        }
        kube.create(env.api, hog)
    kube.wait_ready(env.api, ns, "hog", len(ON_DEMAND_NODES))
    kube.create(env.api, o.deployment("web", 3, namespace=ns, cpu="200m"))
    placed = kube.wait_ready(env.api, ns, "web", 3)
    assert on_demand(placed) == 0, placed
    wait_for(lambda: env.metric("spot_extender_fallbacks_total") > before, 10, what="the fallback metric")


def test_rolling_update_ends_with_floor_intact_and_nothing_pending(env, ns):
    kube.create(env.api, o.deployment("web", 6, namespace=ns))
    assert on_demand(kube.wait_ready(env.api, ns, "web", 6)) == 1
    env.api.merge_patch(
        f"/apis/apps/v1/namespaces/{ns}/deployments/web",
        {"spec": {"template": {"metadata": {"annotations": {"rollout": "2"}}}}},
    )

    def rolled_out():
        d = env.api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/web")
        s = d.get("status", {})
        done = (
            s.get("observedGeneration", 0) >= d["metadata"]["generation"]
            and s.get("updatedReplicas") == 6 and s.get("replicas") == 6 and s.get("readyReplicas") == 6
        )
        return done and d

    wait_for(rolled_out, 120, what="the rollout to finish")
    placed = kube.wait_ready(env.api, ns, "web", 6)
    assert on_demand(placed) >= 1, placed
    assert all(p.node for p in placed)
