"""Floors: k from its source (PDB, annotation, default) as every caller asks for it, and
clamped for the controller to the classes the pods can run on."""

import pytest

from spot_extender.assembly import build
from spot_extender.cluster.index import KIND_NAMES, NODE, PDB
from spot_extender.core.settings import Settings
from tests.helpers import objects as f


def floors_with(*objects, **settings):
    parts = build(Settings(**settings))
    for kind in KIND_NAMES:
        parts.index.replace(kind, [])
    for kind, raw in objects:
        parts.index.apply(kind, "ADDED", raw)
    return parts.floors, parts.index


def web(replicas=4, annotations=None, **spec):
    raw = f.deployment("web", replicas, annotations=annotations)
    raw["spec"]["template"]["spec"].update(spec)
    return ("Deployment", raw)


NODES = [(NODE, f.node("s1", "spot")), (NODE, f.node("o1", "on-demand"))]


@pytest.mark.parametrize("objects, k, source", [
    ([web()], 1, "default"),
    ([web(annotations={"spot-extender.io/on-demand-floor": "3"})], 3, "annotation"),
    ([web(annotations={"spot-extender.io/on-demand-floor": "50%"})], 2, "annotation"),
    ([web(), (PDB, f.pdb("web", {"app": "web"}, min_available=3))], 3, "pdb web"),
    ([web(annotations={"spot-extender.io/placement": "on-demand"})], 4, "placement"),
    ([web(annotations={"spot-extender.io/placement": "spot"})], 0, "placement"),
])
def test_the_floor_and_why(objects, k, source):
    floors, index = floors_with(*NODES, *objects)
    floor = floors.of_workload(index.top_level_workloads()[0])
    assert floor.k == k and source.lower() in floor.source.lower(), floor


def test_a_workload_not_seen_yet_gets_the_default_floor():
    floors, _ = floors_with(default_floor=2)
    assert floors.of(None, "default", {"app": "web"}).k == 2


def test_pods_no_on_demand_node_admits_have_no_floor_and_say_why():
    floors, index = floors_with(*NODES, web(nodeSelector={"node.kubernetes.io/capacity": "spot"}))
    floor = floors.of_workload(index.top_level_workloads()[0])
    assert floor.k == 0 and "on-demand" in floor.clamp


def test_pods_no_spot_node_admits_keep_every_replica_on_on_demand():
    tainted = (NODE, f.node("s1", "spot", taints=[{"key": "dedicated", "value": "batch", "effect": "NoSchedule"}]))
    floors, index = floors_with(tainted, NODES[1], web())
    floor = floors.of_workload(index.top_level_workloads()[0])
    assert floor.k == 4 and "spot" in floor.clamp


def test_a_class_with_no_node_at_all_clamps_nothing():
    floors, index = floors_with(NODES[1], web())  # every spot node reclaimed: missing capacity
    assert floors.of_workload(index.top_level_workloads()[0]).clamp == ""
