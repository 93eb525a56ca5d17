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
    cycle = r.get("scheduling_algorithm") or {}
    return [r["case"], r["label"], r.get("rollout_pods_per_second"), rounds(r.get("rollout_rounds_pods_per_second")),
            r.get("pods_per_second"), rounds(r.get("rounds_pods_per_second")), backlog_bound(r),
            f"{r['spot_fraction']:.0%}" if "spot_fraction" in r else None, r.get("extender_skipped"),
            f"{cycle['mean_ms']} / {cycle['p99_ms']}" if cycle else None]


CPU_PROCESSES = ("kube-scheduler", "kube-apiserver", "etcd", "kube-controller-manager", "kwok", "spot-extender")


def cpu_row(r: dict, field: str, digits: int = 2) -> list:
    """CPU per process in the median round of one phase, then the total."""
    cpu = r.get(field) or {}
    named = [cpu.get(p, cpu.get("baseline-extender") if p == "spot-extender" else None) for p in CPU_PROCESSES]
    return [r["case"], *named, round(sum(cpu.values()), digits) if cpu else None]


def cpu_per_pod_row(r: dict, field: str, extra: dict) -> list:
    """CPU ms per pod bound per process, the total, and the total over case a's."""
    return [*cpu_row(r, field, 3), (extra.get(r["case"]) or {}).get("total")]


def profile_rows(report: dict, top: int = 4) -> list[list]:
    rows = []
    for r in report["results"]:
        for p in r.get("profiles", ()):
            rows.append([r["case"], p["process"], "; ".join(f"{f['function']} {f['self_percent']}%"
                                                             for f in p["top"][:top])])
    return rows


def throughput(report: dict) -> str:
    rows = [throughput_row(r) for r in report["results"]]
    latency = [[r["case"], verb, v["calls"], v["p50_ms"], v["p99_ms"]]
               for r in report["results"] for verb, v in r.get("extender_latency", {}).items() if v["calls"]]
    cpu_header = ["case", *CPU_PROCESSES, "total"]
    parts = [
        f"{report['nodes']} nodes, {report['pods']} pods in Deployments of {report['replicas_per_deployment']}.",
        table(["case", "what", "pods/s (rollout)", "rollout rounds", "pods/s (backlog)", "backlog rounds",
               "backlog bound", "on spot", "skipped calls", "scheduler ms to pick a node, mean / p99"], rows),
        "Ratios (rollout): " + ", ".join(f"{k} **{v}**" for k, v in report["rollout_ratios"].items()),
        "Ratios (backlog): " + ", ".join(f"{k} {v}" for k, v in report["ratios"].items()),
        "CPU seconds, median backlog round:",
        table(cpu_header, [cpu_row(r, "cpu_seconds") for r in report["results"]]),
        "CPU seconds, median rollout round:",
        table(cpu_header, [cpu_row(r, "rollout_cpu_seconds") for r in report["results"]]),
        "CPU ms per pod bound, median backlog round, and the total over case a's:",
        table([*cpu_header, "over a"], [cpu_per_pod_row(r, "cpu_ms_per_pod", report.get("extra_cpu_ms_per_pod", {}))
                                        for r in report["results"]]),
        "CPU ms per pod bound, median rollout round:",
        table([*cpu_header, "over a"], [cpu_per_pod_row(r, "rollout_cpu_ms_per_pod",
                                                        report.get("rollout_extra_cpu_ms_per_pod", {}))
                                        for r in report["results"]]),
        table(["case", "verb", "calls", "p50 ms", "p99 ms"], latency),
    ]
    if any("profiles" in r for r in report["results"]):
        parts += ["Self time, profiled backlog round (top functions):",
                  table(["case", "process", "functions"], profile_rows(report))]
    return "\n\n".join(parts)


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
        surge = runs.get((startup, "surge"), {})
        for name, w in (paced or at_once or surge).items():
            p, a, s = paced.get(name), at_once.get(name), surge.get(name)
            rows.append([f"{startup:g} s", name, w["replicas"], w["doomed"], w["pdb_allows"], w["bound"],
                         s and s["min_ready"], p and p["min_ready"], a and a["min_ready"],
                         s and s["replica_seconds_lost"], p and p["replica_seconds_lost"],
                         a and a["replica_seconds_lost"]])
    summary = [[f"{r['startup']:g} s", r["mode"], r["min_ready_total_fraction"], r["replica_seconds_lost"],
                r["seconds_to_all_ready_after_vanish"], r.get("surge", {}).get("pod_seconds")]
               for r in report["results"]]
    misses = [c for c in report["comparison"] if not (c["within_one_of_bound"] and c["not_worse_than_at_once"])]
    surges = [[f"{c['startup']:g} s", which, c[f"{prefix}surge_min_ready_total_fraction"],
               c[f"{prefix}paced_min_ready_total_fraction"], c[f"{prefix}min_ready_met"],
               c[f"{prefix}surge_replica_seconds_lost"], c[f"{prefix}paced_replica_seconds_lost"],
               c[f"{prefix}lost_over_paced"], c[f"{prefix}lost_met"], c["surge_pod_seconds"]]
              for c in report.get("surge_comparison", [])
              for prefix, which in (("", "all"), ("deployments_", "Deployments"))
              if f"{prefix}lost_met" in c]  # reports before Deployments were split out have one row
    return "\n\n".join([
        table(["start-up", "drain", "fewest ready / desired", "replica-seconds lost",
               "s to all ready after the nodes went", "surge pod-seconds"], summary),
        table(["start-up", "workloads", "surge fewest ready", "paced fewest ready", "100% met",
               "surge replica-s lost", "paced replica-s lost", "surge / paced", "under 5% met", "surge pod-seconds"],
              surges),
        table(["start-up", "workload", "R", "d", "PDB allows", "bound", "surge min ready", "paced min ready",
               "at-once min ready", "surge replica-s lost", "paced replica-s lost", "at-once replica-s lost"], rows),
        f"Workloads off target (below bound - 1, or worse than at once): {len(misses)} of {len(report['comparison'])}"
        + "".join(f"; {c['name']} at {c['startup']:g} s" for c in misses) + ".",
    ])


def reclaim(report: dict) -> str:
    return table(["pods", "first eviction s", "all evicted s", "pods/s", "reference s", "over reference"],
                 [[r["pods"], r["first_eviction_seconds"], r["all_evicted_seconds"], r["pods_per_second"],
                   r["reference_evict_seconds"], r["over_reference"]] for r in report["results"]])


def extender(report: dict) -> str:
    parts = []
    for run in report["runs"]:
        i, c, w = run["index"], run["controller"], run["watch_events"]
        rows = [[r["verb"], r["mode"], r["candidates"], r["p50_ms"], r["p99_ms"], r["decode_ms"], r["p99_over_decode"],
                 r["noop_ms"], r["p99_over_noop"]] for r in run["results"]]
        parts += [
            f"{i['nodes']} nodes, {i['pods']} pods of {i['workloads']} Deployments:",
            table(["verb", "mode", "candidates", "p50 ms", "p99 ms", "decode ms", "p99 / decode", "no-op ms",
                   "p99 / no-op"], rows),
            f"List-and-sync {run['list_and_sync_seconds']} s. RSS {run['rss_mb_after_load']} MB loaded, "
            f"{run['rss_mb_peak']} MB peak. Controller pass: rebalance {c['rebalance']['pass_ms']} ms (longest stall "
            f"{c['rebalance']['longest_stall_ms']} ms), costs {c['costs']['pass_ms']} ms (longest stall "
            f"{c['costs']['longest_stall_ms']} ms)."
            + (f" Pod watch events absorbed: {w['alone']['events_per_second']}/s alone, "
               f"{w['with_calls']['events_per_second']}/s while answering "
               f"{w['filter_during']['calls']} filter calls at {w['filter_during']['candidates']} candidates "
               f"(their p50 {w['filter_during']['p50_ms']} ms, p99 {w['filter_during']['p99_ms']} ms"
               + (f", {w['during_over_alone_p99']} times the p99 of the same call alone" if "during_over_alone_p99" in w
                  else "") + ")."
               + (f" With the watch loop as before issue 30 (unsliced): p99 {w['filter_during_unsliced']['p99_ms']} "
                  f"ms, {w['unsliced_during_over_alone_p99']} times." if "filter_during_unsliced" in w else "")
               if w else ""),
        ]
    if "memory_growth" in report:
        g = report["memory_growth"]
        parts.append(f"Memory from {g['pods'][0]} to {g['pods'][1]} pods: {g['rss_mb_after_load'][0]} -> "
                     f"{g['rss_mb_after_load'][1]} MB, {g['mb_per_10k_pods']} MB per 10,000 pods; RSS ratio over pod "
                     f"ratio {g['rss_ratio_over_pods_ratio']} (1.0 is linear).")
    return "\n\n".join(parts)


def burst(report: dict) -> str:
    rows = [[r["case"], r["label"], r.get("apiserver_p50_ms"), r.get("apiserver_p99_ms"),
             r.get("apiserver_share_under_5ms"), r.get("apiserver_share_under_25ms"), r.get("extender_p50_ms"),
             r.get("extender_p99_ms"), r.get("transport_p99_ms"), r.get("loop_lag_p99_ms"), r.get("loop_lag_max_ms"),
             r.get("failed_open_total"), r.get("ready_p50_ms"), r.get("ready_p99_ms"), r.get("ready_p99_over_none"),
             r.get("extender_cpu_seconds")] for r in report["results"]]
    return "\n\n".join([
        f"{report['pods_per_burst']} pods a burst ({report['settings']['deployments']} Deployments created at once), "
        f"{report['settings']['nodes']} nodes; the median of {report['settings']['rounds']} rounds.",
        table(["case", "what", "webhook p50 ms (kube-apiserver)", "p99 ms", "share under 5 ms", "share under 25 ms",
               "own p50 ms", "own p99 ms", "transport p99 ms", "loop lag p99 ms", "loop lag max ms", "failed open",
               "creation to Ready p50 ms", "p99 ms", "p99 over none", "spot-extender CPU s"], rows),
    ])


def http_stack(report: dict) -> str:
    rows = [[r["stack"], r["path"], r["server_cpu_us"], r["handler_cpu_us"], r["stack_cpu_us"], r["cpu_over_aiohttp"],
             r["p50_us"], r["p99_us"]] for r in report["results"]]
    s = report["settings"]
    return "\n\n".join([
        f"{s['calls']} keep-alive calls per path and stack, filter and prioritize at {s['candidates']} NodeNames "
        f"candidates, an index of {s['pods']} pods on {s['nodes']} nodes; the median of {s['rounds']} rounds.",
        table(["stack", "path", "server CPU us per call", "handler alone us", "stack us", "CPU over aiohttp",
               "p50 us", "p99 us"], rows),
    ])


def main() -> int:
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT_DIR
    for name, render in (("throughput", throughput), ("availability", availability), ("pacing", pacing),
                         ("autoscaled", autoscaled), ("reclaim", reclaim),
                         ("extender", extender), ("burst", burst),
                         ("http_stack", http_stack)):
        path = directory / f"{name}.json"
        if path.exists():
            report = json.loads(path.read_text())
            print(f"## {name}\n\n{render(report)}\n\nenvironment: {report['environment']}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
