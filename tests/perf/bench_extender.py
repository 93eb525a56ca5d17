"""Benchmark: extender service time over loopback HTTP, its memory, and how fast its index
takes in a list and watch events.

For each index size (--index-sizes, pods:workloads over --nodes nodes; by default 50,000
pods in 2500 Deployments and the Kubernetes scalability envelope, 150,000 pods in 10,000
Deployments, both over 5000 nodes), starts the real extender app in a child process that
lists the synthetic cluster in through its Reflector, with objects the size the API
server sends. Then it times filter and prioritize calls for 100, 1000 and 5000
candidate nodes in NodeNames mode (the same list every call, as kube-scheduler sends it when
it scores every node), over a window that moves on every call (as its default sampling
sends), and in full Nodes mode, and the admission webhook's answers to
pod AdmissionReviews (a pod of a workload the index holds; most become spot pods, the
first of each workload a floor pod). Each cell also times two references in the same run:
orjson decoding its own request bodies in this process, and a round trip of GET /healthz,
which does no work. A latency over a reference holds from one machine to the next where
milliseconds do not. Last, pod watch events go into
the index as fast as it takes them, alone and while filter calls at 5000 candidates are
answered (one core). Also reports what one controller pass over the index costs. Prints
tables and writes build/bench/extender.json. Figures, not assertions: the machine is
shared and noisy.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson

from tests.helpers import objects as o
from tests.helpers.ports import free_port
from tests.perf.report import OUT_DIR, publish
from tests.perf.synthetic import SPOT_SHARE, node_names

ROOT = Path(__file__).resolve().parents[2]


def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) in MB, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bodies(names: list[str], full: bool, spot_cut: int) -> list[bytes]:
    """Two pods: one of a workload whose floor is met (spot path), one whose is not."""
    met = o.pod("app-00001-1-x", owner=("ReplicaSet", "app-00001-1"), labels={"app": "app-00001"})
    unmet = o.pod("fresh-1-x", owner=("ReplicaSet", "fresh-1"), labels={"app": "fresh"})
    out = []
    for pod in (met, unmet):
        if full:
            # the same classes the server's synthetic index gives these names
            items = [o.node(n, "spot" if int(n[5:]) < spot_cut else "on-demand") for n in names]
            out.append(orjson.dumps({"Pod": pod, "Nodes": {"metadata": {}, "items": items}}))
        else:
            out.append(orjson.dumps({"Pod": pod, "NodeNames": names}))
    return out


def sliding_bodies(all_names: list[str], size: int, spot_cut: int, windows: int = 50) -> list[bytes]:
    """The two pods of `bodies`, each over windows of `size` nodes that start further on every
    time, as kube-scheduler's default sampling sends them (it resumes where the last pod's
    search ended): no two calls in a row carry the same list."""
    step = max(len(all_names) // windows, 1)
    out = []
    for w in range(windows):
        start = (w * step) % len(all_names)
        names = (all_names[start:] + all_names[:start])[:size]
        out.append(bodies(names, False, spot_cut)[w % 2])
    return out


def reviews() -> list[bytes]:
    """AdmissionReviews for pods of two indexed workloads, as kube-apiserver sends them."""
    out = []
    for app in ("app-00001", "app-00002"):
        pod = o.pod("", owner=("ReplicaSet", f"{app}-1"), labels={"app": app, "pod-template-hash": f"{app}-1"})
        del pod["metadata"]["name"], pod["metadata"]["uid"]
        out.append(orjson.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": f"bench-{app}", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
            "namespace": "default", "object": pod}}))
    return out


def decode_ms(payloads: list[bytes], rounds: int = 50) -> float:
    """Median time to decode one of these bodies with orjson, in this process: the reference."""
    samples = []
    for i in range(rounds):
        body = payloads[i % len(payloads)]
        started = time.perf_counter()
        orjson.loads(body)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def noop_ms(port: int, rounds: int = 50) -> float:
    """Median round trip of GET /healthz, which does no work: loopback HTTP and aiohttp on
    this machine at this moment, the other reference."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        samples.append((time.perf_counter() - started) * 1000)
    conn.close()
    return statistics.median(samples)


def row(verb: str, mode: str, candidates: int, payloads: list[bytes], samples: list[float], port: int) -> dict:
    reference, noop = decode_ms(payloads), noop_ms(port)
    p50, p99 = statistics.median(samples), percentile(samples, 0.99)
    return {
        "verb": verb,
        "mode": mode,
        "candidates": candidates,
        "calls": len(samples),
        "request_bytes": max(len(p) for p in payloads),
        "p50_ms": round(p50, 3),
        "p99_ms": round(p99, 3),
        "max_ms": round(max(samples), 3),
        "decode_ms": round(reference, 4),
        "p50_over_decode": round(p50 / reference, 1),
        "p99_over_decode": round(p99 / reference, 1),
        "noop_ms": round(noop, 3),
        "p99_over_noop": round(p99 / noop, 2),
    }


def measure(port: int, path: str, payloads: list[bytes], calls: int, seconds: float = 0.0) -> list[float]:
    """Round trips in ms: `calls` of them, or as many as fit in `seconds` if that is set."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    samples = []
    deadline = None
    i = 0
    while deadline is None or time.perf_counter() < deadline:
        if deadline is None and i >= calls + 3:
            break
        body = payloads[i % len(payloads)]
        started = time.perf_counter()
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise SystemExit(f"{path} answered {response.status}")
        if i >= 3:  # the first calls warm up the connection and caches
            samples.append(elapsed * 1000)
        elif i == 2 and seconds:
            deadline = time.perf_counter() + seconds
        i += 1
    conn.close()
    return samples


def churn(port: int, seconds: float, unsliced: bool = False) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=seconds + 60)
    conn.request("POST", f"/bench/churn?seconds={seconds}" + ("&unsliced=1" if unsliced else ""))
    response = conn.getresponse()
    body = response.read()
    conn.close()
    if response.status != 200:
        raise SystemExit(f"/bench/churn answered {response.status}")
    return orjson.loads(body)


def absorb(port: int, seconds: float, payloads: list[bytes]) -> dict:
    """Watch events per second into the index: alone, then while filter calls keep coming,
    then the same with the watch loop as it was before issue 30 (unsliced)."""
    alone = churn(port, seconds)
    print(f"    {alone['events_per_second']} pod events/s alone", flush=True)
    out = {"seconds": seconds, "alone": alone}
    candidates = len(orjson.loads(payloads[0])["NodeNames"])
    for suffix, unsliced in (("", False), ("_unsliced", True)):
        during: dict = {}
        thread = threading.Thread(target=lambda: during.update(churn(port, seconds, unsliced)))
        thread.start()
        time.sleep(0.2)  # the churn has begun
        samples = measure(port, "/filter", payloads, 0, seconds=seconds - 0.5)
        thread.join()
        print(f"    {during['events_per_second']} pod events/s{' unsliced' if unsliced else ''} while answering "
              f"{len(samples)} filter calls", flush=True)
        out[f"with_calls{suffix}"] = during
        out[f"filter_during{suffix}"] = row("filter", "NodeNames", candidates, payloads, samples, port)
    return out


def start_server(nodes: int, pods: int, workloads: int, port: int) -> tuple[subprocess.Popen, dict]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.perf.extender_server", "--nodes", str(nodes), "--pods", str(pods),
         "--workloads", str(workloads), "--port", str(port), "--churn-route"],
        stdout=subprocess.PIPE, env=env, cwd=ROOT,
    )
    first = server.stdout.readline().decode()
    if not first.startswith("loaded ") or server.stdout.readline().strip() != b"ready":
        server.kill()
        raise SystemExit("extender did not start")
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return server, orjson.loads(first.split(" ", 1)[1])


def run_index(args, nodes: int, pods: int, workloads: int) -> dict:
    port = free_port()
    print(f"==> extender listing {nodes} nodes and {pods} pods of {workloads} Deployments", flush=True)
    started = time.perf_counter()
    server, loaded = start_server(nodes, pods, workloads, port)
    try:
        start_seconds = time.perf_counter() - started
        rss_loaded, _ = rss_mb(server.pid)
        print(f"    listed and synced in {loaded['list_and_sync_seconds']}s (pages made in "
              f"{loaded['page_encode_seconds']}s, not counted), RSS {rss_loaded:.0f} MB", flush=True)
        print(f"    controller passes over the index (dry run): {loaded['controller']}", flush=True)
        rng = random.Random(1)
        all_names = node_names(nodes)
        rows = []
        largest = None
        for size in [int(s) for s in args.sizes.split(",")]:
            names = rng.sample(all_names, min(size, len(all_names)))
            modes = (("NodeNames", False, args.calls), ("Sliding", False, args.calls), ("Nodes", True, args.full_calls))
            for mode, full, calls in [m for m in modes if m[0] in args.modes.split(",")]:
                if mode == "Sliding":
                    payloads = sliding_bodies(all_names, size, int(nodes * SPOT_SHARE))
                else:
                    payloads = bodies(names, full, int(nodes * SPOT_SHARE))
                largest = payloads if mode == "NodeNames" else largest
                for verb in ("filter", "prioritize"):
                    print(f"==> {verb} {mode} {size} nodes x {calls} calls", flush=True)
                    samples = measure(port, f"/{verb}", payloads, calls)
                    rows.append(row(verb, mode, len(names), payloads, samples, port))
        print(f"==> mutate (admission webhook) x {args.calls} calls", flush=True)
        payloads = reviews()
        rows.append(row("mutate", "AdmissionReview", 0, payloads, measure(port, "/mutate", payloads, args.calls), port))
        print(f"==> pod watch events into the index, {args.churn_seconds}s alone and {args.churn_seconds}s with calls",
              flush=True)
        events = absorb(port, args.churn_seconds, largest) if largest else None
        # the same call with no events flowing: the filter cell of the same NodeNames payloads
        alone = next((r for r in rows if r["verb"] == "filter" and r["mode"] == "NodeNames"
                      and r["candidates"] == (events or {}).get("filter_during", {}).get("candidates")), None)
        if events and alone and alone["p99_ms"]:
            events["filter_alone_p99_ms"] = alone["p99_ms"]
            events["during_over_alone_p99"] = round(events["filter_during"]["p99_ms"] / alone["p99_ms"], 2)
            events["unsliced_during_over_alone_p99"] = round(events["filter_during_unsliced"]["p99_ms"]
                                                             / alone["p99_ms"], 2)
        rss_now, rss_peak = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {
        "index": {"nodes": nodes, "pods": pods, "workloads": workloads},
        "index_load_seconds": round(start_seconds, 2),
        "list_and_sync_seconds": loaded["list_and_sync_seconds"],
        "page_encode_seconds": loaded["page_encode_seconds"],
        "rss_mb_after_load": round(rss_loaded, 1),
        "rss_mb_after_run": round(rss_now, 1),
        "rss_mb_peak": round(rss_peak, 1),
        "controller": loaded["controller"],
        "results": rows,
        "watch_events": events,
    }


def print_run(run: dict) -> None:
    index = run["index"]
    print(f"\n{index['nodes']} nodes, {index['pods']} pods, {index['workloads']} workloads")
    print(f"{'verb':<11}{'mode':<16}{'nodes':>6}{'calls':>7}{'req KB':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'decode ms':>11}{'p99/decode':>12}{'noop ms':>9}{'p99/noop':>10}")
    for r in run["results"]:
        print(
            f"{r['verb']:<11}{r['mode']:<16}{r['candidates']:>6}{r['calls']:>7}{r['request_bytes'] / 1024:>9.0f}"
            f"{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}{r['max_ms']:>9.3f}{r['decode_ms']:>11.4f}{r['p99_over_decode']:>12}"
            f"{r['noop_ms']:>9.3f}{r['p99_over_noop']:>10}"
        )
    print(f"list-and-sync {run['list_and_sync_seconds']} s; RSS after load {run['rss_mb_after_load']:.0f} MB, "
          f"after run {run['rss_mb_after_run']:.0f} MB, peak {run['rss_mb_peak']:.0f} MB")
    if run["watch_events"]:
        w = run["watch_events"]
        print(f"pod events/s: {w['alone']['events_per_second']} alone, {w['with_calls']['events_per_second']} while "
              f"answering filter calls (p99 {w['filter_during']['p99_ms']} ms, {w.get('during_over_alone_p99')} "
              f"times the same call alone; unsliced {w.get('unsliced_during_over_alone_p99')} times)")


def index_sizes(text: str) -> list[tuple[int, int]]:
    try:
        sizes = [tuple(int(x) for x in part.split(":")) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"index sizes {text!r}: want pods:workloads[,pods:workloads...]") from None
    if not all(len(s) == 2 and s[0] > 0 and 0 < s[1] <= s[0] for s in sizes):
        raise argparse.ArgumentTypeError(f"index sizes {text!r}: each pods:workloads, 0 < workloads <= pods")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--index-sizes", type=index_sizes, default=index_sizes("50000:2500,150000:10000"),
                        help="pods:workloads per run, comma-separated")
    parser.add_argument("--sizes", default="100,1000,5000", help="candidate nodes per call")
    parser.add_argument("--calls", type=int, default=400, help="calls per cell in NodeNames mode")
    parser.add_argument("--full-calls", type=int, default=40, help="calls per cell in full Nodes mode")
    parser.add_argument("--modes", default="NodeNames,Sliding,Nodes",
                        help="NodeNames: the same list every call; Sliding: a moving window; Nodes: full Node objects")
    parser.add_argument("--churn-seconds", type=float, default=5.0, help="watch events fed, alone and with calls")
    parser.add_argument("--out-dir", default=str(OUT_DIR))
    args = parser.parse_args(argv)
    runs = [run_index(args, args.nodes, pods, workloads) for pods, workloads in args.index_sizes]
    for run in runs:
        print_run(run)
    result = {"benchmark": "extender", "settings": {k: v for k, v in vars(args).items() if k != "out_dir"},
              "runs": runs}
    if len(runs) > 1:
        small, large = runs[0], runs[-1]
        result["memory_growth"] = {
            "pods": [small["index"]["pods"], large["index"]["pods"]],
            "rss_mb_after_load": [small["rss_mb_after_load"], large["rss_mb_after_load"]],
            # 1.0 is linear; below, the fixed part (interpreter, nodes) is amortised
            "rss_ratio_over_pods_ratio": round((large["rss_mb_after_load"] / small["rss_mb_after_load"])
                                               / (large["index"]["pods"] / small["index"]["pods"]), 3),
            "mb_per_10k_pods": round((large["rss_mb_after_load"] - small["rss_mb_after_load"])
                                     / ((large["index"]["pods"] - small["index"]["pods"]) / 10_000), 2),
        }
        print(f"\nmemory growth: {json.dumps(result['memory_growth'])}")
    publish(result, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
