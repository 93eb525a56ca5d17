"""Benchmark 2d: availability and cost when Karpenter provisions every node.

The same workloads as the availability benchmark, once per approach, each on a fresh
control plane with no worker node, Karpenter's KWOK provider (one NodePool allowing
spot and on-demand) and kube-scheduler as it ships:

  webhook          spot-extender as the pods' admission webhook: roles in their specs
  capacity-spread  what Karpenter users are pointed to for mixing capacity types: a
                   topology spread over karpenter.sh/capacity-type (maxSkew 1,
                   DoNotSchedule), so pods split evenly between spot and on-demand
  native           every pod template prefers spot (node affinity, weight 100)

Timeline: deploy and settle; every spot NodeClaim deleted at once (Karpenter drains and
removes the nodes, as on an interruption); settle again. Sampled twice a second: ready
replicas, pods on spot, Karpenter's nodes and their vCPUs. Cost weights spot at 0.3 and
on-demand at 1.0 per vCPU-hour. Writes build/bench/autoscaled.json and autoscaled.png.
"""

from __future__ import annotations

import argparse
import sys

from tests.cluster.autoscaled import AutoscaledCluster
from tests.cluster.karpenter import vcpus
from tests.helpers import kube
from tests.helpers import objects as o
from tests.helpers.sampling import Sample
from tests.perf import plots, tables
from tests.perf.bench_availability import FULL, NAMESPACE, SMALL, Scenario, workload_fields
from tests.perf.report import OUT_DIR, publish

APPROACHES = ("webhook", "capacity-spread", "native")
PRICE = {"spot": 0.3, "on-demand": 1.0}  # per vCPU-hour, relative


def manifests(workloads, approach: str) -> list[dict]:
    out = []
    for w in workloads:
        make = o.deployment if w.kind == "Deployment" else o.statefulset
        obj = make(w.name, w.replicas, namespace=NAMESPACE)
        spec = obj["spec"]["template"]["spec"]
        if approach == "native":
            spec["affinity"] = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "preference": {"matchExpressions": [
                    {"key": o.KARPENTER_CAPACITY_LABEL, "operator": "In", "values": ["spot"]}]}}]}}
        elif approach == "capacity-spread":
            spec["topologySpreadConstraints"] = [{
                "maxSkew": 1, "topologyKey": o.KARPENTER_CAPACITY_LABEL, "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": w.name}}}]
        out.append(obj)
        if w.has_pdb:
            out.append(o.pdb(w.name, {"app": w.name}, w.min_available, w.max_unavailable, namespace=NAMESPACE))
    return out


class AutoscaledScenario(Scenario):
    """Scenario's availability records, plus Karpenter's nodes and their cost at each sample."""

    node_names: frozenset = frozenset()  # the nodes at the last sample

    def record(self, sample: Sample) -> None:
        super().record(sample)
        self.node_names = frozenset(sample.nodes)
        cpus = {"spot": 0, "on-demand": 0}
        for node in sample.nodes.values():
            kind = node["metadata"].get("labels", {}).get(o.KARPENTER_CAPACITY_LABEL)
            if kind in cpus:
                cpus[kind] += vcpus(node)
        self.samples[-1].update(nodes=len(sample.nodes), spot_vcpus=cpus["spot"], on_demand_vcpus=cpus["on-demand"],
                                cost_per_hour=round(PRICE["spot"] * cpus["spot"] + PRICE["on-demand"] * cpus["on-demand"], 2))

    def cost(self, since: float) -> float:
        """Weighted vCPU-hours spent since `since`: each sample's rate held until the next."""
        window = self.window(since)
        return round(sum((b["t"] - a["t"]) * a["cost_per_hour"] for a, b in zip(window, window[1:])) / 3600, 4)


def steady_figures(record: dict) -> dict:
    return {"spot_share": record["spot_share"], "on_spot": record["on_spot"], "nodes": record["nodes"],
            "spot_vcpus": record["spot_vcpus"], "on_demand_vcpus": record["on_demand_vcpus"],
            "cost_per_hour": record["cost_per_hour"]}


def run_approach(approach: str, args, workloads) -> dict:
    flags = ("--log-format=json", f"--rebalance-interval={args.rebalance_interval}s",
             f"--move-cooldown={args.move_cooldown}s", f"--max-moves-per-minute={args.max_moves}",
             "--lease-duration=6s", "--renew-deadline=4s", "--retry-period=1s")
    env = AutoscaledCluster(flags, pod_ready_ms=int(args.startup * 1000), spot_extender=approach == "webhook",
                            consolidate_after=f"{args.consolidate_after:g}s")
    print(f"==> {approach}", flush=True)
    try:
        env.start()
        run = AutoscaledScenario(approach, env.cluster, workloads, 0, args.sample_every)
        kube.namespace(env.api, NAMESPACE)
        run.event("deploy")
        for obj in manifests(workloads, approach):
            kube.create(env.api, obj)
        steady = run.settle(args.settle, args.settle_timeout)
        run.event(f"steady: spot share {steady['spot_share']}, {steady['nodes']} nodes")

        lost_start = run.samples[-1]["t"]
        spot_nodes = {n["metadata"]["name"] for n in env.karpenter.nodes()
                      if n["metadata"]["labels"].get(o.KARPENTER_CAPACITY_LABEL) == "spot"}
        run.event("delete every spot NodeClaim")
        deleted = env.karpenter.delete_node_claims("spot")
        # Karpenter drains and removes the nodes over a few seconds: recovered once they are gone.
        recovered = run.sample_until(lambda r: not spot_nodes & run.node_names and run.all_ready(r),
                                     args.recover_timeout)
        at_once = run.losses(lost_start)
        run.event("every replica ready again" if recovered is not None else "not all ready at the timeout")
        after = run.settle(args.settle, args.settle_timeout)
        run.event(f"settled again: spot share {after['spot_share']}, {after['nodes']} nodes")
    finally:
        env.cleanup()
    return {
        "approach": approach,
        "steady": steady_figures(steady),
        "spot_node_claims_deleted": len(deleted),
        "spot_lost_at_once": {**at_once, "seconds_to_all_ready": recovered},
        "after": steady_figures(after),
        "cost_weighted_vcpu_hours": run.cost(0),
        "seconds": run.samples[-1]["t"],
        "events": run.events,
        "timeline": [{k: s[k] for k in ("t", "ready_total", "on_spot", "spot_share", "nodes", "cost_per_hour")}
                     for s in run.samples],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", choices=("full", "small"), default="full")
    parser.add_argument("--startup", type=float, default=5, help="seconds from binding to Ready (KWOK delay)")
    parser.add_argument("--sample-every", type=float, default=0.5)
    parser.add_argument("--settle", type=float, default=20, help="quiet seconds that count as steady")
    parser.add_argument("--settle-timeout", type=float, default=420)
    parser.add_argument("--recover-timeout", type=float, default=180)
    parser.add_argument("--consolidate-after", type=float, default=15, help="the NodePool's consolidateAfter, s")
    parser.add_argument("--rebalance-interval", type=float, default=5)
    parser.add_argument("--move-cooldown", type=float, default=2)
    parser.add_argument("--max-moves", type=int, default=120, help="spot-extender --max-moves-per-minute")
    parser.add_argument("--approaches", default=",".join(APPROACHES))
    parser.add_argument("--out-dir", default=str(OUT_DIR))
    args = parser.parse_args(argv)
    workloads = FULL if args.workloads == "full" else SMALL
    results = [run_approach(a, args, workloads) for a in args.approaches.split(",")]
    report = {
        "benchmark": "autoscaled",
        "settings": {k: v for k, v in vars(args).items() if k not in ("out_dir", "approaches")},
        "prices": PRICE,
        **workload_fields(workloads),
        "results": results,
    }
    print(f"\n{tables.autoscaled(report)}\n", flush=True)  # the table docs/performance.md shows
    publish(report, args.out_dir, plots.autoscaled_timeline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
