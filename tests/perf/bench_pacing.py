"""Benchmark: a drain paced to the notice against a drain at once (part of `make bench-availability`).

Every spot node gets AWS's interruption taint at once; `--notice` seconds later the
nodes vanish (Node objects and their pods deleted). spot-extender drains them:

  paced    told the notice (--drain-notice=aws-node-termination-handler/spot-itn=<notice>):
           waves per workload, the next when the last one's replacements are Ready
  at-once  --drain-notice= (no notice known): every doomed pod evicted at once
  surge    paced, and --surge=all (--max-surge): each Deployment starts surge pods when
           the notice arrives, and its doomed pods go as they turn Ready

each with a pod start-up (binding to Ready, by KWOK) of 5 s and of 30 s, each run on a
fresh control plane with the same nodes and workloads (R from 1 to 20, some PDBs, some
StatefulSets; terminationGracePeriodSeconds 30). For every workload it reports the
fewest ready replicas from the notice until all are Ready again, as a fraction of R,
the replica-seconds lost, and the bound eviction alone can reach: R - ceil(d / w),
d its replicas on spot at the notice, w = (notice - grace - margin) / start-up.
Writes build/bench/pacing.json and pacing.png.
"""

from __future__ import annotations

import argparse
import sys

from tests.cluster.controlplane import ControlPlane, ExtenderProcess
from tests.helpers import kube
from tests.helpers import objects as o
from tests.helpers.drain_bound import eviction_bound
from tests.helpers.metrics import scrape
from tests.helpers.waiting import wait_for
from tests.perf import plots
from tests.perf.bench_availability import FULL, NAMESPACE, SMALL, Scenario, manifests
from tests.perf.report import OUT_DIR, publish

MODES = ("paced", "at-once", "surge")
SURGE_OUTCOMES = ("started", "completed", "abandoned", "failed")


def pdb_allows(workload, replicas: int) -> int | None:
    """Disruptions the workload's PDB allows at once with every replica Ready; None: no PDB."""
    def count(value) -> int:
        if isinstance(value, str):  # a percentage; minAvailable rounds up, maxUnavailable too
            return -(-replicas * int(value.rstrip("%")) // 100)
        return value

    if workload.min_available is not None:
        return replicas - count(workload.min_available)
    if workload.max_unavailable is not None:
        return count(workload.max_unavailable)
    return None


def run_one(mode: str, startup: float, args, workloads) -> dict:
    name = f"{mode} {startup:g}s"
    cluster = ControlPlane(log=print, pod_ready_ms=int(startup * 1000))
    notice_flag = (f"--drain-notice={o.INTERRUPTION_TAINT['key']}={args.notice:g}s" if mode != "at-once"
                   else "--drain-notice=")
    surge_flags = ("--surge=all", f"--max-surge={args.max_surge}") if mode == "surge" else ("--surge=off",)
    print(f"==> {name}", flush=True)
    try:
        cluster.start()
        extender = ExtenderProcess(cluster, "--log-format=json", notice_flag, *surge_flags,
                                   f"--drain-margin={args.margin:g}s",
                        "--rebalance-interval=10s", "--move-cooldown=5s", "--max-moves-per-minute=120",
                        "--lease-duration=6s", "--renew-deadline=4s", "--retry-period=1s").start()
        run = Scenario(name, cluster, workloads, args.nodes_per_pool, args.sample_every)
        run.add_on_demand()
        run.add_spot()
        kube.namespace(cluster.api, NAMESPACE)
        run.event("deploy")
        for obj in manifests(workloads, native=False):
            if "template" in obj.get("spec", {}):
                obj["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = args.grace
            kube.create(cluster.api, obj)
        steady = run.settle(args.settle, args.settle_timeout)
        run.event(f"steady: spot share {steady['spot_share']}")
        doomed = dict(steady["on_spot_by_app"])
        start = steady["t"]
        run.reclaim(list(run.spot_pools), args.notice)
        recovered = run.sample_until(run.all_ready, args.recover_timeout)
        run.event("every replica ready again" if recovered is not None else "not all ready at the timeout")
        if mode == "surge":  # Ready again may count surge pods: their scale-back ends the reclaim
            try:
                wait_for(lambda: scrape(extender, "spot_extender_surges_in_progress") == 0, args.recover_timeout,
                         interval=0.5, what="every surge removed")
                run.event("every surge removed")
            except TimeoutError:
                run.event("a surge left at the timeout")
        waves = {trigger: int(scrape(extender, "spot_extender_drain_waves_total", {"trigger": trigger}))
                 for trigger in ("paced", "surge", "due")}
        surge = {"pod_seconds": round(scrape(extender, "spot_extender_surge_pod_seconds_total"), 1),
                 **{outcome: int(scrape(extender, "spot_extender_surges_total", {"outcome": outcome}))
                    for outcome in SURGE_OUTCOMES}}
        if args.keep_logs:
            print(cluster.dump_logs(lines=400), flush=True)
    finally:
        cluster.cleanup()
    available = args.notice - args.grace - args.margin
    per = run.per_workload(start)
    window = [sample for sample in run.samples if sample["t"] >= start]
    deployments = [w for w in workloads if w.kind == "Deployment"]  # those that can surge
    rows = []
    for w in workloads:
        got = per[w.name]
        rows.append({
            "name": w.name, "replicas": w.replicas, "doomed": doomed[w.name], "pdb_allows": pdb_allows(w, w.replicas),
            "min_ready": got["min_ready"], "min_ready_fraction": round(got["min_ready"] / w.replicas, 3),
            "bound": eviction_bound(w.replicas, doomed[w.name], available, startup),
            "replica_seconds_lost": got["replica_seconds_lost"],
        })
    return {
        "mode": mode, "startup": startup, "seconds_to_all_ready_after_vanish": recovered, "drain_waves": waves,
        "surge": surge,
        "replica_seconds_lost": round(sum(r["replica_seconds_lost"] for r in rows), 1),
        "min_ready_total_fraction": fewest_ready_fraction(window, workloads),
        "deployments_replica_seconds_lost": round(sum(r["replica_seconds_lost"] for r in rows
                                                      if r["name"] in {w.name for w in deployments}), 1),
        "deployments_min_ready_total_fraction": fewest_ready_fraction(window, deployments),
        "workloads": rows, "events": run.events,
        "timeline": [{"t": round(s["t"] - start, 2), "ready_total": s["ready_total"],
                      "ready": [s["ready"][w.name] for w in workloads]}
                     for s in run.samples if s["t"] >= start - 10],
    }


def fewest_ready_fraction(window: list[dict], workloads) -> float:
    """The fewest ready replicas of `workloads` together at any sample, over their R; each
    counted up to its R, so one workload's surge pods never hide another's loss."""
    total = sum(w.replicas for w in workloads)
    fewest = min(sum(min(s["ready"][w.name], w.replicas) for w in workloads) for s in window)
    return round(fewest / total, 3)


def compare(results: list[dict]) -> list[dict]:
    """Per start-up and workload: paced against its bound (within one replica) and against at-once."""
    out = []
    for startup in sorted({r["startup"] for r in results}):
        by_mode = {r["mode"]: r for r in results if r["startup"] == startup}
        if not {"paced", "at-once"} <= set(by_mode):
            continue
        at_once = {w["name"]: w for w in by_mode["at-once"]["workloads"]}
        for w in by_mode["paced"]["workloads"]:
            other = at_once[w["name"]]
            out.append({"startup": startup, "name": w["name"], "bound": w["bound"],
                        "paced_min_ready": w["min_ready"], "at_once_min_ready": other["min_ready"],
                        "within_one_of_bound": w["min_ready"] >= w["bound"] - 1,
                        "not_worse_than_at_once": w["min_ready"] >= other["min_ready"]})
    return out


def compare_surge(results: list[dict], notice: float, grace: float, margin: float) -> list[dict]:
    """Per start-up, surge against paced, side by side from one run: the fewest ready of all
    workloads together (target 1.0 where the start-up fits in the notice less grace and
    margin), replica-seconds lost (target under 5% of paced's) and what the surge cost."""
    out = []
    for startup in sorted({r["startup"] for r in results}):
        by_mode = {r["mode"]: r for r in results if r["startup"] == startup}
        if not {"paced", "surge"} <= set(by_mode):
            continue
        paced, surge = by_mode["paced"], by_mode["surge"]
        fits = startup < notice - grace - margin
        row = {"startup": startup, "fits_in_notice": fits, "surge_pod_seconds": surge["surge"]["pod_seconds"]}
        # All workloads, as the target is stated, then the Deployments alone: StatefulSets
        # never surge, so they lose what the paced drain loses in both arms.
        for prefix, field in (("", ""), ("deployments_", "deployments_")):
            lost_ratio = (round(surge[f"{field}replica_seconds_lost"] / paced[f"{field}replica_seconds_lost"], 3)
                          if paced[f"{field}replica_seconds_lost"] else None)
            fewest = surge[f"{field}min_ready_total_fraction"]
            row.update({
                f"{prefix}paced_min_ready_total_fraction": paced[f"{field}min_ready_total_fraction"],
                f"{prefix}surge_min_ready_total_fraction": fewest,
                f"{prefix}paced_replica_seconds_lost": paced[f"{field}replica_seconds_lost"],
                f"{prefix}surge_replica_seconds_lost": surge[f"{field}replica_seconds_lost"],
                f"{prefix}lost_over_paced": lost_ratio,
                f"{prefix}min_ready_met": fewest >= 1.0 if fits else None,
                f"{prefix}lost_met": lost_ratio is not None and lost_ratio < 0.05,
            })
        out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", choices=("full", "small"), default="full")
    parser.add_argument("--nodes-per-pool", type=int, default=3)
    parser.add_argument("--notice", type=float, default=120, help="seconds from the interruption taint to the nodes vanishing")
    parser.add_argument("--startups", default="5,30", help="pod start-up times to run, seconds (KWOK delay)")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--grace", type=int, default=30, help="the pods' terminationGracePeriodSeconds")
    parser.add_argument("--margin", type=float, default=5, help="spot-extender --drain-margin, seconds")
    parser.add_argument("--max-surge", default="25%", help="spot-extender --max-surge in the surge mode")
    parser.add_argument("--sample-every", type=float, default=0.5)
    parser.add_argument("--settle", type=float, default=15, help="quiet seconds that count as steady")
    parser.add_argument("--settle-timeout", type=float, default=300)
    parser.add_argument("--recover-timeout", type=float, default=180)
    parser.add_argument("--keep-logs", action="store_true", help="print the components' logs after each run")
    parser.add_argument("--out-dir", default=str(OUT_DIR))
    args = parser.parse_args(argv)
    workloads = FULL if args.workloads == "full" else SMALL
    results = [run_one(mode, float(startup), args, workloads)
               for startup in args.startups.split(",") for mode in args.modes.split(",")]
    report = {
        "benchmark": "pacing",
        "settings": {k: v for k, v in vars(args).items() if k not in ("out_dir", "keep_logs")},
        "results": results,
        "comparison": compare(results),
        "surge_comparison": compare_surge(results, args.notice, args.grace, args.margin),
    }
    print_table(report)
    publish(report, args.out_dir, plots.pacing_timeline)
    return 0


def print_table(report: dict) -> None:
    print(f"\n{'start-up':>8} {'workload':<10}{'R':>4}{'d':>4}{'bound':>7}{'paced':>7}{'at-once':>9}{'surge':>7}"
          f"{'paced lost':>12}{'at-once lost':>14}{'surge lost':>12}")
    for startup in sorted({r["startup"] for r in report["results"]}):
        by_mode = {r["mode"]: {w["name"]: w for w in r["workloads"]} for r in report["results"] if r["startup"] == startup}
        first = next(iter(by_mode.values()))
        for name, w in first.items():
            paced, at_once = by_mode.get("paced", {}).get(name), by_mode.get("at-once", {}).get(name)
            surge = by_mode.get("surge", {}).get(name)
            print(f"{startup:>7g}s {name:<10}{w['replicas']:>4}{w['doomed']:>4}{w['bound']:>7}"
                  f"{paced['min_ready'] if paced else '-':>7}{at_once['min_ready'] if at_once else '-':>9}"
                  f"{surge['min_ready'] if surge else '-':>7}"
                  f"{paced['replica_seconds_lost'] if paced else '-':>12}"
                  f"{at_once['replica_seconds_lost'] if at_once else '-':>14}"
                  f"{surge['replica_seconds_lost'] if surge else '-':>12}")
    for r in report["results"]:
        print(f"{r['mode']:>8} {r['startup']:g}s: replica-seconds lost {r['replica_seconds_lost']}, "
              f"fewest ready overall {r['min_ready_total_fraction']:.0%}")
    misses = [c for c in report["comparison"] if not (c["within_one_of_bound"] and c["not_worse_than_at_once"])]
    print(f"workloads off target: {len(misses)} of {len(report['comparison'])}"
          + "".join(f"\n  {c}" for c in misses))
    for c in report["surge_comparison"]:
        for prefix, which in (("", "all workloads"), ("deployments_", "Deployments")):
            print(f"surge {c['startup']:g}s, {which}: fewest ready {c[prefix + 'surge_min_ready_total_fraction']:.0%} "
                  f"against paced {c[prefix + 'paced_min_ready_total_fraction']:.0%}; replica-seconds lost "
                  f"{c[prefix + 'surge_replica_seconds_lost']} against {c[prefix + 'paced_replica_seconds_lost']} "
                  f"({c[prefix + 'lost_over_paced']})")
        print(f"surge {c['startup']:g}s: surge pod-seconds {c['surge_pod_seconds']}")


if __name__ == "__main__":
    sys.exit(main())
