from dataclasses import replace

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from spot_extender.serving.fleet import FleetCollector, totals
from spot_extender.serving.status import WorkloadState


def state(name, replicas, floor, on_demand, spot, floor_pods=0, spot_pods=0, namespace="shop", kind="Deployment"):
    return WorkloadState(kind=kind, namespace=namespace, name=name, replicas=replicas, floor=floor,
                         floor_source="default", floor_clamp=None, counted_group=None, on_demand=on_demand,
                         spot=spot, in_flight=0, floor_role_pods=floor_pods, spot_role_pods=spot_pods,
                         floor_fallback=None, spot_seek=None, floor_met=on_demand >= floor, controller=None)


WEB = state("web", 10, 2, 2, 8, 2, 8)  # everything above the floor on spot
API = state("api", 4, 1, 3, 1)  # two replicas that could be on spot are not
SOLO = state("solo", 1, 1, 0, 1)  # floor broken: its one replica fell back to spot
IDLE = state("idle", 0, 1, 0, 0)  # scaled to zero: allows nothing on spot


@pytest.mark.parametrize(
    ("states", "ratio", "workloads", "unmet", "on_demand", "spot", "allowed", "share", "savings"),
    [
        ([WEB], 0.3, 1, 0, 2, 8, 8, 1.0, 8 * 0.7 / 10),
        ([WEB, API], 0.3, 2, 0, 5, 9, 11, 9 / 11, 9 * 0.7 / 14),
        ([WEB, API, SOLO], 0.5, 3, 1, 5, 10, 11, 10 / 11, 10 * 0.5 / 15),
        ([IDLE], 0.3, 1, 1, 0, 0, 0, None, None),  # nothing placed, nothing allowed: no ratios
        ([SOLO], 0.3, 1, 1, 0, 1, 0, None, 0.7),  # spot beyond what floors allow: no share, still savings
        ([], 0.3, 0, 0, 0, 0, 0, None, None),
        ([WEB], 1.0, 1, 0, 2, 8, 8, 1.0, 0.0),  # spot priced as on-demand saves nothing
    ],
)
def test_totals(states, ratio, workloads, unmet, on_demand, spot, allowed, share, savings):
    t = totals(states, ratio)
    assert (t.workloads, t.floors_unmet, t.on_demand, t.spot, t.spot_allowed) == (workloads, unmet, on_demand, spot,
                                                                                   allowed)
    assert t.spot_share == (pytest.approx(share) if share is not None else None)
    assert t.savings_ratio == (pytest.approx(savings) if savings is not None else None)


def scrape(collector) -> dict:
    registry = CollectorRegistry()
    registry.register(collector)
    samples = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_nothing_before_the_first_update():
    assert scrape(FleetCollector(0.3, True)) == {}


def test_cluster_and_per_workload_series():
    fleet = FleetCollector(0.3, True)
    gpu = replace(state("train", 2, 0, 0, 2), floor_clamp="its pods cannot run on any on-demand node (...)")
    fleet.update([WEB, SOLO, gpu])
    got = scrape(fleet)
    assert got[("spot_extender_workloads", ())] == 3
    assert got[("spot_extender_workloads_floor_clamped", ())] == 1
    assert got[("spot_extender_fleet_replicas", (("class", "on-demand"),))] == 2
    assert got[("spot_extender_fleet_replicas", (("class", "spot"),))] == 11
    assert got[("spot_extender_fleet_spot_allowed", ())] == 10
    assert got[("spot_extender_spot_share", ())] == pytest.approx(11 / 10)
    assert got[("spot_extender_estimated_savings_ratio", ())] == pytest.approx(11 * 0.7 / 13)
    web = (("kind", "Deployment"), ("namespace", "shop"), ("workload", "web"))
    assert got[("spot_extender_workload_replicas", (("class", "spot"), *web))] == 8
    assert got[("spot_extender_workload_replicas", (("class", "on-demand"), *web))] == 2
    assert got[("spot_extender_workload_pods_by_role", (*web[:2], ("role", "floor"), web[2]))] == 2
    assert got[("spot_extender_workload_pods_by_role", (*web[:2], ("role", "spot"), web[2]))] == 8
    assert got[("spot_extender_workload_desired_replicas", web)] == 10
    assert got[("spot_extender_workload_floor", web)] == 2
    assert got[("spot_extender_workload_floor_met", web)] == 1
    solo = (("kind", "Deployment"), ("namespace", "shop"), ("workload", "solo"))
    assert got[("spot_extender_workload_floor_met", solo)] == 0
    per_workload = [k for k in got if k[0].startswith("spot_extender_workload_")]
    assert len(per_workload) == 7 * 3  # the documented cardinality: 7 series per workload


def test_per_workload_series_can_be_dropped():
    fleet = FleetCollector(0.3, False)
    fleet.update([WEB, SOLO])
    names = {name for name, _ in scrape(fleet)}
    assert not any(n.startswith("spot_extender_workload_") for n in names)
    assert {"spot_extender_spot_share", "spot_extender_fleet_replicas", "spot_extender_workloads"} <= names
