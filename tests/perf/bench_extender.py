"""Benchmark: extender service time over loopback HTTP, and its memory.

Starts the real extender app in a child process over a synthetic index (5000 nodes,
50,000 pods by default), then times filter and prioritize calls for 100, 1000 and
5000 candidate nodes in NodeNames and full Nodes mode, and the admission webhook's
answers to pod AdmissionReviews (a pod of a workload the index holds; most become spot
pods, the first of each workload a floor pod). Also reports what one controller
pass over that index costs. Prints a table and writes build/bench/extender.json. Figures, not assertions: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import socket
import statistics
import subprocess
import sys
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


def row(verb: str, mode: str, candidates: int, payloads: list[bytes], samples: list[float]) -> dict:
    return {
        "verb": verb,
        "mode": mode,
        "candidates": candidates,
        "calls": len(samples),
        "request_bytes": max(len(p) for p in payloads),
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(percentile(samples, 0.99), 3),
        "max_ms": round(max(samples), 3),
    }


def measure(port: int, path: str, payloads: list[bytes], calls: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    samples = []
    for i in range(calls + 3):
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
    conn.close()
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=50_000)
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--calls", type=int, default=400, help="calls per cell in NodeNames mode")
    parser.add_argument("--full-calls", type=int, default=40, help="calls per cell in full Nodes mode")
    parser.add_argument("--modes", default="NodeNames,Nodes")
    parser.add_argument("--out-dir", default=str(OUT_DIR))
    args = parser.parse_args(argv)

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    print(f"==> starting extender with {args.nodes} nodes and {args.pods} pods in its index", flush=True)
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.perf.extender_server", "--nodes", str(args.nodes), "--pods", str(args.pods),
         "--port", str(port)],
        stdout=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    try:
        first = server.stdout.readline().decode()
        if not first.startswith("controller ") or server.stdout.readline().strip() != b"ready":
            raise SystemExit("extender did not start")
        controller = orjson.loads(first.split(" ", 1)[1])
        print(f"    controller passes over the index (dry run): {controller}", flush=True)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        load_seconds = time.perf_counter() - started
        rss_loaded, _ = rss_mb(server.pid)
        print(f"    index loaded in {load_seconds:.1f}s, RSS {rss_loaded:.0f} MB", flush=True)

        rng = random.Random(1)
        all_names = node_names(args.nodes)
        rows = []
        for size in [int(s) for s in args.sizes.split(",")]:
            names = rng.sample(all_names, min(size, len(all_names)))
            modes = (("NodeNames", False, args.calls), ("Nodes", True, args.full_calls))
            for mode, full, calls in [m for m in modes if m[0] in args.modes.split(",")]:
                payloads = bodies(names, full, int(args.nodes * SPOT_SHARE))
                for verb in ("filter", "prioritize"):
                    print(f"==> {verb} {mode} {size} nodes x {calls} calls", flush=True)
                    samples = measure(port, f"/{verb}", payloads, calls)
                    rows.append(row(verb, mode, size, payloads, samples))
        print(f"==> mutate (admission webhook) x {args.calls} calls", flush=True)
        payloads = reviews()
        rows.append(row("mutate", "AdmissionReview", 0, payloads, measure(port, "/mutate", payloads, args.calls)))
        rss_now, rss_peak = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)

    result = {
        "benchmark": "extender",
        "index": {"nodes": args.nodes, "pods": args.pods},
        "index_load_seconds": round(load_seconds, 2),
        "rss_mb_after_load": round(rss_loaded, 1),
        "rss_mb_after_run": round(rss_now, 1),
        "rss_mb_peak": round(rss_peak, 1),
        "controller": controller,
        "results": rows,
    }

    print()
    print(f"{'verb':<11}{'mode':<16}{'nodes':>6}{'calls':>7}{'req KB':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for r in rows:
        print(
            f"{r['verb']:<11}{r['mode']:<16}{r['candidates']:>6}{r['calls']:>7}{r['request_bytes'] / 1024:>9.0f}"
            f"{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}{r['max_ms']:>9.3f}"
        )
    print(f"\nRSS after load {rss_loaded:.0f} MB, after run {rss_now:.0f} MB, peak {rss_peak:.0f} MB")
    publish(result, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
