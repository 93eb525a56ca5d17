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
    bench_burst,
    bench_extender,
    bench_http_stack,
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


# Each benchmark runs once with every part of its code, not every configuration make bench
# compares: the smoke proves the benchmarks still run, in a few minutes (issue 28).


PODS = 30


def test_throughput(tmp_path):
    # a0, c and fp differ from a, b and f only in kube-scheduler's configuration.
    # 30 pods: the baseline extender (d) binds about 8 a second. One case profiled: every
    # process is sampled the same way in each.
    assert bench_throughput.main(["--nodes=30", f"--pods={PODS}", "--replicas=10", "--timeout=120", "--rounds=1",
                                  "--cases=a,b,e,f,d", "--profile-seconds=1", "--profile-cases=b",
                                  f"--out-dir={tmp_path}"]) == 0
    report = json.loads((tmp_path / "throughput.json").read_text())
    by_case = {r["case"]: r for r in report["results"]}
    assert set(by_case) == {"a", "b", "d", "e", "f"}
    assert all(r["complete"] and r["bound"] == PODS and r["pods_per_second"] > 0 for r in by_case.values())
    assert all(len(r["rounds_pods_per_second"]) == len(r["rollout_rounds_pods_per_second"]) == 1
               for r in by_case.values())
    assert all(r["rollout_complete"] and r["rollout_pods_per_second"] > 0 for r in by_case.values())
    assert all(r["extender_skipped"] == 0 for r in by_case.values()), "an extender failed calls: rates would be bogus"
    assert {"b/a", "d/a", "e/a", "f/a"} <= set(report["ratios"]) and "fp/f" not in report["ratios"]
    assert {"b/a", "e/a", "f/a"} <= set(report["rollout_ratios"])
    assert all(r["cpu_seconds"]["kube-apiserver"] > 0 and r["rollout_cpu_seconds"]["kube-apiserver"] > 0
               for r in by_case.values())
    # kube-scheduler's own histogram counted an attempt per pod at least (its /metrics is open to the harness)
    assert all(r["scheduling_algorithm"]["attempts"] >= PODS and r["scheduling_algorithm"]["p99_ms"] > 0
               for r in by_case.values()), {k: r["scheduling_algorithm"] for k, r in by_case.items()}
    latency = {case: by_case[case]["extender_latency"] for case in ("b", "e", "f")}
    for case in ("b", "f"):  # kube-scheduler did call filter, once per pod at least
        assert latency[case]["filter"]["calls"] >= PODS and latency[case]["filter"]["p99_ms"] > 0
    # kube-apiserver called the webhook for every pod in e and f; kube-scheduler called no extender in e
    for case in ("e", "f"):
        assert latency[case]["admission"]["calls"] >= PODS, (case, latency[case])
    assert latency["e"]["filter"]["calls"] == latency["e"]["prioritize"]["calls"] == 0
    # the extenders and the webhook keep one replica per Deployment on on-demand, the rest on spot
    assert by_case["d"]["spot_fraction"] >= 0.5
    assert all(by_case[case]["spot_fraction"] >= 0.8 for case in ("b", "e", "f"))
    # the cases asked for were profiled, each process with functions named, and no other
    assert {case for case, result in by_case.items() if "profiles" in result} == {"b"}
    for case in ("b",):
        result = by_case[case]
        processes = {p["process"]: p for p in result["profiles"]}
        assert {"kube-scheduler", "kube-apiserver"} <= set(processes), (case, processes)
        for profile in processes.values():
            assert profile["top"] and not profile["top"][0]["function"].startswith("no profile"), (case, profile)
            assert (tmp_path / "profiles" / profile["file"]).stat().st_size > 0
    assert "spot-extender" in {p["process"] for p in by_case["b"]["profiles"]}  # sampled by py-spy
    assert (tmp_path / "throughput.png").stat().st_size > 10_000
    assert_documented(report)


def test_burst(tmp_path):
    # Case f differs from e in kube-scheduler's configuration only (test_throughput runs it), pg
    # from pn and gn from gn1 in a flag: the before arm and one reference of each language run.
    assert bench_burst.main(["--nodes=20", "--deployments=2", "--pods=10", "--rounds=1", "--cases=none,e,e0,pn,gn1",
                             f"--out-dir={tmp_path}"]) == 0
    report = json.loads((tmp_path / "burst.json").read_text())
    by_case = {r["case"]: r for r in report["results"]}
    assert set(by_case) == {"none", "e", "e0", "pn", "gn1"}
    assert all(r["rounds"][0]["pods_ready"] == 20 for r in by_case.values())
    webhook = by_case["e"]
    # kube-apiserver timed a call to our webhook for every pod, and none failed open
    assert webhook["apiserver_admissions"] >= 20 and webhook["failed_open_total"] == 0, webhook
    assert webhook["extender_p99_ms"] > 0 and webhook["apiserver_p99_ms"] > 0
    lag = webhook["rounds"][0]["loop_lag"]  # the process's own timer ran through the burst
    assert lag["samples"] > 0 and lag["max_ms"] is not None and lag["p99_ms"] is not None, lag
    assert webhook["ready_p99_over_none"] > 0
    for case in ("e0", "pn", "gn1"):  # the before arm and the references answered every pod too
        assert by_case[case]["apiserver_admissions"] >= 20 and by_case[case]["failed_open_total"] == 0, case
    assert by_case["pn"]["rounds"][0]["loop_lag"]["samples"] > 0  # the reference on our stack runs the timer too
    assert_documented(report)


def test_http_stack(tmp_path):
    assert bench_http_stack.main(["--nodes=50", "--pods=200", "--candidates=20", "--calls=30", "--rounds=1",
                                  f"--out-dir={tmp_path}"]) == 0
    report = json.loads((tmp_path / "http_stack.json").read_text())
    rows = {(r["stack"], r["path"]) for r in report["results"]}
    assert rows == {(s, p) for s in bench_http_stack.STACKS for p in bench_http_stack.PATHS}
    # every stack answered every path (a non-200 ends the run), and the handlers did work
    assert report["handler_cpu_us"]["/filter"] > 0 and report["handler_cpu_us"]["/mutate"] > 0
    assert all(r["p50_us"] > 0 for r in report["results"])
    assert_documented(report)


def test_availability(tmp_path):
    # The webhook and native approaches differ in flags and manifests only (the webhook's run
    # in test_autoscaled; native's manifests are checked below).
    assert bench_availability.main(["--workloads=small", "--notice=3", "--startup=1", "--settle=3",
                                    "--rebalance-interval=4", "--move-cooldown=1", "--return-timeout=60",
                                    "--pools-one-at-a-time=1", "--approaches=spot-extender",
                                    f"--out-dir={tmp_path}"]) == 0
    report = json.loads((tmp_path / "availability.json").read_text())
    (ext,) = report["results"]
    assert ext["approach"] == "spot-extender"
    for phase in ("pools_one_at_a_time", "all_at_once"):
        assert ext[phase]["workloads_with_zero_ready"] == 0, ext[phase]
        assert ext[phase]["workloads_below_floor"] == 0, ext[phase]
    assert ext["seconds_to_steady_share_after_return"] is not None
    assert [e["event"] for e in ext["events"]].count("vanished") == 2  # one pool, then all at once
    # the native approach's pods prefer spot and tolerate its taints; spot-extender's carry nothing
    native = bench_availability.manifests(bench_availability.SMALL, native=True)
    plain = bench_availability.manifests(bench_availability.SMALL, native=False)
    templates = [m["spec"]["template"]["spec"] for m in native if "template" in m.get("spec", {})]
    assert templates and all(t["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
                             and t["tolerations"] for t in templates)
    assert not any("affinity" in m["spec"]["template"]["spec"] for m in plain if "template" in m.get("spec", {}))
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
    # The at-once arm is the paced one with --drain-notice empty: the smoke leaves it out,
    # and tests/e2e covers a drain without a notice.
    assert bench_pacing.main(["--workloads=small", "--notice=9", "--startups=2", "--grace=1", "--margin=1", "--settle=3",
                              "--modes=paced,surge", f"--out-dir={tmp_path}"]) == 0
    report = json.loads((tmp_path / "pacing.json").read_text())
    by_mode = {r["mode"]: r for r in report["results"]}
    assert set(by_mode) == {"paced", "surge"}
    # Told the notice, the drain went in paced batches, each as earlier replacements turned Ready.
    assert by_mode["paced"]["drain_waves"]["paced"] >= 2, by_mode["paced"]["drain_waves"]
    # With --surge=all every Deployment with a replica on spot surged, and no surge is left.
    surge = by_mode["surge"]["surge"]
    assert surge["started"] >= 1 and surge["failed"] == 0, surge
    assert surge["completed"] + surge["abandoned"] == surge["started"], surge
    assert report["surge_comparison"] and report["surge_comparison"][0]["surge_pod_seconds"] > 0
    assert "deployments_lost_met" in report["surge_comparison"][0]  # StatefulSets never surge: both scopes
    floors = bench_availability.floors(bench_availability.SMALL)
    for result in report["results"]:
        for w in result["workloads"]:
            assert w["min_ready"] >= floors[w["name"]], (result["mode"], w)
    assert report["comparison"] == []  # paced against at-once: no at-once arm here
    assert (tmp_path / "pacing.png").stat().st_size > 10_000
    assert_documented(report)


def test_autoscaled(tmp_path):
    assert bench_autoscaled.main(["--workloads=small", "--startup=1", "--settle=6", "--consolidate-after=5",
                                  "--rebalance-interval=3", "--move-cooldown=1", "--settle-timeout=240",
                                  "--approaches=webhook",
                                  f"--out-dir={tmp_path}"]) == 0
    report = json.loads((tmp_path / "autoscaled.json").read_text())
    by_approach = {r["approach"]: r for r in report["results"]}
    # capacity-spread and native differ from the webhook run in their manifests and flags only
    assert set(by_approach) == {"webhook"}
    webhook = by_approach["webhook"]
    assert webhook["spot_lost_at_once"]["workloads_with_zero_ready"] == 0, webhook["spot_lost_at_once"]
    assert webhook["spot_lost_at_once"]["workloads_below_floor"] == 0, webhook["spot_lost_at_once"]
    assert webhook["spot_node_claims_deleted"] >= 1
    assert webhook["steady"]["nodes"] >= 1 and webhook["steady"]["cost_per_hour"] > 0, webhook["steady"]
    assert webhook["cost_weighted_vcpu_hours"] > 0
    assert (tmp_path / "autoscaled.png").stat().st_size > 10_000
    assert_documented(report)
