"""Markdown tables from build/bench/*.json, for docs/performance.md: figures are pasted
from a run, never typed. `python -m tests.perf.tables [DIR]`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.perf.report import OUT_DIR


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("-" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def rounds(rates: list | None) -> str | None:
    return " / ".join(str(r) for r in rates) if rates else None


def backlog_bound(result: dict) -> str | None:
    """Pods bound in the median backlog round; None for a run without that phase."""
    if "bound" not in result:
        return None
    return ("" if result["complete"] else "cut, ") + f"{result['bound']} pods"


def throughput_row(r: dict) -> list:
    cpu = r.get("cpu_seconds", {})  # backlog only
    return [r["case"], r["label"], r.get("rollout_pods_per_second"), rounds(r.get("rollout_rounds_pods_per_second")),
            r.get("pods_per_second"), rounds(r.get("rounds_pods_per_second")), backlog_bound(r),
            f"{r['spot_fraction']:.0%}" if "spot_fraction" in r else None, r.get("extender_skipped"),
            cpu.get("kube-scheduler"), cpu.get("spot-extender", cpu.get("baseline-extender"))]


def throughput(report: dict) -> str:
    rows = [throughput_row(r) for r in report["results"]]
    latency = [[r["case"], verb, v["calls"], v["p50_ms"], v["p99_ms"]]
               for r in report["results"] for verb, v in r.get("extender_latency", {}).items()]
    return "\n\n".join([
        f"{report['nodes']} nodes, {report['pods']} pods in Deployments of {report['replicas_per_deployment']}.",
        table(["case", "what", "pods/s (rollout)", "rollout rounds", "pods/s (backlog)", "backlog rounds",
               "backlog bound", "on spot", "skipped calls", "scheduler CPU s", "extender CPU s"], rows),
        "Ratios (rollout): " + ", ".join(f"{k} **{v}**" for k, v in report["rollout_ratios"].items()),
        "Ratios (backlog): " + ", ".join(f"{k} {v}" for k, v in report["ratios"].items()),
        table(["case", "verb", "calls", "p50 ms", "p99 ms"], latency),
    ])


def availability(report: dict) -> str:
    rows = []
    for r in report["results"]:
        for phase in ("pools_one_at_a_time", "all_at_once"):
            p = r[phase]
            rows.append([r["approach"], phase.replace("_", " "), p["workloads_with_zero_ready"],
                         p["workloads_below_floor"], p["replica_seconds_lost"]])
    summary = [[r["approach"], r["steady_spot_share"], r["steady_on_spot"], r["spot_share_before_all_at_once"],
                r["all_at_once"]["seconds_to_all_ready"], r["seconds_to_steady_share_after_return"],
                r.get("spot_share_after_return")] for r in report["results"]]
    replicas = sum(w["replicas"] for w in report["workloads"])
    return "\n\n".join([
        f"{len(report['workloads'])} workloads, {replicas} replicas, sum(R - k) = {report['spot_room']}.",
        table(["approach", "steady spot share", "on spot", "share before all-at-once", "s to all ready",
               "s back to steady share", "share at the end"], summary),
        table(["approach", "phase", "workloads with 0 ready", "workloads below floor", "replica-seconds lost"], rows),
    ])


def autoscaled(report: dict) -> str:
    rows = []
    for r in report["results"]:
        s, p = r["steady"], r["spot_lost_at_once"]
        rows.append([r["approach"], s["spot_share"], s["nodes"], f"{s['spot_vcpus']} / {s['on_demand_vcpus']}",
                     s["cost_per_hour"], p["workloads_with_zero_ready"], p["workloads_below_floor"],
                     p["replica_seconds_lost"], p["seconds_to_all_ready"], r["after"]["spot_share"],
                     r["after"]["cost_per_hour"], r["cost_weighted_vcpu_hours"]])
    replicas = sum(w["replicas"] for w in report["workloads"])
    return "\n\n".join([
        f"{len(report['workloads'])} workloads, {replicas} replicas, sum(R - k) = {report['spot_room']}; "
        f"cost weights spot {report['prices']['spot']} and on-demand {report['prices']['on-demand']} per vCPU-hour.",
        table(["approach", "steady spot share", "nodes", "vCPUs spot / on-demand", "cost per hour",
               "workloads with 0 ready", "workloads below floor", "replica-seconds lost", "s to all ready",
               "spot share after", "cost per hour after", "cost over the run"], rows),
    ])


def pacing(report: dict) -> str:
    runs = {(r["startup"], r["mode"]): {w["name"]: w for w in r["workloads"]} for r in report["results"]}
    rows = []
    for startup in sorted({r["startup"] for r in report["results"]}):
        paced, at_once = runs.get((startup, "paced"), {}), runs.get((startup, "at-once"), {})
        for name, w in (paced or at_once).items():
            p, a = paced.get(name), at_once.get(name)
            rows.append([f"{startup:g} s", name, w["replicas"], w["doomed"], w["pdb_allows"], w["bound"],
                         p and p["min_ready"], a and a["min_ready"],
                         p and p["replica_seconds_lost"], a and a["replica_seconds_lost"]])
    summary = [[f"{r['startup']:g} s", r["mode"], r["min_ready_total_fraction"], r["replica_seconds_lost"],
                r["seconds_to_all_ready_after_vanish"]] for r in report["results"]]
    misses = [c for c in report["comparison"] if not (c["within_one_of_bound"] and c["not_worse_than_at_once"])]
    return "\n\n".join([
        table(["start-up", "drain", "fewest ready / desired", "replica-seconds lost", "s to all ready after the nodes went"],
              summary),
        table(["start-up", "workload", "R", "d", "PDB allows", "bound", "paced min ready", "at-once min ready",
               "paced replica-s lost", "at-once replica-s lost"], rows),
        f"Workloads off target (below bound - 1, or worse than at once): {len(misses)} of {len(report['comparison'])}"
        + "".join(f"; {c['name']} at {c['startup']:g} s" for c in misses) + ".",
    ])


def reclaim(report: dict) -> str:
    return table(["pods", "first eviction s", "all evicted s", "pods/s"],
                 [[r["pods"], r["first_eviction_seconds"], r["all_evicted_seconds"], r["pods_per_second"]]
                  for r in report["results"]])


def extender(report: dict) -> str:
    rows = [[r["verb"], r["mode"], r["candidates"], r["p50_ms"], r["p99_ms"]] for r in report["results"]]
    c = report["controller"]
    return "\n\n".join([
        table(["verb", "mode", "candidates", "p50 ms", "p99 ms"], rows),
        f"RSS {report['rss_mb_after_load']} MB loaded, {report['rss_mb_peak']} MB peak "
        f"({report['index']['nodes']} nodes, {report['index']['pods']} pods). Controller pass: rebalance "
        f"{c['rebalance']['pass_ms']} ms (longest stall {c['rebalance']['longest_stall_ms']} ms), "
        f"costs {c['costs']['pass_ms']} ms (longest stall {c['costs']['longest_stall_ms']} ms).",
    ])


def main() -> int:
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT_DIR
    for name, render in (("throughput", throughput), ("availability", availability), ("pacing", pacing),
                         ("autoscaled", autoscaled), ("reclaim", reclaim),
                         ("extender", extender)):
        path = directory / f"{name}.json"
        if path.exists():
            report = json.loads(path.read_text())
            print(f"## {name}\n\n{render(report)}\n\nenvironment: {report['environment']}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
