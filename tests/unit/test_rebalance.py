"""Rebalance (app/controller/rebalance.py): floor repair and returns to spot, one move at a
time under cooldown, rate limit and backoff, skips reported once, roles, moves that could
never succeed not made (the floor clamped instead), the debug view's state, and spot seeks.

views.py (workload_view, has_room) has no test file of its own: these tests cover it, the
taint, zone, PDB and room cases in particular."""

import pytest

from spot_extender.cluster.index import NODE, POD
from spot_extender.core.settings import Settings
from spot_extender.core.vocabulary import ANNOTATION_SPOT_SEEK, ROLE_LABEL
from spot_extender.decisions.moves import Hysteresis
from tests.helpers import objects as f
from tests.helpers.controller import ITN, AnnotatingKube, _uid, deploy, setup
from tests.helpers.metrics import registry_value as sample


@pytest.mark.parametrize("template_role", ["spot", "floor"])
async def test_a_role_label_from_the_template_is_no_role_and_plans_no_move(template_role):
    # The webhook never ran on these pods (opted out): the label came from the template, and
    # a replacement would carry it again, so a move by role would repeat for ever.
    controller, index = setup()
    deploy(index, "web", ["o1", "s1", "s2"])
    for uid in [p.uid for p in index.pods()]:
        pod = index.pod(uid)
        raw = f.pod(pod.name, owner=("ReplicaSet", "web-1"), node_name=pod.node, uid=uid,
                    labels={"app": "web", ROLE_LABEL: template_role, "spot-extender.io/webhook": "off"})
        raw["metadata"]["annotations"] = {"spot-extender.io/admission": "copied-from-a-pod"}
        index.apply(POD, "MODIFIED", raw)
    assert all(p.role == "" for p in index.pods())
    await controller.rebalance.once()
    assert controller.kube.evicted == []


async def test_with_roles_on_tainted_spot_pools_the_floor_is_k_and_surplus_returns_to_spot():
    # AKS taints every spot pool; the webhook gives spot pods the toleration, the template has none.
    controller, index = setup()
    aks = {"key": "kubernetes.azure.com/scalesetpriority", "value": "spot", "effect": "NoSchedule"}
    for name in ("s1", "s2"):
        index.apply(NODE, "MODIFIED", f.node(name, "spot", taints=[aks]))
    deploy(index, "web", ["o1", "o2", "s1"])
    for pod in list(index.pods()):
        raw = f.pod(pod.name, owner=("ReplicaSet", "web-1"), node_name=pod.node, uid=pod.uid, labels={"app": "web"},
                    role="spot" if pod.node == "s1" else "floor")
        raw["metadata"]["creationTimestamp"] = pod.created
        index.apply(POD, "MODIFIED", raw)
    web = index.workload(("Deployment", "default", "web"))
    assert controller.rebalance.floors.of_workload(web).k == 1  # roles: judged with the webhook's toleration
    assert controller.rebalance.floors.of_workload(web, roles=False).k == 3  # extender only: the template alone
    await controller.rebalance.once()
    assert controller.kube.evicted == ["default/web-1-1"]  # the newer floor pod, surplus to k = 1


async def test_surplus_moves_back_to_spot_one_at_a_time():
    controller, index = setup()
    deploy(index, "web", ["o1", "o2", "o1"])
    await controller.rebalance.once()
    await controller.rebalance.once()  # the first move has not settled: no second eviction
    assert controller.kube.evicted == ["default/web-1-2"]  # the newest on the most loaded node
    index.apply(POD, "DELETED", f.pod("web-1-2", owner=("ReplicaSet", "web-1"), uid=_uid(index, "web-1-2")))
    replacement = f.pod("web-1-9", owner=("ReplicaSet", "web-1"), node_name="s1", labels={"app": "web"})
    index.apply(POD, "ADDED", replacement)
    await controller.rebalance.once()
    assert controller.kube.evicted == ["default/web-1-2", "default/web-1-1"]
    assert controller.rebalance.history[next(iter(controller.rebalance.history))].failures == 0


async def test_cooldown_and_rate_limit_defer_moves():
    controller, index = setup(max_moves_per_minute=1)
    controller.rebalance.hysteresis = type(controller.rebalance.hysteresis)(cooldown=3600, backoff_max=7200)
    deploy(index, "a", ["o1", "o2"])
    deploy(index, "b", ["o1", "o2"])
    await controller.rebalance.once()
    assert len(controller.kube.evicted) == 1
    assert sample(controller.metrics, "spot_extender_moves_deferred_total", reason="rate-limit") == 1


def _with_requests(index, app, cpu):
    for pod in list(index.pods()):
        if pod.name.startswith(f"{app}-"):
            raw = f.pod(pod.name, owner=("ReplicaSet", f"{app}-1"), node_name=pod.node, uid=pod.uid, labels={"app": app})
            raw["spec"]["containers"][0]["resources"] = {"requests": {"cpu": cpu}}
            index.apply(POD, "MODIFIED", raw)


async def test_floor_repair_and_skips_are_reported_once():
    controller, index = setup()
    deploy(index, "web", ["s1", "s2"])
    await controller.rebalance.once()
    assert controller.kube.evicted == ["default/web-1-1"]
    full, index2 = setup()
    deploy(index2, "web", ["s1", "s2"])
    for node in ("o1", "o2"):  # no on-demand room
        hog = f.pod(f"hog-{node}", node_name=node)
        hog["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "4"}}
        index2.apply(POD, "ADDED", hog)
    _with_requests(index2, "web", "100m")  # the hogs leave 0 of 4 cores: 100m does not fit
    await full.rebalance.once()
    await full.rebalance.once()
    assert full.kube.evicted == []
    assert [e["reason"] for e in full.kube.events] == ["SkippedFloorRepair"]
    assert sample(full.metrics, "spot_extender_workloads_below_floor") == 1


async def test_state_for_the_debug_view():
    controller, index = setup()
    deploy(index, "web", ["o1", "o2"])
    await controller.rebalance.once()
    key = next(w.key for w in index.top_level_workloads())
    state = controller.rebalance.state_of(key)
    assert state.moving.cause == "return-to-spot"
    assert state.last_skip is None and state.failed_moves == 0


async def test_a_floor_repair_that_lands_on_spot_again_backs_off():
    # Without the extender in the scheduler's path, a repair's replacement may land on spot.
    controller, index = setup()
    controller.rebalance.hysteresis = type(controller.rebalance.hysteresis)(cooldown=3600, backoff_max=7200)
    deploy(index, "web", ["s1", "s2"])
    await controller.rebalance.once()
    assert controller.kube.evicted == ["default/web-1-1"]
    index.apply(POD, "DELETED", f.pod("web-1-1", owner=("ReplicaSet", "web-1"), uid=_uid(index, "web-1-1")))
    index.apply(POD, "ADDED", f.pod("web-1-7", owner=("ReplicaSet", "web-1"), node_name="s1", labels={"app": "web"}))
    await controller.rebalance.once()  # settled on spot again: a failure, and the next repair waits
    assert controller.kube.evicted == ["default/web-1-1"]
    key = next(w.key for w in index.top_level_workloads())
    assert controller.rebalance.history[key].failures == 1
    assert sample(controller.metrics, "spot_extender_moves_deferred_total", reason="backoff") == 1
    assert sample(controller.metrics, "spot_extender_moves_failed_total", cause="floor-repair") == 1
    state = controller.rebalance.state_of(key)
    assert (state.failed_moves, state.last_failure) == (
        1, "the replacement did not become a floor pod on on-demand")
    from spot_extender.serving.status import Status
    from spot_extender.serving.status_table import last_action
    [web] = Status(index, controller.rebalance.floors, Settings(), controller=controller.rebalance).workloads()
    assert web.controller == state and last_action(web).startswith("backing off after 1 failed move(s), next in ")
    # Deleted, the workload leaves nothing behind (a soak creates thousands of names).
    index.apply("Deployment", "DELETED", f.deployment("web", 2))
    await controller.rebalance.once()
    assert key not in controller.rebalance.history


SPOT_ONLY = {"nodeSelector": {"node.kubernetes.io/capacity": "spot"}}


ON_DEMAND_ONLY = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
    "nodeSelectorTerms": [{"matchExpressions": [
        {"key": "node.kubernetes.io/capacity", "operator": "In", "values": ["on-demand"]}]}]}}}}


async def test_moves_that_could_never_succeed_are_not_made_and_the_floor_is_clamped():
    from spot_extender.serving.status import Status

    controller, index = setup()
    # Case 1: pods pinned to spot. A floor repair would only bring a replica back on spot.
    deploy(index, "pinned-spot", ["s1", "s2", "s1", "s2", "s1"], pod_spec=SPOT_ONLY)
    # Case 2: pods that require on-demand. A return to spot would only come back on on-demand.
    deploy(index, "pinned-od", ["o1", "o2", "o1"], pod_spec=ON_DEMAND_ONLY)
    for _ in range(3):
        await controller.rebalance.once()
    assert controller.kube.evicted == [] and controller.kube.events == []
    assert sample(controller.metrics, "spot_extender_workloads_below_floor") == 0
    assert sample(controller.metrics, "spot_extender_moves_skipped_total", cause="floor-repair",
                  reason="no on-demand node has room for it") == 0
    states = {w.name: w for w in Status(index, controller.rebalance.floors, Settings()).workloads()}
    assert (states["pinned-spot"].floor, states["pinned-spot"].floor_met) == (0, True)
    assert "cannot run on any on-demand node" in states["pinned-spot"].floor_clamp
    assert (states["pinned-od"].floor, states["pinned-od"].floor_met) == (3, True)
    assert "cannot run on any spot node" in states["pinned-od"].floor_clamp


async def test_a_return_to_spot_needs_a_spot_node_whose_taints_the_pods_tolerate():
    controller, index = setup()
    aks_spot = [{"key": "kubernetes.azure.com/scalesetpriority", "value": "spot", "effect": "NoSchedule"}]
    for name in ("s1", "s2"):
        index.apply(NODE, "MODIFIED", f.node(name, "spot", taints=aks_spot))
    deploy(index, "web", ["o1", "o2", "o1"])  # no toleration: the spot pool is closed to it
    await controller.rebalance.once()
    assert controller.kube.evicted == []
    tolerant = {"tolerations": [{"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal",
                                 "value": "spot", "effect": "NoSchedule"}]}
    deploy(index, "api", ["o1", "o2", "o1"], pod_spec=tolerant)
    await controller.rebalance.once()
    assert controller.kube.evicted == ["default/api-1-2"]


async def test_a_move_waits_for_a_node_that_admits_the_pod_not_just_any_with_room():
    controller, index = setup()
    zone_b_only = {"nodeSelector": {"topology.kubernetes.io/zone": "zone-b"}}
    index.apply(NODE, "ADDED", f.node("s3", "spot", zone="zone-b"))
    deploy(index, "web", ["s3", "s3"], pod_spec=zone_b_only)  # o1, o2 are in zone-a: no floor repair can land
    await controller.rebalance.once()
    assert controller.kube.evicted == []
    index.apply(NODE, "ADDED", f.node("o3", "on-demand", zone="zone-b"))
    await controller.rebalance.once()
    assert controller.kube.evicted == ["default/web-1-1"]


async def test_a_class_with_no_nodes_at_all_clamps_nothing():
    controller, index = setup()
    deploy(index, "web", ["o1", "o2"], pod_spec=ON_DEMAND_ONLY)
    for name in ("s1", "s2"):  # every spot node reclaimed
        index.apply(NODE, "DELETED", f.node(name, "spot"))
    floor = controller.rebalance.floors.of_workload(next(iter(index.top_level_workloads())))
    assert (floor.k, floor.clamp) == (1, "")


async def test_spot_nodes_going_away_do_not_read_as_spot_refusing_the_pods():
    # Every spot node tainted at its notice: the taint must not clamp the floor to R,
    # or floor repair would evict spot replicas alongside the paced drain.
    controller, index = setup()
    deploy(index, "web", ["o1", "s1", "s2"])
    for name in ("s1", "s2"):
        index.apply(NODE, "MODIFIED", f.node(name, "spot", taints=[ITN]))
    web = index.workload(("Deployment", "default", "web"))
    assert controller.rebalance.floors.of_workload(web).k == 1
    await controller.rebalance.once()
    assert controller.kube.evicted == []


async def test_a_spot_seek_marks_the_owner_moves_the_pod_and_ends_placed_or_timed_out(monkeypatch):
    from spot_extender.controller import markers

    monkeypatch.setattr(markers, "PEERS_SETTLE", 0.0)
    controller, index = setup(kube=AnnotatingKube(), seek_spot="on", spot_seek_timeout=60)
    now = [f.epoch("2026-01-01T00:01:00Z")]
    controller.rebalance.wall = lambda: now[0]
    controller.rebalance.clock = lambda: now[0]
    controller.rebalance.hysteresis = Hysteresis(5, 600)  # a failed move backs the next one off
    index.apply("Deployment", "ADDED", f.deployment("web", 2))
    index.apply("ReplicaSet", "ADDED", f.replicaset("web-1", "web", 2))
    for node in ("s1", "s2"):  # spot is full
        hog = f.pod(f"hog-{node}", node_name=node, labels={"app": "hog"}, uid=f"hog-{node}")
        hog["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "4"}}
        index.apply(POD, "ADDED", hog)

    def web_pod(name, role, node="", created="2026-01-01T00:00:00Z"):
        pod = f.pod(name, owner=("ReplicaSet", "web-1"), node_name=node, labels={"app": "web"}, role=role,
                    uid=name)
        pod["metadata"]["creationTimestamp"] = created
        pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "500m"}}
        return pod

    index.apply(POD, "ADDED", web_pod("web-1-floor", "floor", "o1"))
    index.apply(POD, "ADDED", web_pod("web-1-a", "spot", "o2"))
    await controller.rebalance.once()
    assert controller.kube.owner_annotations == [{ANNOTATION_SPOT_SEEK: "2026-01-01T00:01:00Z"}]
    assert controller.kube.evicted == ["default/web-1-a"]
    assert sample(controller.metrics, "spot_extender_spot_seeks_total", result="started") == 1
    # The replacement waits for the autoscaler's node, which comes: the seek ends, placed.
    index.apply(POD, "DELETED", web_pod("web-1-a", "spot", "o2"))
    index.apply(POD, "ADDED", web_pod("web-1-b", "spot", created="2026-01-01T00:01:01Z"))
    await controller.rebalance.once()
    assert controller.kube.owner_annotations[-1] == {ANNOTATION_SPOT_SEEK: "2026-01-01T00:01:00Z"}  # still waiting
    index.apply(NODE, "ADDED", f.node("s3", "spot"))
    index.apply(POD, "MODIFIED", web_pod("web-1-b", "spot", "s3", created="2026-01-01T00:01:01Z"))
    await controller.rebalance.once()
    assert controller.kube.owner_annotations[-1] == {ANNOTATION_SPOT_SEEK: None}
    assert sample(controller.metrics, "spot_extender_spot_seeks_total", result="placed") == 1

    # A second seek (spot full again) whose node never comes: after the timeout the marker
    # goes and the Pending replacement is evicted, to come back only preferring spot.
    hog = f.pod("hog-s3", node_name="s3", labels={"app": "hog"}, uid="hog-s3")
    hog["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "3800m"}}
    index.apply(POD, "ADDED", hog)
    index.apply(POD, "DELETED", web_pod("web-1-b", "spot", "s3"))
    index.apply(POD, "ADDED", web_pod("web-1-c", "spot", "o2", created="2026-01-01T00:01:02Z"))
    now[0] += 10
    await controller.rebalance.once()
    assert controller.kube.owner_annotations[-1] == {ANNOTATION_SPOT_SEEK: "2026-01-01T00:01:10Z"}
    assert controller.kube.evicted[-1] == "default/web-1-c"
    index.apply(POD, "DELETED", web_pod("web-1-c", "spot", "o2"))
    index.apply(POD, "ADDED", web_pod("web-1-d", "spot", created="2026-01-01T00:01:11Z"))
    now[0] += 61
    await controller.rebalance.once()
    assert controller.kube.owner_annotations[-1] == {ANNOTATION_SPOT_SEEK: None}
    assert controller.kube.evicted[-1] == "default/web-1-d"
    assert sample(controller.metrics, "spot_extender_evictions_total", cause="spot-seek", result="evicted") == 1
    index.apply(POD, "DELETED", web_pod("web-1-d", "spot"))
    index.apply(POD, "ADDED", web_pod("web-1-e", "spot", "o2", created="2026-01-01T00:02:12Z"))
    await controller.rebalance.once()  # the move settles back on on-demand: a failed seek, backed off
    assert sample(controller.metrics, "spot_extender_spot_seeks_total", result="timeout") == 1
    assert controller.rebalance.history[("Deployment", "default", "web")].failures == 1
    await controller.rebalance.once()
    assert controller.kube.evicted[-1] == "default/web-1-d"  # no new move within the backoff


async def test_seek_spot_auto_follows_karpenter_nodes():
    controller, index = setup(seek_spot="auto")
    assert not controller.rebalance.seeks_spot()
    index.apply(NODE, "ADDED", f.node("k1", None, labels={"karpenter.sh/capacity-type": "spot",
                                                          "karpenter.sh/nodepool": "default"}))
    assert controller.rebalance.seeks_spot()
    index.apply(NODE, "MODIFIED", f.node("k1", None, labels={"karpenter.sh/capacity-type": "spot"}))
    assert not controller.rebalance.seeks_spot()  # the label went: the count follows
    index.apply(NODE, "MODIFIED", f.node("k1", None, labels={"karpenter.sh/nodepool": "default"}))
    index.replace(NODE, [])
    assert index.autoscaled_nodes == 0 and not controller.rebalance.seeks_spot()
    controller, _ = setup(seek_spot="off")
    controller.rebalance.index.apply(NODE, "ADDED", f.node("k1", None, labels={"karpenter.sh/nodepool": "default"}))
    assert not controller.rebalance.seeks_spot()
