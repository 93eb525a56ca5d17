"""`make bench` at a small size, so the benchmarks cannot rot: each runs for real on the
local control plane, writes its JSON and plots, and every field it writes is documented
in docs/performance.md. The figures themselves are not judged here (noisy machines),
only what must hold at any size."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.perf import (
    bench_autoscaled,
    bench_availability,
    bench_extender,
    bench_pacing,
    bench_reclaim,
    bench_throughput,
    tables,
)

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "performance.md").read_text()

def keys_of(value, out: set[str]) -> set[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            out.add(key)
            keys_of(item, out)
    elif isinstance(value, list):
        for item in value:
            keys_of(item, out)
    return out


def assert_documented(report: dict) -> None:
    """Every field is in the doc's reference, and the doc's tables can be made from it."""
    assert "\n|---|" in getattr(tables, report["benchmark"])(report)
    documented = set(re.findall(r"`([^`\s]+)`", DOC))
    missing = sorted(keys_of(report, set()) - documented)
    assert not missing, f"fields written to {report['benchmark']}.json but not documented in docs/performance.md: {missing}"


def test_throughput(tmp_path):
    cases = [c.key for c in bench_throughput.CASES]
    assert bench_throughput.main(["--nodes=30", "--pods=60", "--replicas=10", "--timeout=120", "--rounds=2",
                                  f"--cases={','.join(cases)}", "--profile-seconds=1", f"--out-dir={tmp_path}"]) == 0
    report = json.loads((tmp_path / "throughput.json").read_text())
    by_case = {r["case"]: r for r in report["results"]}
    assert set(by_case) == {"a", "a0", "b", "c", "d", "e", "f", "fp"}
    assert all(r["complete"] and r["bound"] == 60 and r["pods_per_second"] > 0 for r in by_case.values())
    assert len(by_case["b"]["rounds_pods_per_second"]) == 2 and len(by_case["d"]["rounds_pods_per_second"]) == 1
    assert len(by_case["b"]["rollout_rounds_pods_per_second"]) == 2
    assert len(by_case["d"]["rollout_rounds_pods_per_second"]) == 1
    assert all(r["rollout_complete"] and r["rollout_pods_per_second"] > 0 for r in by_case.values())
    assert all(r["extender_skipped"] == 0 for r in by_case.values()), "an extender failed calls: rates would be bogus"
    assert {"b/a", "c/a", "d/a", "e/a", "f/a", "fp/a", "b/a0", "f/a0", "fp/f"} <= set(report["ratios"])
    assert {"b/a", "e/a", "f/a", "fp/a", "fp/f"} <= set(report["rollout_ratios"])
    assert all(r["cpu_seconds"]["kube-apiserver"] > 0 and r["rollout_cpu_seconds"]["kube-apiserver"] > 0
               for r in by_case.values())
    # kube-scheduler's own histogram counted an attempt per pod at least (its /metrics is open to the harness)
    assert all(r["scheduling_algorithm"]["attempts"] >= 60 and r["scheduling_algorithm"]["p99_ms"] > 0
               for r in by_case.values()), {k: r["scheduling_algorithm"] for k, r in by_case.items()}
    latency = {case: by_case[case]["extender_latency"] for case in ("b", "c", "e", "f", "fp")}
    for case in ("b", "c", "f"):  # kube-scheduler did call filter, once per pod at least
        assert latency[case]["filter"]["calls"] >= 60 and latency[case]["filter"]["p99_ms"] > 0
    # kube-apiserver called the webhook for every pod in e, f and fp; kube-scheduler called
    # no extender in e and only prioritize in fp
    for case in ("e", "f", "fp"):
        assert latency[case]["admission"]["calls"] >= 60, (case, latency[case])
    assert latency["e"]["filter"]["calls"] == latency["e"]["prioritize"]["calls"] == 0
    assert latency["fp"]["filter"]["calls"] == 0 and latency["fp"]["prioritize"]["calls"] >= 60
    # the extenders and the webhook keep one replica per Deployment on on-demand, the rest on spot
    assert by_case["d"]["spot_fraction"] >= 0.5
    assert all(by_case[case]["spot_fraction"] >= 0.8 for case in ("b", "e", "f", "fp"))
    # every case was profiled, each process with functions named
    for case, result in by_case.items():
        processes = {p["process"]: p for p in result["profiles"]}
        assert {"kube-scheduler", "kube-apiserver"} <= set(processes), (case, processes)
        for profile in processes.values():
            assert profile["top"] and not profile["top"][0]["function"].startswith("no profile"), (case, profile)
            assert (tmp_path / "profiles" / profile["file"]).stat().st_size > 0
    for case in ("b", "d", "e", "f"):  # sampled by py-spy
        assert {p["process"] for p in by_case[case]["profiles"]} & {"spot-extender", "baseline-extender"}, case
    assert (tmp_path / "throughput.png").stat().st_size > 10_000
    assert_documented(report)


def test_availability(tmp_path):
    assert bench_availability.main(["--workloads=small", "--notice=3", "--startup=1", "--settle=4",
                                    "--rebalance-interval=4", "--move-cooldown=1", "--return-timeout=60",
                                    f"--out-dir={tmp_path}"]) == 0
    report = json.loads((tmp_path / "availability.json").read_text())
    by_approach = {r["approach"]: r for r in report["results"]}
    ext, webhook, native = by_approach["spot-extender"], by_approach["webhook"], by_approach["native"]
    for run in (ext, webhook):
        for phase in ("pools_one_at_a_time", "all_at_once"):
            assert run[phase]["workloads_with_zero_ready"] == 0, (run["approach"], run[phase])
            assert run[phase]["workloads_below_floor"] == 0, (run["approach"], run[phase])
    # natively the single replica prefers spot, so losing every spot node leaves it with none
    assert native["all_at_once"]["workloads_with_zero_ready"] >= 1
    assert ext["seconds_to_steady_share_after_return"] is not None
    assert webhook["seconds_to_steady_share_after_return"] is not None
    assert (tmp_path / "availability.png").stat().st_size > 10_000
    assert_documented(report)


def test_reclaim(tmp_path):
    assert bench_reclaim.main(["--sizes=20", f"--out-dir={tmp_path}"]) == 0
    report = json.loads((tmp_path / "reclaim.json").read_text())
    result = report["results"][0]
    assert result["pods"] == 20 and result["all_evicted_seconds"] > 0 and result["reference_evict_seconds"] > 0
    assert_documented(report)


def test_extender_memory_and_latency(tmp_path):
    assert bench_extender.main(["--nodes=200", "--index-sizes=2000:100,6000:200", "--sizes=100", "--calls=20",
                                "--full-calls=5", "--churn-seconds=1", f"--out-dir={tmp_path}"]) == 0
    report = json.loads((tmp_path / "extender.json").read_text())
    assert [run["index"]["pods"] for run in report["runs"]] == [2000, 6000]
    for run in report["runs"]:
        assert run["rss_mb_after_load"] > 0 and len(run["results"]) == 7 and run["list_and_sync_seconds"] > 0
        assert {r["mode"] for r in run["results"]} == {"NodeNames", "Sliding", "Nodes", "AdmissionReview"}
        mutate = run["results"][-1]
        assert mutate["verb"] == "mutate" and mutate["calls"] == 20 and mutate["p99_ms"] > 0
        assert all(r["decode_ms"] > 0 and r["noop_ms"] > 0 for r in run["results"])
        events = run["watch_events"]
        # events went in while calls were answered, and each kind of event was among them
        assert events["with_calls"]["events"] > 0 and events["filter_during"]["calls"] > 0
        assert all(n > 0 for n in events["alone"]["by_type"].values())
    assert report["memory_growth"]["pods"] == [2000, 6000]
    assert_documented(report)


def test_pacing(tmp_path):
    assert bench_pacing.main(["--workloads=small", "--notice=30", "--startups=2", "--grace=5", "--settle=4",
                              f"--out-dir={tmp_path}"]) == 0
    report = json.loads((tmp_path / "pacing.json").read_text())
    by_mode = {r["mode"]: r for r in report["results"]}
    # Told the notice, the drain went in paced batches, each as earlier replacements turned
    # Ready; not told, it evicted everything as due at once.
    assert by_mode["paced"]["drain_waves"]["paced"] >= 2, by_mode["paced"]["drain_waves"]
    assert by_mode["at-once"]["drain_waves"]["paced"] == 0, by_mode["at-once"]["drain_waves"]
    floors = bench_availability.floors(bench_availability.SMALL)
    for result in report["results"]:
        for w in result["workloads"]:
            assert w["min_ready"] >= floors[w["name"]], (result["mode"], w)
    assert len(report["comparison"]) == len(bench_availability.SMALL)
    assert (tmp_path / "pacing.png").stat().st_size > 10_000
    assert_documented(report)


def test_autoscaled(tmp_path):
    assert bench_autoscaled.main(["--workloads=small", "--startup=1", "--settle=6", "--consolidate-after=5",
                                  "--rebalance-interval=3", "--move-cooldown=1", "--settle-timeout=240",
                                  f"--out-dir={tmp_path}"]) == 0
    report = json.loads((tmp_path / "autoscaled.json").read_text())
    by_approach = {r["approach"]: r for r in report["results"]}
    assert set(by_approach) == {"webhook", "capacity-spread", "native"}
    webhook = by_approach["webhook"]
    assert webhook["spot_lost_at_once"]["workloads_with_zero_ready"] == 0, webhook["spot_lost_at_once"]
    assert webhook["spot_lost_at_once"]["workloads_below_floor"] == 0, webhook["spot_lost_at_once"]
    assert webhook["spot_node_claims_deleted"] >= 1
    # natively the single replica prefers spot and Karpenter buys spot for it: losing spot leaves it with none
    assert by_approach["native"]["spot_lost_at_once"]["workloads_with_zero_ready"] >= 1
    for run in by_approach.values():
        assert run["steady"]["nodes"] >= 1 and run["steady"]["cost_per_hour"] > 0, run["steady"]
        assert run["cost_weighted_vcpu_hours"] > 0
    assert (tmp_path / "autoscaled.png").stat().st_size > 10_000
    assert_documented(report)
