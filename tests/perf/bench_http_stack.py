"""Benchmark: what the HTTP stack costs each call, spot-extender's own against alternatives.

The same handlers (the real Extender and Webhook over a synthetic index of --pods pods
on --nodes nodes) behind each stack of tests/perf/http_stack_server.py: aiohttp as
shipped, a raw asyncio protocol with httptools, uvicorn, and granian embedded. A client in this process
sends --calls keep-alive calls per path over loopback HTTP (filter and prioritize at
--candidates NodeNames, an AdmissionReview, and /noop, an empty answer), and reads the
server's CPU time from /proc around them. The handler's own CPU per call, timed here
in process without any HTTP, is the part no stack can remove. --rounds rounds, stacks
interleaved, the median counts. Writes build/bench/http_stack.json. Figures, not
assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from spot_extender.assembly import build
from spot_extender.core.settings import Settings
from tests.helpers.ports import free_port
from tests.perf.bench_extender import bodies, percentile, reviews
from tests.perf.http_stack_server import answers
from tests.perf.report import OUT_DIR, publish
from tests.perf.synthetic import SPOT_SHARE, list_into, node_names

ROOT = Path(__file__).resolve().parents[2]
STACKS = ("aiohttp", "raw", "uvicorn", "granian")
PATHS = ("/noop", "/filter", "/prioritize", "/mutate")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def payloads_of(args) -> dict[str, list[bytes]]:
    names = random.Random(1).sample(node_names(args.nodes), args.candidates)
    verb = bodies(names, False, int(args.nodes * SPOT_SHARE))
    return {"/noop": [b"{}"], "/filter": verb, "/prioritize": verb, "/mutate": reviews()}


def serve(stack: str, args) -> tuple[subprocess.Popen, int]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tests.perf.http_stack_server", f"--stack={stack}",
                               f"--port={port}", f"--nodes={args.nodes}", f"--pods={args.pods}"],
                              stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    if server.stdout.readline().strip() != b"ready":
        server.kill()
        raise SystemExit(f"{stack} server did not start")
    for _ in range(100):
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
            return server, port
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit(f"{stack} server does not listen")


def measure(port: int, pid: int, path: str, payloads: list[bytes], calls: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(i: int) -> None:
        conn.request("POST", path, body=payloads[i % len(payloads)], headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"{path} answered {response.status}")

    for i in range(50):  # warm: the connection, the caches
        call(i)
    times = []
    cpu_before = cpu_seconds(pid)
    for i in range(calls):
        started = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - started)
    cpu = cpu_seconds(pid) - cpu_before
    conn.close()
    return {"server_cpu_us": round(cpu / calls * 1e6, 1), "p50_us": round(percentile(times, 0.5) * 1e6, 1),
            "p99_us": round(percentile(times, 0.99) * 1e6, 1)}


def handler_cpu(args, payloads: dict[str, list[bytes]]) -> dict[str, float]:
    """Each path's handler alone, called in this process: CPU microseconds per call."""
    settings = Settings(log_level="warning", dry_run=True)
    parts = build(settings)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(list_into(parts.index, settings, parts.metrics, args.nodes, args.pods, 20))
    routes = answers(parts)

    async def run(path: str) -> float:
        handler, bodies_ = routes[path.encode()], payloads[path]
        for i in range(50):
            await handler(bodies_[i % len(bodies_)])
        started = time.process_time()
        for i in range(args.calls):
            await handler(bodies_[i % len(bodies_)])
        return round((time.process_time() - started) / args.calls * 1e6, 1)

    out = {path: loop.run_until_complete(run(path)) for path in PATHS}
    loop.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--candidates", type=int, default=100, help="NodeNames per filter and prioritize call")
    parser.add_argument("--calls", type=int, default=3000, help="timed calls per path and stack")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out-dir", default=str(OUT_DIR))
    args = parser.parse_args(argv)
    payloads = payloads_of(args)
    print("==> the handlers alone, in process", flush=True)
    handlers = handler_cpu(args, payloads)
    print(f"    CPU us per call: {handlers}", flush=True)
    rounds: dict[tuple[str, str], list[dict]] = {(s, p): [] for s in STACKS for p in PATHS}
    for number in range(args.rounds):
        for stack in STACKS:
            print(f"==> {stack}, round {number + 1}", flush=True)
            server, port = serve(stack, args)
            try:
                for path in PATHS:
                    rounds[stack, path].append(measure(port, server.pid, path, payloads[path], args.calls))
            finally:
                server.terminate()
                server.wait(timeout=30)
    results = []
    for stack in STACKS:
        for path in PATHS:
            done = rounds[stack, path]
            row = {"stack": stack, "path": path, "rounds_server_cpu_us": [r["server_cpu_us"] for r in done],
                   **{k: round(statistics.median(r[k] for r in done), 1) for k in done[0]},
                   "handler_cpu_us": handlers[path]}
            row["stack_cpu_us"] = round(row["server_cpu_us"] - handlers[path], 1)
            results.append(row)
    shipped = {r["path"]: r for r in results if r["stack"] == "aiohttp"}
    for r in results:
        base = shipped[r["path"]]["server_cpu_us"]  # 0 when a short run fell within one clock tick
        r["cpu_over_aiohttp"] = round(r["server_cpu_us"] / base, 2) if base else None
    report = {"benchmark": "http_stack", "settings": {k: v for k, v in vars(args).items() if k != "out_dir"},
              "handler_cpu_us": handlers, "results": results}
    print(f"\n{'stack':<9}{'path':<13}{'server CPU us':>14}{'handler us':>11}{'stack us':>9}{'over aiohttp':>13}"
          f"{'p50 us':>8}{'p99 us':>8}")
    for r in results:
        print(f"{r['stack']:<9}{r['path']:<13}{r['server_cpu_us']:>14}{r['handler_cpu_us']:>11}{r['stack_cpu_us']:>9}"
              f"{str(r['cpu_over_aiohttp']):>13}{r['p50_us']:>8}{r['p99_us']:>8}")
    publish(report, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
