"""The controller's bookkeeping against a recording stand-in for Kube; the real API
server is exercised by tests/e2e/test_controller.py."""

import asyncio
import logging

import pytest

from spot_extender.api import StatusError
from spot_extender.assembly import build
from spot_extender.cluster.index import KIND_NAMES, NODE, PDB, POD
from spot_extender.controller import Controller
from spot_extender.controller import writer as writer_module
from spot_extender.core.settings import Settings
from spot_extender.core.vocabulary import ANNOTATION_FLOOR_FALLBACK, ANNOTATION_SPOT_SEEK, DELETION_COST, ROLE_LABEL
from spot_extender.decisions.moves import Hysteresis
from tests.fakeapi import FakeApi
from tests.helpers import objects as f
from tests.helpers.metrics import registry_value as sample


async def evictions_done(controller) -> None:
    """Wait for every eviction the drain has under way."""
    await asyncio.gather(*list(controller.drain.evicting.values()), return_exceptions=True)


class RecordingKube:
    def __init__(self, refuse: int = 0, watch_lags: bool = False):
        self.evicted: list[str] = []
        self.annotated: dict[str, dict] = {}
        self.events: list[dict] = []
        self.refuse = refuse  # answer 429 this many times first
        self.watch_lags = watch_lags  # True: evicted pods do not show as terminating by themselves
        self.index = None

    async def evict(self, namespace, name, timeout, uid=""):
        if self.refuse:
            self.refuse -= 1
            raise StatusError(429, "Cannot evict pod as it would violate the pod's disruption budget.")
        self.evicted.append(f"{namespace}/{name}")
        if self.index is not None and not self.watch_lags:
            pod = next(p for p in self.index.pods() if p.namespace == namespace and p.name == name)
            self.index.apply(POD, "MODIFIED", f.pod(name, namespace, owner=(pod.group.kind, pod.group.name),
                                                    node_name=pod.node, uid=pod.uid, deleting=True))

    async def annotate_pod(self, namespace, name, annotations, timeout):
        self.annotated[f"{namespace}/{name}"] = annotations

    async def post_event(self, about, event_type, reason, message, timeout):
        self.events.append({"about": about, "type": event_type, "reason": reason, "message": message})


def setup(kube=None, **settings):
    settings = Settings(move_cooldown=0, **settings)
    parts = build(settings)
    index = parts.index
    for kind in KIND_NAMES:
        index.replace(kind, [])
    for name, cls in (("s1", "spot"), ("s2", "spot"), ("o1", "on-demand"), ("o2", "on-demand")):
        index.apply(NODE, "ADDED", f.node(name, cls))
    kube = kube or RecordingKube()
    kube.index = index
    controller = Controller(kube, index, parts.floors, settings, parts.metrics)
    controller.kube = kube
    return controller, index


def deploy(index, name, pods_on, namespace="default", annotations=None, pod_spec=None):
    """A Deployment with one ready replica per entry of pods_on; pod_spec adds to its template."""
    deployment = f.deployment(name, len(pods_on), namespace, annotations)
    deployment["spec"]["template"]["spec"].update(pod_spec or {})
    index.apply("Deployment", "ADDED", deployment)
    index.apply("ReplicaSet", "ADDED", f.replicaset(f"{name}-1", name, len(pods_on), namespace=namespace))
    for i, node in enumerate(pods_on):
        raw = f.pod(f"{name}-1-{i}", namespace, owner=("ReplicaSet", f"{name}-1"), node_name=node,
                    labels={"app": name})
        raw["metadata"]["creationTimestamp"] = f"2026-01-01T00:00:0{i}Z"
        index.apply(POD, "ADDED", raw)


async def drain(controller):
    await controller.drain.once()
    await evictions_done(controller)


async def test_drain_evicts_managed_pods_on_going_away_spot_nodes_only():
    controller, index = setup()
    deploy(index, "web", ["s1", "s1", "o1"])
    deploy(index, "sys", ["s1"], namespace="kube-system")
    deploy(index, "mine", ["s1"], annotations={"spot-extender.io/rebalance": "false"})
    index.apply(POD, "ADDED", f.pod("ds-1", owner=("DaemonSet", "ds"), node_name="s1"))
    mirror = f.pod("static-1", node_name="s1", owner=("ReplicaSet", "x"))
    mirror["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "abc"}
    index.apply(POD, "ADDED", mirror)
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[{"key": "karpenter.sh/disrupted"}]))  # no notice: at once
    index.apply(NODE, "MODIFIED", f.node("o1", "on-demand", unschedulable=True))  # on-demand: not drained
    await drain(controller)
    assert sorted(controller.kube.evicted) == ["default/web-1-0", "default/web-1-1"]
    assert {e["reason"] for e in controller.kube.events} == {"EvictedReclaim"}
    assert sample(controller.metrics, "spot_extender_evictions_total", cause="reclaim", result="evicted") == 2


async def test_drain_retries_while_a_pdb_refuses():
    controller, index = setup(kube=RecordingKube(refuse=2))
    deploy(index, "web", ["s1"])
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", unschedulable=True))
    await asyncio.wait_for(drain(controller), 10)
    assert controller.kube.evicted == ["default/web-1-0"]
    assert sample(controller.metrics, "spot_extender_evictions_total", cause="reclaim", result="blocked") == 2


class ReplacedKube(RecordingKube):
    """The pod of that name is a new one by the time the eviction arrives (a StatefulSet's
    replacement): the API server refuses the uid precondition with 409."""

    def __init__(self):
        super().__init__()
        self.attempts: list[tuple[str, str]] = []

    async def evict(self, namespace, name, timeout, uid=""):
        self.attempts.append((name, uid))
        old = self.index.pod(uid)  # the watch shows the old pod gone and its successor on on-demand
        self.index.apply(POD, "DELETED", f.pod(name, namespace, uid=uid))
        self.index.apply(POD, "ADDED", f.pod(name, namespace, owner=(old.group.kind, old.group.name), node_name="o1"))
        raise StatusError(409, 'Precondition failed: UID in precondition: "old", UID in object meta: "new"')


async def test_an_eviction_names_the_pods_uid_and_a_replaced_pod_counts_as_gone_not_retried():
    controller, index = setup(kube=ReplacedKube())
    deploy(index, "web", ["s1"])
    uid = _uid(index, "web-1-0")
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", unschedulable=True))
    await asyncio.wait_for(drain(controller), 10)
    assert controller.kube.attempts == [("web-1-0", uid)]
    assert sample(controller.metrics, "spot_extender_evictions_total", cause="reclaim", result="gone") == 1


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


async def test_drain_can_be_switched_off_and_dry_run_evicts_nothing():
    for enabled in (True, False):
        controller, index = setup(drain=enabled)
        deploy(index, "web", ["s1"], annotations={"spot-extender.io/placement": "spot"})  # no floor to repair
        index.apply(NODE, "MODIFIED", f.node("s1", "spot", unschedulable=True))
        running = asyncio.create_task(controller.run())
        await asyncio.sleep(0.3)
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        assert controller.kube.evicted == (["default/web-1-0"] if enabled else [])
    dry, index = setup(dry_run=True)
    deploy(index, "web", ["s1"])
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", unschedulable=True))
    await drain(dry)
    await dry.rebalance.once()
    await dry.deletion_cost.once()
    assert dry.kube.evicted == [] and dry.kube.events == [] and dry.kube.annotated == {}
    assert sample(dry.metrics, "spot_extender_evictions_total", cause="reclaim", result="dry-run") == 1


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


async def test_deletion_costs_are_patched_only_when_they_change():
    controller, index = setup()
    deploy(index, "web", ["o1", "o2", "s1"])
    await controller.deletion_cost.once()
    assert controller.kube.annotated == {
        "default/web-1-0": {DELETION_COST: "1000"},
        "default/web-1-1": {DELETION_COST: "-1000"},
        "default/web-1-2": {DELETION_COST: "0"},
    }
    for name, patch in controller.kube.annotated.items():  # the watch shows the patches
        pod = index.pod(_uid(index, name.split("/")[1]))
        raw = f.pod(pod.name, owner=("ReplicaSet", "web-1"), node_name=pod.node, uid=pod.uid, labels={"app": "web"})
        raw["metadata"]["annotations"] = patch
        raw["metadata"]["creationTimestamp"] = pod.created
        index.apply(POD, "MODIFIED", raw)
    controller.kube.annotated.clear()
    await controller.deletion_cost.once()
    assert controller.kube.annotated == {}


def _uid(index, name):
    return next(p.uid for p in index.pods() if p.name == name)


def _with_requests(index, app, cpu):
    for pod in list(index.pods()):
        if pod.name.startswith(f"{app}-"):
            raw = f.pod(pod.name, owner=("ReplicaSet", f"{app}-1"), node_name=pod.node, uid=pod.uid, labels={"app": app})
            raw["spec"]["containers"][0]["resources"] = {"requests": {"cpu": cpu}}
            index.apply(POD, "MODIFIED", raw)


async def test_an_evicted_pod_is_not_evicted_again_before_the_watch_shows_it_leaving():
    controller, index = setup(kube=RecordingKube(watch_lags=True))
    deploy(index, "web", ["s1"])
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", unschedulable=True))
    await controller.drain.once()
    await asyncio.sleep(0.1)  # evicted, but the watch has not delivered the deletion yet
    await controller.drain.once()
    assert controller.kube.evicted == ["default/web-1-0"]
    pod = next(iter(index.pods()))
    raw = f.pod(pod.name, owner=("ReplicaSet", "web-1"), node_name="s1", uid=pod.uid, deleting=True)
    index.apply(POD, "MODIFIED", raw)
    await evictions_done(controller)
    await controller.drain.once()
    assert controller.kube.evicted == ["default/web-1-0"]


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


async def test_a_server_that_hangs_up_mid_eviction_is_logged_counted_and_retried(caplog):
    async with FakeApi() as api:
        api.eviction_script = ["disconnect"]
        kube = api.kube()
        controller, index = setup(kube=kube)
        deploy(index, "web", ["s1"])
        index.apply(NODE, "MODIFIED", f.node("s1", "spot", unschedulable=True))
        with caplog.at_level(logging.WARNING, logger="spot_extender"):
            await controller.drain.once()
            evicting = list(controller.drain.evicting.values())
            for _ in range(100):  # the first try hangs up, the retry after a backoff goes through
                if api.evictions:
                    break
                await asyncio.sleep(0.05)
            # The drain holds the pod until the watch shows it leaving, as the API server would.
            pod = next(iter(index.pods()))
            index.apply(POD, "MODIFIED", f.pod(pod.name, owner=("ReplicaSet", "web-1"), node_name="s1",
                                              uid=pod.uid, deleting=True))
            await asyncio.wait_for(asyncio.gather(*evicting, return_exceptions=True), 5)
        await kube.close()
    assert api.evictions == ["default/web-1-0"]
    failed = [r for r in caplog.records if r.getMessage() == "eviction failed"]
    assert failed and "ServerDisconnectedError" in failed[0].error
    assert sample(controller.metrics, "spot_extender_evictions_total", cause="reclaim", result="error") == 1
    assert sample(controller.metrics, "spot_extender_evictions_total", cause="reclaim", result="evicted") == 1
    assert all(not t.cancelled() and t.exception() is None for t in evicting)


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


GPU = {"nvidia.com/gpu": "1"}


async def test_a_gpu_workload_where_only_spot_has_gpus_gets_no_floor_and_no_churn(monkeypatch):
    # The loop this ends: a floor pod no on-demand node can hold fell back, on-demand "had room"
    # (CPU and memory), the floor was repaired by evicting a Ready spot pod, and round again.
    from spot_extender.controller import markers
    from spot_extender.serving.status import Status

    monkeypatch.setattr(markers, "PEERS_SETTLE", 0.0)
    controller, index = setup(kube=AnnotatingKube(), floor_pending_timeout=60)
    for name in ("s1", "s2"):
        gpu_node = f.node(name, "spot")
        gpu_node["status"]["allocatable"].update(GPU)
        index.apply(NODE, "MODIFIED", gpu_node)
    gpu = {"containers": [{"name": "app", "image": "app:1", "resources": {"requests": GPU, "limits": GPU}}]}
    deploy(index, "train", ["s1", "s2"], pod_spec=gpu)
    for pod in [p for p in index.pods() if p.name.startswith("train")]:
        raw = f.pod(pod.name, owner=("ReplicaSet", "train-1"), node_name=pod.node, uid=pod.uid,
                    labels={"app": "train"}, role="spot")
        raw["spec"].update(gpu)
        index.apply(POD, "MODIFIED", raw)
    workload = index.workload(("Deployment", "default", "train"))
    floor = controller.rebalance.floors.of_workload(workload)
    assert floor.k == 0 and "nvidia.com/gpu" in floor.clamp
    controller.fallback.wall = lambda: f.epoch("2026-01-01T01:00:00Z")
    for _ in range(3):
        await controller.rebalance.once()
        await controller.fallback.once()
    assert controller.kube.evicted == [] and controller.kube.owner_annotations == []
    states = {w.name: w for w in Status(index, controller.rebalance.floors, Settings()).workloads()}
    assert states["train"].floor_clamp == floor.clamp


async def test_floor_pods_waiting_on_a_gate_or_a_volume_are_not_fallen_back(monkeypatch):
    from spot_extender.controller import markers

    monkeypatch.setattr(markers, "PEERS_SETTLE", 0.0)
    controller, index = setup(kube=AnnotatingKube(), floor_pending_timeout=60)
    controller.fallback.wall = lambda: f.epoch("2026-01-01T01:00:00Z")
    index.apply("Deployment", "ADDED", f.deployment("web", 3))
    index.apply("ReplicaSet", "ADDED", f.replicaset("web-1", "web", 3))
    waiting = {
        "web-1-gated": ("SchedulingGated", "Scheduling is blocked due to non-empty scheduling gates"),
        "web-1-claim": ("Unschedulable", "0/4 nodes are available: pod has unbound immediate PersistentVolumeClaims."),
        "web-1-fresh": None,  # not tried by the scheduler yet
        "web-1-full": f.NO_ROOM,
    }
    for name, condition in waiting.items():
        raw = f.pod(name, owner=("ReplicaSet", "web-1"), labels={"app": "web"}, role="floor", unscheduled=condition)
        raw["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
        index.apply(POD, "ADDED", raw)
    await controller.fallback.once()
    assert controller.kube.evicted == ["default/web-1-full"]


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


async def test_a_new_leader_waits_until_every_watch_is_connected():
    controller, index = setup()
    deploy(index, "web", ["s1"], annotations={"spot-extender.io/placement": "spot"})
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", unschedulable=True))
    index.freshness.down(POD)  # the Pod watch has not reconnected yet
    running = asyncio.create_task(controller.run())
    await asyncio.sleep(0.3)
    assert controller.kube.evicted == []  # nothing done from a stale view
    index.freshness.up(POD)
    for _ in range(100):
        if controller.kube.evicted:
            break
        await asyncio.sleep(0.02)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert controller.kube.evicted == ["default/web-1-0"]


def not_ready(name, capacity):
    return f.node(name, capacity, ready=False)


async def test_most_nodes_not_ready_at_once_is_no_reason_to_drain():
    # An API server outage leaves every heartbeat stale: the nodes turn NotReady together,
    # one watch event after another.
    controller, index = setup()
    clock = [0.0]
    controller.drain.clock = lambda: clock[0]
    deploy(index, "web", ["s1", "s2"], annotations={"spot-extender.io/placement": "spot"})
    index.apply(NODE, "MODIFIED", not_ready("s1", "spot"))
    await drain(controller)  # the first of them, seen alone: within the grace, nothing yet
    clock[0] += 1
    for name, capacity in (("s2", "spot"), ("o1", "on-demand")):
        index.apply(NODE, "MODIFIED", not_ready(name, capacity))
        await drain(controller)
    clock[0] += 60
    await drain(controller)  # 3 of 4 not Ready, however long: held
    assert controller.kube.evicted == []
    # One spot node NotReady on its own, past the grace, is going away: it is drained.
    for name, capacity in (("s2", "spot"), ("o1", "on-demand")):
        index.apply(NODE, "MODIFIED", f.node(name, capacity))
    await drain(controller)
    assert controller.kube.evicted == ["default/web-1-0"]


ITN = {"key": "aws-node-termination-handler/spot-itn", "value": "true", "effect": "NoSchedule"}


def paced(nodes, kube=None):
    """(controller, index, clock) with a ReplicaSet web-1 of one Ready replica per entry
    of nodes, each 30 s from creation to Ready; clock[0] is both's time."""
    controller, index = setup(kube=kube)
    clock = [1000.0]
    index.clock = controller.drain.clock = lambda: clock[0]
    deploy(index, "web", [])
    index.apply("ReplicaSet", "MODIFIED", f.replicaset("web-1", "web", len(nodes)))
    started_pods(index, "web", nodes, startup=30)
    return controller, index, clock


def started_pods(index, app, nodes, startup):
    """Ready replicas of `app`-1 whose pods took `startup` seconds from creation to Ready."""
    for i, node in enumerate(nodes):
        raw = f.pod(f"{app}-1-{i}", owner=("ReplicaSet", f"{app}-1"), node_name=node, labels={"app": app})
        raw["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
        raw["status"]["conditions"][0]["lastTransitionTime"] = f"2026-01-01T00:00:{startup:02d}Z"
        index.apply(POD, "ADDED", raw)


async def test_a_drain_with_notice_keeps_a_window_of_replicas_down_that_slides_as_replacements_turn_ready():
    controller, index, clock = paced(["o1"] + ["s1"] * 6)
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))  # 120 s notice: evict by 120 - 30 - 5
    assert index.deadline("s1") == 1120.0
    await drain(controller)  # 85 s and 30 s start-ups: 3 waves fit, so 2 of the 6 down at a time
    assert controller.kube.evicted == ["default/web-1-1", "default/web-1-2"]
    clock[0] += 5
    await drain(controller)  # their replacements are not Ready: nothing more
    assert len(controller.kube.evicted) == 2
    index.apply(POD, "ADDED", f.pod("web-1-r1", owner=("ReplicaSet", "web-1"), node_name="o2", labels={"app": "web"}))
    await drain(controller)  # one is: one more goes, without waiting for the other
    assert controller.kube.evicted == ["default/web-1-1", "default/web-1-2", "default/web-1-3"]
    assert sample(controller.metrics, "spot_extender_drain_waves_total", trigger="paced") == 2
    # No other replacement comes, and time runs out: the rest go at once, by 1085.
    clock[0] = 1085.0
    await drain(controller)
    assert sorted(controller.kube.evicted) == [f"default/web-1-{i}" for i in range(1, 7)]
    assert sample(controller.metrics, "spot_extender_drain_waves_total", trigger="due") == 1
    assert all(e["reason"] == "EvictedReclaim" for e in controller.kube.events)


async def test_a_replica_the_watch_shows_ready_after_the_drain_began_counts_as_up_from_then_on():
    # A replica not Ready at the first pass is not down for the drain (it may crash-loop);
    # once it turns Ready, a replica evicted since must count as down, or two go at once.
    controller, index, _ = paced(["o1", "o2"] + ["s1"] * 3)  # 85 s, 30 s start-ups: 1 at a time
    late = next(p for p in index.pods() if p.name == "web-1-0")

    def web_1_0(ready):
        index.apply(POD, "MODIFIED", f.pod("web-1-0", owner=("ReplicaSet", "web-1"), node_name="o1",
                                          uid=late.uid, labels={"app": "web"}, ready=ready))

    web_1_0(ready=False)
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))
    await drain(controller)
    assert controller.kube.evicted == ["default/web-1-2"]
    web_1_0(ready=True)  # 4 of 5 Ready, the most seen was 5: one is down
    await drain(controller)
    assert controller.kube.evicted == ["default/web-1-2"]
    index.apply(POD, "ADDED", f.pod("web-1-r1", owner=("ReplicaSet", "web-1"), node_name="o2", labels={"app": "web"}))
    await drain(controller)  # replaced: the next goes
    assert controller.kube.evicted == ["default/web-1-2", "default/web-1-3"]


async def test_a_new_leader_keeps_the_notice_as_first_seen():
    controller, index = setup()
    clock = [1000.0]
    index.clock = controller.drain.clock = lambda: clock[0]
    deploy(index, "web", ["o1", "s1", "s1"])
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))
    clock[0] = 1080.0  # the old leader evicted nothing (it died); its successor has 5 s left, not 85
    successor = Controller(controller.kube, index, controller.rebalance.floors, Settings(), controller.metrics)
    successor.drain.clock = lambda: clock[0]
    await drain(successor)  # less than one start-up left: one wave, everything
    assert sorted(controller.kube.evicted) == ["default/web-1-1", "default/web-1-2"]


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


async def test_a_paced_wave_keeps_within_the_pdb_and_a_refusal_retries_once_it_allows(monkeypatch):
    monkeypatch.setattr(writer_module, "RETRY_INITIAL", 60.0)  # plain backoff: a minute or more
    controller, index, clock = paced(["o1"] + ["s1"] * 6, kube=RecordingKube(refuse=1))  # 85 s, 30 s: waves of 2

    def pdb_allows(count):
        pdb = f.pdb("web", {"app": "web"}, max_unavailable=1)
        pdb["status"] = {"disruptionsAllowed": count}
        index.apply(PDB, "MODIFIED", pdb)

    pdb_allows(1)
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))
    await controller.drain.once()  # a wave of 1, as the PDB allows; the API refuses it once
    pdb_allows(0)
    await asyncio.sleep(1.0)
    assert controller.kube.evicted == []
    pdb_allows(1)  # the PDB allows again: retried now, not a minute later
    await asyncio.wait_for(evictions_done(controller), 5)
    assert controller.kube.evicted == ["default/web-1-1"]


async def test_a_drain_at_once_takes_workloads_in_turn():
    # Evictions queue behind --eviction-concurrency: taking them workload by workload in
    # turn spreads the loss instead of emptying one workload first.
    controller, index = setup()
    deploy(index, "web", ["s1", "s1", "s1"])
    deploy(index, "api", ["s1", "s1", "s1"])
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", unschedulable=True))
    await drain(controller)
    owners = [name.split("/")[1].split("-")[0] for name in controller.kube.evicted]
    assert owners in (["web", "api"] * 3, ["api", "web"] * 3), owners


class AnnotatingKube(RecordingKube):
    """Also writes annotations of the web-1 ReplicaSet, which the watch then shows."""

    def __init__(self):
        super().__init__()
        self.owner_annotations: list[dict] = []

    async def annotate(self, resource, namespace, name, annotations, timeout):
        self.owner_annotations.append(annotations)
        rs = f.replicaset(name, "web", 3, namespace=namespace)
        current = {k: v for k, v in {**rs["metadata"]["annotations"], **annotations}.items() if v is not None}
        if self.index.workload(("ReplicaSet", namespace, name)).floor_fallback and ANNOTATION_FLOOR_FALLBACK not in annotations:
            current[ANNOTATION_FLOOR_FALLBACK] = self.index.workload(("ReplicaSet", namespace, name)).floor_fallback
        rs["metadata"]["annotations"] = current
        self.index.apply("ReplicaSet", "MODIFIED", rs)


async def test_a_floor_pod_pending_too_long_falls_back_to_spot_until_on_demand_has_room(monkeypatch):
    from spot_extender.controller import markers

    monkeypatch.setattr(markers, "PEERS_SETTLE", 0.0)
    controller, index = setup(kube=AnnotatingKube(), floor_pending_timeout=60)
    now = [f.epoch("2026-01-01T00:00:30Z")]
    controller.fallback.wall = lambda: now[0]
    index.apply("Deployment", "ADDED", f.deployment("web", 3))
    index.apply("ReplicaSet", "ADDED", f.replicaset("web-1", "web", 3))
    for node in ("o1", "o2"):  # on-demand is full
        hog = f.pod(f"hog-{node}", node_name=node, labels={"app": "hog"}, uid=f"hog-{node}")
        hog["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "4"}}
        index.apply(POD, "ADDED", hog)
    def web_pod(name, role, node=""):
        pod = f.pod(name, owner=("ReplicaSet", "web-1"), node_name=node, labels={"app": "web"}, role=role,
                    unscheduled=f.NO_ROOM)
        pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "100m"}}
        return pod

    pending = web_pod("web-1-a", "floor")
    pending["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    index.apply(POD, "ADDED", pending)
    for i, node in enumerate(("s1", "s2")):
        index.apply(POD, "ADDED", web_pod(f"web-1-{i}", "spot", node))
    await controller.fallback.once()
    assert controller.kube.evicted == [] and controller.kube.owner_annotations == []  # 30 s: not yet
    now[0] += 31
    await controller.fallback.once()
    assert controller.kube.owner_annotations == [{ANNOTATION_FLOOR_FALLBACK: "2026-01-01T00:01:01Z"}]
    assert controller.kube.evicted == ["default/web-1-a"]
    assert sample(controller.metrics, "spot_extender_floor_pending_fallbacks_total") == 1
    assert sample(controller.metrics, "spot_extender_evictions_total", cause="floor-fallback", result="evicted") == 1
    assert [e["reason"] for e in controller.kube.events] == ["FloorFloorFallback", "EvictedFloorFallback"]
    # While it lasts, rebalance does not repair the floor (the replacement would be spot again).
    index.apply(POD, "ADDED", web_pod("web-1-b", "spot", "s1"))
    for node in ("o1", "o2"):
        index.apply(POD, "DELETED", f.pod(f"hog-{node}", node_name=node, uid=f"hog-{node}"))  # room again
    await controller.rebalance.once()
    assert "default/web-1-0" not in controller.kube.evicted and "default/web-1-1" not in controller.kube.evicted
    await controller.fallback.once()  # ... the fallback ends, and the floor is repaired as any
    assert controller.kube.owner_annotations[-1] == {ANNOTATION_FLOOR_FALLBACK: None}
    assert index.workload(("ReplicaSet", "default", "web-1")).floor_fallback is None
    await controller.rebalance.once()
    assert controller.kube.evicted[-1] in ("default/web-1-0", "default/web-1-1", "default/web-1-b")


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
