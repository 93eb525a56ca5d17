"""Fleet metrics: how much of the fleet runs on spot, what that saves, and every floor.

Computed at scrape time from the workload states of /debug/workloads (status.py's
WorkloadState), so nothing is kept twice. The handler builds those states first, in
chunks that yield to the event loop; collect() only turns them into samples, in the
thread that encodes the scrape (server.py), reading the list it was handed.

Cardinality: with per-workload series on, each workload the index holds adds 7 series
(replicas by class: 2, pods by role: 2, desired replicas, floor, floor met); a cluster
of 10,000 workloads exports 70,000. --workload-metrics=false keeps only the
cluster-wide series, seven at most (workloads below
their floor: spot_extender_workloads_below_floor, from the leader's rebalance pass).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .status import WorkloadState

WORKLOAD_LABELS = ("namespace", "kind", "workload")


@dataclass(frozen=True, slots=True)
class Totals:
    workloads: int
    floors_unmet: int
    on_demand: int  # replicas of the counted revisions on on-demand nodes
    spot: int
    spot_allowed: int  # sum of max(R - k, 0): what the floors leave for spot
    spot_share: float | None  # spot / spot_allowed; None while the floors allow none
    savings_ratio: float | None  # 1 - estimated cost / all on on-demand; None with no replica placed
    floors_clamped: int = 0  # workloads whose pods cannot run on one class at all


def totals(states: Iterable[WorkloadState], spot_price_ratio: float) -> Totals:
    """Cluster-wide figures from workload states. A replica on spot is taken to cost
    spot_price_ratio of the same replica on on-demand: every replica the same size."""
    workloads = unmet = on_demand = spot = allowed = clamped = 0
    for state in states:
        workloads += 1
        unmet += not state.floor_met
        clamped += bool(state.floor_clamp)
        on_demand += state.on_demand
        spot += state.spot
        allowed += max(state.replicas - state.floor, 0)
    placed = on_demand + spot
    return Totals(
        workloads,
        unmet,
        on_demand,
        spot,
        allowed,
        spot / allowed if allowed else None,
        spot * (1 - spot_price_ratio) / placed if placed else None,
        clamped,
    )


class FleetCollector(Collector):
    """Samples from the states last handed to update(); the /metrics handler hands them
    over just before each scrape is encoded."""

    def __init__(self, spot_price_ratio: float, per_workload: bool):
        self.spot_price_ratio = spot_price_ratio
        self.per_workload = per_workload
        self._states: Sequence[WorkloadState] | None = None  # None until the first update

    def update(self, states: Sequence[WorkloadState]) -> None:
        self._states = states

    def describe(self):
        return []  # no samples are known before a scrape; registering must not call collect()

    def collect(self):
        states = self._states
        if states is None:
            return  # index still syncing: no figures rather than zeros that look true
        t = totals(states, self.spot_price_ratio)
        yield _gauge("spot_extender_workloads", "Deployments, StatefulSets and Rollouts the index holds, "
                     "excluded namespaces left out", t.workloads)
        by_class = GaugeMetricFamily("spot_extender_fleet_replicas",
                                     "Replicas of the counted revisions, by the class of their node", labels=["class"])
        by_class.add_metric(["on-demand"], t.on_demand)
        by_class.add_metric(["spot"], t.spot)
        yield by_class
        yield _gauge("spot_extender_workloads_floor_clamped",
                     "Workloads whose floor cannot be kept as set because their pods cannot run on any node of "
                     "one class (a GPU only spot nodes have, a selector, a taint): floorClamp in /debug/workloads "
                     "says why", t.floors_clamped)
        yield _gauge("spot_extender_fleet_spot_allowed", "Sum over workloads of max(R - k, 0): the replicas the "
                     "floors leave for spot", t.spot_allowed)
        if t.spot_share is not None:
            yield _gauge("spot_extender_spot_share", "Replicas on spot over what the floors allow on spot, "
                         "sum(spot) / sum(max(R - k, 0)): 1 when everything above the floors runs on spot",
                         t.spot_share)
        if t.savings_ratio is not None:
            yield _gauge("spot_extender_estimated_savings_ratio",
                         f"Estimated share of the all-on-demand cost saved, spot priced at --spot-price-ratio "
                         f"({self.spot_price_ratio:g}) of on-demand, every replica the same size", t.savings_ratio)
        if self.per_workload:
            yield from _per_workload(states)


def _per_workload(states: Sequence[WorkloadState]):
    replicas = GaugeMetricFamily("spot_extender_workload_replicas",
                                 "Replicas of the workload's counted revision, by the class of their node",
                                 labels=[*WORKLOAD_LABELS, "class"])
    roles = GaugeMetricFamily("spot_extender_workload_pods_by_role",
                              "Pods of the counted revision by the role the webhook wrote in their spec",
                              labels=[*WORKLOAD_LABELS, "role"])
    desired = GaugeMetricFamily("spot_extender_workload_desired_replicas", "R, the workload's desired replicas",
                                labels=list(WORKLOAD_LABELS))
    floor = GaugeMetricFamily("spot_extender_workload_floor", "k, the replicas kept on on-demand",
                              labels=list(WORKLOAD_LABELS))
    met = GaugeMetricFamily("spot_extender_workload_floor_met", "1 when at least k replicas run on on-demand",
                            labels=list(WORKLOAD_LABELS))
    for state in states:
        key = [state.namespace, state.kind, state.name]
        replicas.add_metric([*key, "on-demand"], state.on_demand)
        replicas.add_metric([*key, "spot"], state.spot)
        roles.add_metric([*key, "floor"], state.floor_role_pods)
        roles.add_metric([*key, "spot"], state.spot_role_pods)
        desired.add_metric(key, state.replicas)
        floor.add_metric(key, state.floor)
        met.add_metric(key, 1 if state.floor_met else 0)
    yield from (replicas, roles, desired, floor, met)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
