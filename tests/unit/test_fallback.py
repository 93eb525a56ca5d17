"""FloorFallback (app/controller/fallback.py): a floor pod Pending too long for want of
on-demand room falls back to spot until on-demand has room again; floor pods waiting on
anything else, or that no on-demand node could ever hold, do not."""

from spot_extender.cluster.index import NODE, POD
from spot_extender.core.settings import Settings
from spot_extender.core.vocabulary import ANNOTATION_FLOOR_FALLBACK
from tests.helpers import objects as f
from tests.helpers.controller import AnnotatingKube, deploy, setup
from tests.helpers.metrics import registry_value as sample


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
