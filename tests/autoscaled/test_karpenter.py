"""Karpenter provisions every worker node; spot-extender is the admission webhook only and
kube-scheduler runs without the extender (the managed-cluster case).

a-c run in order on one namespace: scale from zero, consolidation after a scale-down, every
spot NodeClaim deleted at once; c2 a reclaim with notice that a surge answers. d is the
contrast: the same start in extender-only mode.
Placements are read from the API server, twice a second.
"""

from __future__ import annotations

import time

import pytest

from tests.cluster.controlplane import POD_READY_DELAY
from tests.cluster.karpenter import capacity_counts
from tests.helpers import kube, layout
from tests.helpers import objects as o
from tests.helpers.metrics import scrape
from tests.helpers.sampling import ReadyWatch, Sample

# name, kind, replicas, floor k (the StatefulSet's from its PDB's minAvailable)
WORKLOADS = (("solo", "Deployment", 1, 1), ("web", "Deployment", 10, 1), ("db", "StatefulSet", 4, 2))
FLOORS = {name: k for name, _, _, k in WORKLOADS}
APPS = list(FLOORS)
SETTLE_TIMEOUT = 300  # provisioning, the scheduler's backoff and a rebalance pass, on a busy machine


def filter_calls(autoscaled) -> float:
    return scrape(autoscaled.extender, "spot_extender_request_duration_seconds_count", {"verb": "filter"})


def create_workloads(api, ns: str) -> dict[str, int]:
    kube.create(api, o.pdb("db", {"app": "db"}, min_available=2, namespace=ns))
    for name, kind, replicas, _ in WORKLOADS:
        kube.create(api, (o.deployment if kind == "Deployment" else o.statefulset)(name, replicas, namespace=ns))
    return {name: replicas for name, _, replicas, _ in WORKLOADS}


def settled(sample: Sample, replicas: dict[str, int]) -> bool:
    return layout.settled(sample, replicas, FLOORS)


def watch(autoscaled, ns: str, replicas: dict[str, int]) -> layout.Watch:
    return layout.Watch(autoscaled.api, ns, replicas, FLOORS)


@pytest.fixture(scope="module")
def shop(autoscaled):
    autoscaled.webhook_only()
    kube.namespace(autoscaled.api, "shop")
    yield "shop"
    kube.delete_namespace(autoscaled.api, "shop", 120)


@pytest.fixture(scope="module")
def replicas():
    return {}  # what a sets and b changes, for c


def test_a_scale_from_zero_buys_on_demand_for_floors_and_spot_for_the_rest(autoscaled, shop, replicas):
    assert not autoscaled.api.get("/api/v1/nodes")["items"], "the cluster starts with no worker node"
    replicas.update(create_workloads(autoscaled.api, shop))
    seen = watch(autoscaled, shop, replicas)
    took = seen.until_settled(SETTLE_TIMEOUT)
    assert took is not None, f"not settled after {SETTLE_TIMEOUT}s: {seen.last}"
    print(f"    settled {took}s after the workloads were created")
    nodes = capacity_counts(autoscaled.karpenter.nodes())
    assert nodes.get("on-demand", 0) >= 1 and nodes.get("spot", 0) >= 1, nodes
    assert not seen.floor_on_spot, seen.floor_on_spot


def test_b_consolidation_never_puts_a_floor_on_spot(autoscaled, shop, replicas):
    """Scaled down to their floors, the workloads need no spot node: Karpenter removes the
    spot nodes it bought (empty ones: no spot-to-spot replacement needed) and may repack the
    on-demand ones, evicting floor pods, none of which may land on spot. A scale-down that
    leaves spot pods may leave nothing to remove: Karpenter sometimes buys one spot node for
    all of them. Then web grows again, so that c has spot pods to lose."""
    before = {n["metadata"]["name"] for n in autoscaled.karpenter.nodes()}
    replicas.update(web=1, db=2)
    autoscaled.api.merge_patch(f"/apis/apps/v1/namespaces/{shop}/deployments/web", {"spec": {"replicas": 1}})
    autoscaled.api.merge_patch(f"/apis/apps/v1/namespaces/{shop}/statefulsets/db", {"spec": {"replicas": 2}})
    seen = watch(autoscaled, shop, replicas)

    def consolidated(sample: Sample) -> bool:
        return bool(before - set(sample.nodes)) and settled(sample, replicas)

    took = seen.until(consolidated, SETTLE_TIMEOUT)
    removed = sorted(before - {n["metadata"]["name"] for n in autoscaled.karpenter.nodes()})
    print(f"    Karpenter removed {removed} of {len(before)} nodes; settled after {took}s")
    assert took is not None, f"no consolidation or not settled after {SETTLE_TIMEOUT}s: {seen.last}"
    assert not seen.floor_on_spot, seen.floor_on_spot

    replicas.update(web=3)
    autoscaled.api.merge_patch(f"/apis/apps/v1/namespaces/{shop}/deployments/web", {"spec": {"replicas": 3}})
    regrown = watch(autoscaled, shop, replicas)
    took = regrown.until(lambda sample: settled(sample, replicas), SETTLE_TIMEOUT)
    assert took is not None, f"web's spot pods not placed on spot after {SETTLE_TIMEOUT}s: {regrown.last}"
    assert not regrown.floor_on_spot, regrown.floor_on_spot


def test_c_every_spot_node_claim_deleted_at_once_floors_hold(autoscaled, shop, replicas):
    seen = watch(autoscaled, shop, replicas)
    spot_nodes = {name for name, node in seen.sampler.sample().nodes.items()
                  if node["metadata"]["labels"].get(o.KARPENTER_CAPACITY_LABEL) == "spot"}
    deleted = autoscaled.karpenter.delete_node_claims("spot")
    assert deleted and spot_nodes, "a spot NodeClaim to delete"
    print(f"    deleted spot NodeClaims {deleted} (nodes {sorted(spot_nodes)})")
    started = time.monotonic()

    def replaced(sample: Sample) -> bool:
        return not spot_nodes & set(sample.nodes) and settled(sample, replicas)

    took = seen.until(replaced, SETTLE_TIMEOUT)
    print(f"    fewest ready replicas {seen.sampler.minimum} over {seen.sampler.count} samples; "
          f"back on spot after {took}s")
    assert all(seen.sampler.minimum[app] >= FLOORS[app] for app in APPS), (seen.sampler.minimum, FLOORS)
    assert took is not None, f"spot capacity not replaced {time.monotonic() - started:.0f}s later: {seen.last}"
    assert not seen.floor_on_spot, seen.floor_on_spot


def test_c2_a_surge_makes_karpenter_buy_before_the_deadline_and_ready_never_dips(autoscaled, shop):
    """Every spot node under a 120 s notice: the surge pods of api (opted in, pods 30 s
    from bound to Ready) find no node, Karpenter buys one for them, and api's doomed pods go
    only as they turn Ready, counted on every pod watch event."""
    api = o.deployment("api", 4, namespace=shop, cpu="1",  # a vCPU each: the surge needs a node of its own
                       annotations={"spot-extender.io/surge": "true", "spot-extender.io/max-surge": "100%"})
    # do-not-disrupt: Karpenter's own consolidation must not drain the doomed node at once
    # (docs/controller.md: with Karpenter's interruption handling on, Karpenter drains it).
    api["spec"]["template"]["metadata"]["annotations"] = {POD_READY_DELAY: "30s", "karpenter.sh/do-not-disrupt": "true"}
    kube.create(autoscaled.api, api)
    seen = layout.Watch(autoscaled.api, shop, {"api": 4}, {"api": 1})
    # Settled: its floor on on-demand, the rest on spot, the controller's moves done.
    assert seen.until_settled(SETTLE_TIMEOUT) is not None, seen.last
    spot = [n["metadata"]["name"] for n in autoscaled.api.get("/api/v1/nodes")["items"]
            if n["metadata"]["labels"].get(o.KARPENTER_CAPACITY_LABEL) == "spot"]
    nodes_before = {n["metadata"]["name"] for n in autoscaled.karpenter.nodes()}
    ready = ReadyWatch(autoscaled.api, shop, "api").start()
    try:
        for name in spot:
            autoscaled.api.merge_patch(f"/api/v1/nodes/{name}", {"spec": {"taints": [o.INTERRUPTION_TAINT]}})
        started = time.monotonic()

        def off_doomed_nodes(sample: Sample) -> bool:
            live = kube.live(sample.pods["api"])
            return len(live) == 4 and all(p.ready and p.node not in spot for p in live)

        took = seen.until(off_doomed_nodes, SETTLE_TIMEOUT)
    finally:
        ready.stop()
    bought = {n["metadata"]["name"] for n in autoscaled.karpenter.nodes()} - nodes_before
    print(f"    api off the doomed nodes after {took}s; Karpenter bought {sorted(bought)}; fewest Ready "
          f"{ready.minimum} over {ready.events} watch events")
    assert took is not None and took < 115, f"api still on doomed nodes {time.monotonic() - started:.0f}s on"
    assert bought, "Karpenter bought nothing for the surge"
    assert not ready.errors, ready.errors
    assert ready.minimum >= 4
    for name in spot:  # the next test starts clean; Karpenter may have removed the emptied ones
        if autoscaled.api.exists(f"/api/v1/nodes/{name}"):
            autoscaled.api.merge_patch(f"/api/v1/nodes/{name}", {"spec": {"taints": None}})


def test_d_contrast_extender_only_with_karpenter(autoscaled):
    """An honest record of extender-only mode beside an autoscaler: what the floors get."""
    kube.delete_namespace(autoscaled.api, "shop", 120)
    autoscaled.karpenter.wipe()
    autoscaled.extender_only()
    calls_before = filter_calls(autoscaled)
    fallbacks_before = scrape(autoscaled.extender, "spot_extender_fallbacks_total")
    try:
        kube.namespace(autoscaled.api, "contrast")
        replicas = create_workloads(autoscaled.api, "contrast")
        seen = watch(autoscaled, "contrast", replicas)
        seen.until(lambda s: all(s.ready(app) == r for app, r in replicas.items()), 120)
        seen.sampler.sample_for(20)  # what the controller does about it afterwards
        final = seen.sampler.sample()
        on_demand = {app: kube.on_demand(kube.live(final.pods[app])) for app in APPS}
        print(f"    extender-only: pods on on-demand per workload {on_demand} against floors {FLOORS}; "
              f"nodes {capacity_counts(autoscaled.karpenter.nodes())}")
        calls = filter_calls(autoscaled) - calls_before
        fallbacks = scrape(autoscaled.extender, "spot_extender_fallbacks_total") - fallbacks_before
        print(f"    kube-scheduler called the extender's filter {calls:.0f} times; {fallbacks:.0f} pods short of "
              "their floor were let onto spot because no on-demand node was a candidate")
        assert calls > 0, "kube-scheduler did not call the extender: the contrast did not run in extender mode"
        assert autoscaled.karpenter.nodes(), "Karpenter provisioned nothing"
    finally:
        kube.delete_namespace(autoscaled.api, "contrast", 120)
        autoscaled.webhook_only()
