"""Benchmark: a burst of pod creations, timed as kube-apiserver measures the webhook.

One control plane, --nodes KWOK nodes (70% spot), kube-scheduler as it ships. Each round
creates --deployments Deployments of --pods pods in all at once; kube-controller-manager
(client limits out of the way) creates the pods within a few seconds. Cases:

  none  no webhook, no extender: the pods' own time from creation to Ready
  e     webhook only (the managed-cluster mode), over HTTPS as shipped
  f     both: the webhook, and kube-scheduler calling filter and prioritize
  e0    e with the watch loop as it was before issue 30 (tests/perf/unsliced.py): the
        same build, its "before" arm measured in the same run
  pn    reference: an empty webhook on spot-extender's stack (tests/perf/noop_webhook.py)
  pg    reference: the same handler on granian, HTTP/2 and TLS in Rust threads
  gn    reference: an empty webhook in Go, HTTP/2 offered (tests/perf/noop_webhook_go)
  gn1   the same, HTTP/1.1 only, as aiohttp speaks: what HTTP/2 saves kube-apiserver

Every round starts a fresh spot-extender and reads, for the burst alone:
  - kube-apiserver's apiserver_admission_webhook_admission_duration_seconds for our
    webhook (p50, p99 by its buckets, and the share under 5 and 25 ms), its fail-open
    and rejection counts;
  - spot-extender's own admission histogram, and the difference (transport and queueing);
  - spot-extender's event-loop lag (the delay of a 10 ms timer): p99 and the max;
  - each pod's time from creation to Ready, from a watch.
Three rounds per case, interleaved; each figure is the median of its rounds. Writes
build/bench/burst.json. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.cluster.api import Api
from tests.cluster.controlplane import Component, ControlPlane, http_ok, make_tls
from tests.helpers import kube
from tests.helpers import objects as o
from tests.helpers.ports import free_port
from tests.helpers.waiting import wait_for
from tests.helpers.webhook import webhook_configuration
from tests.perf.bench_extender import percentile
from tests.perf.bench_throughput import (
    CASES,
    ROOT,
    WEBHOOK_NAME,
    BindingWatch,
    Case,
    add_many_nodes,
    chosen_cases,
    cleanup_namespace,
    cluster_nodes,
    start_extender,
)
from tests.perf.readings import cpu_seconds, extender_latency, loop_lag, webhook_admissions
from tests.perf.report import OUT_DIR, publish

WEBHOOK_HOOK = "roles.spot-extender.io"  # the webhook's name in the shipped configuration, as the metrics label it
BURST_CASES = (Case("none", "no webhook, no extender", ""),
               *(c for c in CASES if c.key in ("e", "f")),
               Case("e0", "webhook only, watch events unsliced (before issue 30)", "", webhook=True, arm="before"))
# References: webhooks that admit every pod unpatched and do nothing else, registered as
# ours is. What remains of e's latency over them is spot-extender's; theirs is the floor.
REFERENCES = {
    "pn": "empty handler on spot-extender's stack (aiohttp, uvloop, its TLS context)",
    "pg": "empty handler in Python on granian (HTTP/2 and TLS in Rust threads)",
    "gn": "empty handler in Go (net/http, HTTP/2 offered)",
    "gn1": "empty handler in Go, HTTP/1.1 only (as aiohttp speaks)",
}
BURST_CASES += tuple(Case(key, label, "", webhook=True) for key, label in REFERENCES.items())
LAG_REFERENCES = ("pn",)  # references that serve spot-extender's event-loop lag metric
GO_WEBHOOK = ROOT / "tests" / "perf" / "noop_webhook_go"


def go_command() -> str:
    """The go command as tests/cluster/build-bins.sh finds it: $GO, on PATH, or /usr/local/go."""
    found = os.environ.get("GO") or shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(found).exists() and not shutil.which(found):
        raise SystemExit("no Go toolchain found (set GO=/path/to/go)")
    return found


class Reference:
    """A reference webhook process, registered as the pods' webhook."""

    def __init__(self, cluster: ControlPlane, case: Case):
        ca, cert, key = make_tls(cluster.workdir / "tls")
        port = free_port()
        if case.key in ("pn", "pg"):
            argv = [sys.executable, "-m", "tests.perf.noop_webhook", f"--port={port}", f"--cert={cert}",
                    f"--key={key}", f"--stack={'granian' if case.key == 'pg' else 'aiohttp'}"]
        else:
            binary = OUT_DIR / "noop-webhook"
            subprocess.run([go_command(), "build", "-o", str(binary), "."], cwd=GO_WEBHOOK, check=True)
            argv = [str(binary), f"--addr=127.0.0.1:{port}", f"--cert={cert}", f"--key={key}",
                    f"--http2={'true' if case.key == 'gn' else 'false'}"]
        self.component = Component(f"webhook-{case.key}", argv, cluster.workdir / f"webhook-{case.key}.log",
                                   env={**os.environ, "PYTHONPATH": str(ROOT)})
        cluster.components[self.component.name] = self.component
        self.component.start()
        url = f"https://127.0.0.1:{port}"
        wait_for(lambda: http_ok(f"{url}/healthz", insecure=True), 60, what=f"{case.key} webhook")
        kube.create(cluster.api, webhook_configuration(url, ca, WEBHOOK_NAME))
        cluster.start_scheduler(use_extender=False)

        self.url = url

    def get(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=10, context=ssl._create_unverified_context()) as resp:
            return resp.read().decode()

    def stop(self) -> None:
        self.component.stop()


class ReadyWatch(BindingWatch):
    """When each pod of a namespace is first seen, and first seen Ready, from a watch."""

    def __init__(self, api: Api, namespace: str, resource_version: str, target: int):
        super().__init__(api, namespace, resource_version, target)
        self.ready: dict[str, float] = {}

    def seen(self, pod: dict, uid: str, now: float) -> None:
        conditions = pod.get("status", {}).get("conditions") or []
        if uid not in self.ready and any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            self.ready[uid] = now
            if len(self.ready) >= self.target:
                self.done.set()


def quantile_ms(values: list[float], q: float) -> float | None:
    return round(percentile(values, q) * 1000, 1) if values else None


def burst(cluster: ControlPlane, case: Case, args, number: int) -> dict:
    """One round: a fresh extender (if the case has one), the burst, its figures."""
    print(f"==> case {case.key} ({case.label}), round {number + 1}", flush=True)
    if case.key in REFERENCES:
        process = Reference(cluster, case)
    else:
        process = start_extender(cluster, case)
    ours = case.webhook and case.key not in REFERENCES  # spot-extender answers the webhook
    lagged = ours or case.key in LAG_REFERENCES  # its /metrics has the event-loop lag
    namespace = kube.namespace(cluster.api, f"burst-{case.key}-{number}")
    if case.webhook:  # kube-apiserver's informer takes the configuration in within a second or so
        time.sleep(2)
    api = cluster.api
    webhook_before = webhook_admissions(api.get("/metrics"), WEBHOOK_HOOK)
    extender_before = process.get("/metrics") if lagged else ""
    rv = api.get(f"/api/v1/namespaces/{namespace}/pods", limit=1)["metadata"]["resourceVersion"]
    pods = args.deployments * args.pods
    watch = ReadyWatch(api, namespace, rv, pods)
    watch.start()
    cpu_before = cpu_seconds(cluster)
    for i in range(args.deployments):
        kube.create(api, o.deployment(f"burst-{i:02d}", args.pods, namespace=namespace, cpu="10m"))
    while not watch.done.wait(5):
        cluster.check_running()
        print(f"    {len(watch.created)} created, {len(watch.ready)} Ready after "
              f"{time.monotonic() - watch.started:.0f}s", flush=True)
        if time.monotonic() - watch.started > args.timeout:
            break
    watch.stopping = True
    cpu_after = cpu_seconds(cluster)
    created = sorted(watch.created.values())
    to_ready = [watch.ready[uid] - watch.created[uid] for uid in watch.ready]
    out = {
        "pods_ready": len(watch.ready),
        "all_created_seconds": round(created[-1] - created[0], 2) if created else None,
        "ready_p50_ms": quantile_ms(to_ready, 0.5), "ready_p99_ms": quantile_ms(to_ready, 0.99),
        "cpu_seconds": {name.removesuffix(f"-{case.key}"): round(cpu_after[name] - cpu_before.get(name, 0.0), 2)
                        for name in cpu_after},
    }
    if case.webhook:
        seen = webhook_admissions(api.get("/metrics"), WEBHOOK_HOOK).minus(webhook_before)
        out["apiserver"] = seen.figures()
        metrics_text = process.get("/metrics") if lagged else ""
        if ours:
            own = extender_latency(metrics_text).get("admission", {})
            out["extender"] = own
            if out["apiserver"]["p50_ms"] is not None and own.get("p50_ms") is not None:
                out["transport_p50_ms"] = round(out["apiserver"]["p50_ms"] - own["p50_ms"], 2)
                out["transport_p99_ms"] = round(out["apiserver"]["p99_ms"] - own["p99_ms"], 2)
        if lagged:
            out["loop_lag"] = loop_lag(metrics_text, extender_before)
        kube.delete(api, "MutatingWebhookConfiguration", WEBHOOK_NAME)
    print(f"    {out['pods_ready']}/{pods} Ready; created over {out['all_created_seconds']}s; "
          f"creation to Ready p50 {out['ready_p50_ms']} ms, p99 {out['ready_p99_ms']} ms"
          + (f"; webhook as kube-apiserver saw it {out['apiserver']}, loop lag {out.get('loop_lag')}"
             if case.webhook else ""), flush=True)
    cluster.stop_scheduler()
    if process is not None:
        process.stop()
        cluster.components = {k: v for k, v in cluster.components.items() if not k.endswith(f"-{case.key}")}
    cleanup_namespace(api, namespace)
    return out


def median_of(rounds: list[dict], *path: str) -> float | None:
    values = []
    for r in rounds:
        for key in path:
            r = r.get(key) if isinstance(r, dict) else None
        if isinstance(r, (int, float)):
            values.append(r)
    return round(statistics.median(values), 2) if values else None


FIGURES = {  # result field: where each round holds it
    "ready_p50_ms": ("ready_p50_ms",), "ready_p99_ms": ("ready_p99_ms",),
    "all_created_seconds": ("all_created_seconds",),
    "apiserver_p50_ms": ("apiserver", "p50_ms"), "apiserver_p99_ms": ("apiserver", "p99_ms"),
    "apiserver_share_under_5ms": ("apiserver", "share_under_5ms"),
    "apiserver_share_under_25ms": ("apiserver", "share_under_25ms"),
    "apiserver_admissions": ("apiserver", "admissions"),
    "failed_open": ("apiserver", "failed_open"), "rejected": ("apiserver", "rejected"),
    "extender_p50_ms": ("extender", "p50_ms"), "extender_p99_ms": ("extender", "p99_ms"),
    "transport_p50_ms": ("transport_p50_ms",), "transport_p99_ms": ("transport_p99_ms",),
    "loop_lag_p99_ms": ("loop_lag", "p99_ms"), "loop_lag_max_ms": ("loop_lag", "max_ms"),
    "extender_cpu_seconds": ("cpu_seconds", "spot-extender"),
}


def summarise(case: Case, rounds: list[dict]) -> dict:
    result = {"case": case.key, "label": case.label, "rounds": rounds}
    for field, path in FIGURES.items():
        value = median_of(rounds, *path)
        if value is not None:
            result[field] = value
    failed = [r.get("apiserver", {}).get("failed_open", 0) for r in rounds]
    result["failed_open_total"] = sum(failed)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--deployments", type=int, default=10)
    parser.add_argument("--pods", type=int, default=50, help="replicas per Deployment")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", default=",".join(c.key for c in BURST_CASES))
    parser.add_argument("--timeout", type=float, default=300, help="seconds a round may take before it is cut")
    parser.add_argument("--out-dir", default=str(OUT_DIR))
    args = parser.parse_args(argv)
    chosen = chosen_cases(parser, args.cases, BURST_CASES)
    cluster = ControlPlane(log=print, api_qps=2000)
    rounds: dict[str, list[dict]] = {c.key: [] for c in chosen}
    try:
        cluster.start()
        add_many_nodes(cluster.api, cluster_nodes(args.nodes))
        for number in range(args.rounds):
            for case in chosen:
                rounds[case.key].append(burst(cluster, case, args, number))
    finally:
        cluster.cleanup()
    results = [summarise(case, rounds[case.key]) for case in chosen]
    report = {"benchmark": "burst", "settings": {k: v for k, v in vars(args).items() if k != "out_dir"},
              "pods_per_burst": args.deployments * args.pods, "results": results}
    none = next((r for r in results if r["case"] == "none"), None)
    for r in results:
        if none and r is not none and none.get("ready_p50_ms") and r.get("ready_p50_ms"):
            r["ready_p50_over_none"] = round(r["ready_p50_ms"] / none["ready_p50_ms"], 2)
            r["ready_p99_over_none"] = round(r["ready_p99_ms"] / none["ready_p99_ms"], 2)
    print(f"\n{report['pods_per_burst']} pods a burst, median of {args.rounds} rounds")
    print(f"{'case':<6}{'api p50':>9}{'api p99':>9}{'<25ms':>7}{'own p99':>9}{'lag p99':>9}{'lag max':>9}"
          f"{'ready p50':>11}{'ready p99':>11}{'open':>6}")
    for r in results:
        print(f"{r['case']:<6}{str(r.get('apiserver_p50_ms')):>9}{str(r.get('apiserver_p99_ms')):>9}"
              f"{str(r.get('apiserver_share_under_25ms')):>7}{str(r.get('extender_p99_ms')):>9}"
              f"{str(r.get('loop_lag_p99_ms')):>9}{str(r.get('loop_lag_max_ms')):>9}{str(r.get('ready_p50_ms')):>11}"
              f"{str(r.get('ready_p99_ms')):>11}{r['failed_open_total']:>6}")
    publish(report, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
