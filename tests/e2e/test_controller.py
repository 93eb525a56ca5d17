"""The controller against the real control plane: reclaim drains, return to spot,
floor repair, PDBs, dry-run and scale-down order. State is read from the API server."""

from __future__ import annotations

import time

from tests.e2e.conftest import REBALANCE_INTERVAL
from tests.helpers import kube
from tests.helpers import objects as o
from tests.helpers.fleet import taint_spot
from tests.helpers.metrics import scrape
from tests.helpers.sampling import ReadySampler
from tests.helpers.waiting import wait_for


def pods_on_spot(api, ns, apps) -> list:
    return [p for app in apps for p in kube.placements(api, ns, app) if p.capacity == "spot" and not p.terminating]


def evictions(env, cause: str, result: str = "evicted") -> float:
    return env.metric("spot_extender_evictions_total", {"cause": cause, "result": result})


def drain_sampled(env, ns, apps: dict, taint: dict, timeout: float, count_terminating: bool = False):
    """Taint every spot node; (seconds until no pod is left on spot, the ready sampler),
    once every app is back to full strength."""
    sampler = ReadySampler(env.api, ns, list(apps), interval=0.2, count_terminating=count_terminating).start()
    started = time.monotonic()
    taint_spot(env.api, taint)
    try:
        wait_for(lambda: not pods_on_spot(env.api, ns, apps), timeout, interval=0.1, what="every spot pod evicted")
        drained_in = time.monotonic() - started
        for app, replicas in apps.items():
            kube.wait_ready(env.api, ns, app, replicas, timeout=120)
    finally:
        sampler.stop()
    return drained_in, sampler


def test_termination_taint_on_every_spot_node_evicts_all_managed_pods_fast(env, ns):
    apps = {f"app{i}": 26 for i in range(4)}  # 4 x 25 = 100 replicas on spot, one floor each on on-demand
    for app, replicas in apps.items():
        kube.create(env.api, o.deployment(app, replicas, namespace=ns, cpu="50m"))
    for app, replicas in apps.items():
        kube.wait_ready(env.api, ns, app, replicas, timeout=120)
    assert len(pods_on_spot(env.api, ns, apps)) == 100
    evicted_in, sampler = drain_sampled(env, ns, apps, o.RECLAIM_TAINT, 30, count_terminating=True)
    print(f"100 pods evicted in {evicted_in:.1f}s; minimum ready {sampler.minimum}")
    assert evicted_in < 5.0
    assert not sampler.errors and sampler.count > 5
    assert all(minimum >= 1 for minimum in sampler.minimum.values()), sampler.minimum


def test_interruption_notice_drains_each_workload_a_wave_at_a_time(env, ns):
    # AWS's 2-minute notice (the default --drain-notice): each workload's doomed replicas
    # go a wave at a time, the next once the last one's replacements are Ready. Pods here
    # start at once, so a wave is one replica and the whole drain takes seconds, not 115.
    apps = {"web": 6, "db": 4}  # one floor replica each on on-demand, the rest on spot
    kube.create(env.api, o.deployment("web", 6, namespace=ns))
    kube.create(env.api, o.statefulset("db", 4, namespace=ns))
    for app, replicas in apps.items():
        kube.wait_ready(env.api, ns, app, replicas, timeout=120)
    assert len(pods_on_spot(env.api, ns, apps)) == 8
    waves_before = env.metric("spot_extender_drain_waves_total", {"trigger": "paced"})
    drained_in, sampler = drain_sampled(env, ns, apps, o.INTERRUPTION_TAINT, 90)
    waves = env.metric("spot_extender_drain_waves_total", {"trigger": "paced"}) - waves_before
    print(f"drained in {drained_in:.1f}s in {waves:.0f} paced waves; minimum ready {sampler.minimum}")
    # A paced batch goes only when there is room: one per doomed replica means one replica
    # down at a time, each after the last one's replacement was Ready. (Samples can miss
    # dips this short.)
    assert waves >= 8  # 5 of web, 3 of db
    assert not sampler.errors and sampler.count >= 2
    assert all(sampler.minimum[app] >= replicas - 1 for app, replicas in apps.items()), sampler.minimum
    assert drained_in < 60  # far inside the 115 s the notice leaves


def test_spot_returning_moves_surplus_back_without_loops_or_pdb_violations(env, ns):
    taint_spot(env.api)  # spot is going away: new replicas land on on-demand
    kube.create(env.api, o.deployment("web", 4, namespace=ns))
    kube.create(env.api, o.pdb("api", {"app": "api"}, max_unavailable=1, namespace=ns))
    kube.create(env.api, o.deployment("api", 4, namespace=ns))
    for app in ("web", "api"):
        assert all(p.capacity == "on-demand" for p in kube.wait_ready(env.api, ns, app, 4))
    before = evictions(env, "return-to-spot")
    sampler = ReadySampler(env.api, ns, ["web", "api"], interval=0.25, count_terminating=True).start()
    taint_spot(env.api, None)  # spot capacity is back
    started = time.monotonic()

    def back_on_spot():
        placed = {app: kube.live(kube.placements(env.api, ns, app)) for app in ("web", "api")}
        return all(
            len(p) == 4 and all(x.ready for x in p) and sum(x.capacity == "on-demand" for x in p) == 1
            for p in placed.values()
        )

    try:
        wait_for(back_on_spot, 2 * REBALANCE_INTERVAL + 10, interval=0.5, what="surplus moved back to spot")
        took = time.monotonic() - started
        time.sleep(3)  # and nothing moves after that
    finally:
        sampler.stop()
    moved = evictions(env, "return-to-spot") - before
    print(f"back on spot in {took:.1f}s with {moved:.0f} evictions; minimum ready {sampler.minimum}")
    assert took <= 2 * REBALANCE_INTERVAL
    assert moved == 6  # exactly the surplus (3 per workload): no eviction loop
    assert sampler.minimum["api"] >= 3  # the PDB (maxUnavailable 1) was never violated
    assert sampler.minimum["web"] >= 3  # one at a time


def test_lost_on_demand_node_with_floor_replicas_gets_floors_repaired(env, ns):
    kube.create(env.api, o.deployment("web", 4, namespace=ns, annotations={"spot-extender.io/on-demand-floor": "2"}))
    placed = kube.wait_ready(env.api, ns, "web", 4)
    floor_nodes = {p.node for p in placed if p.capacity == "on-demand"}
    victim = sorted(floor_nodes)[0]
    kube.delete(env.api, "Node", victim)

    def repaired():
        live = [p for p in kube.placements(env.api, ns, "web") if not p.terminating and p.ready]
        return sum(p.capacity == "on-demand" for p in live) >= 2 and len(live) == 4

    wait_for(repaired, 150, interval=1, what="the floor of 2 on-demand replicas repaired")
    assert victim not in {p.node for p in kube.placements(env.api, ns, "web")}


def test_blocking_pdb_is_retried_without_violation_and_progresses_once_allowed(env, ns):
    kube.create(env.api, o.pdb("batch", {"app": "batch"}, min_available=3, namespace=ns))
    kube.create(env.api, o.deployment("batch", 3, namespace=ns, annotations={"spot-extender.io/placement": "spot"}))
    kube.wait_ready(env.api, ns, "batch", 3)
    sampler = ReadySampler(env.api, ns, ["batch"], interval=0.25, count_terminating=True).start()
    try:
        taint_spot(env.api)
        blocked_before = evictions(env, "reclaim", "blocked")
        wait_for(lambda: evictions(env, "reclaim", "blocked") > blocked_before + 2, 30,
                 what="evictions refused by the PDB and retried")
        assert len(pods_on_spot(env.api, ns, ["batch"])) == 3  # nothing evicted against the PDB
        env.api.merge_patch(f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/batch",
                            {"spec": {"minAvailable": 2}})
        # With the spot nodes tainted the replacements go to on-demand, one disruption at a time.
        wait_for(lambda: not pods_on_spot(env.api, ns, ["batch"]), 90, interval=0.5, what="progress once allowed")
        kube.wait_ready(env.api, ns, "batch", 3, timeout=60)
    finally:
        sampler.stop()
    assert sampler.minimum["batch"] >= 2, sampler.minimum


def test_scale_down_keeps_the_floor(env, ns):
    kube.create(env.api, o.deployment("web", 6, namespace=ns))
    placed = kube.wait_ready(env.api, ns, "web", 6)
    floor_pod = next(p.pod for p in placed if p.capacity == "on-demand")

    def costs_set():
        pods = env.api.get(f"/api/v1/namespaces/{ns}/pods", labelSelector="app=web")["items"]
        costs = {p["metadata"]["name"]: p["metadata"].get("annotations", {}).get(
            "controller.kubernetes.io/pod-deletion-cost") for p in pods}
        return None not in costs.values() and costs

    costs = wait_for(costs_set, 30, what="pod-deletion-cost on every replica")
    assert costs[floor_pod] == "1000"
    env.api.merge_patch(f"/apis/apps/v1/namespaces/{ns}/deployments/web", {"spec": {"replicas": 2}})
    kept = kube.wait_ready(env.api, ns, "web", 2)
    assert floor_pod in {p.pod for p in kept}, kept
    assert sum(p.capacity == "on-demand" for p in kept) == 1


def test_dry_run_evicts_nothing_and_reports_what_it_would_do(env, ns):
    kube.create(env.api, o.deployment("web", 4, namespace=ns, annotations={"spot-extender.io/placement": "spot"}))
    kube.wait_ready(env.api, ns, "web", 4)
    env.extender.stop()
    dry = env.extender_process("--dry-run", name="spot-extender-dry-run")
    try:
        dry.start()
        taint_spot(env.api)

        def would_evict():
            return scrape(dry, "spot_extender_evictions_total", {"cause": "reclaim", "result": "dry-run"}) >= 4

        wait_for(would_evict, 20, what="dry-run evictions counted")
        time.sleep(2)
        assert len(pods_on_spot(env.api, ns, ["web"])) == 4  # nothing was evicted
        assert "would evict" in dry.component.tail(200)
    finally:
        dry.stop()
        env.extender.start()
