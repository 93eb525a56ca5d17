"""Benchmark 1: scheduling throughput on the real control plane, with and without an extender.

One control plane, N KWOK nodes (70% spot in nine pools, 30% on-demand), then the same
P pods from multi-replica Deployments scheduled in each case. kube-scheduler keeps its
default (adaptive) percentageOfNodesToScore throughout.

  a     kube-scheduler alone, as it ships
  a0    the same with OpportunisticBatching off, which configuring any extender does
  b     extender only: spot-extender, NodeNames mode (nodeCacheCapable: true)
  e     webhook only: spot-extender as the pods' admission webhook, kube-scheduler as it
        ships (the managed-cluster mode: roles in the pod specs, no extender configured)
  f     both: the webhook, and kube-scheduler calling filter and prioritize (NodeNames)
  fp    both, kube-scheduler calling prioritize only: what the filter verb costs
  c     spot-extender, full Nodes mode (not run unless asked: --cases)
  d     the BASELINE extender in tests/perf/baseline_extender.py, full Nodes mode (same)
  b0    b with the watch loop as it was before issue 30 (tests/perf/unsliced.py; same)
  bs    b with the watch slices, but no yield after every event while a call is open (same)

Rollout, the issue's measure: the Deployments are created with everything running;
pods per second counts from that moment to the last binding, so it includes the
controller-manager creating pods. Backlog: the pods are created with kube-scheduler
stopped, then it starts; pods per second counts from the first binding to the last,
the scheduler's own pace. Three rounds of each, interleaved across cases; the median
counts (2000 pods take seconds, so one round is at the mercy of the machine). Bindings
are seen through a watch. spot-extender runs with its controller in dry-run, so no move
adds pods; its own latencies come from its /metrics. With --profile-seconds, one more
backlog round per case, untimed, takes CPU profiles of kube-scheduler and kube-apiserver
(pprof) and spot-extender (py-spy) into build/bench/profiles/.
Writes build/bench/throughput.json and throughput.png.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.cluster.api import Api, ApiError
from tests.cluster.controlplane import Component, ControlPlane, ExtenderOptions, ExtenderProcess, http_ok, make_tls
from tests.helpers import kube
from tests.helpers import objects as o
from tests.helpers.ports import free_port
from tests.helpers.waiting import wait_for
from tests.helpers.webhook import webhook_configuration
from tests.perf import plots
from tests.perf.profiles import Profiler
from tests.perf.readings import cpu_seconds, extender_latency, scheduling_cycle
from tests.perf.report import OUT_DIR, publish

ROOT = Path(__file__).resolve().parents[2]
SPOT_TYPES = ("m5.xlarge", "c5.xlarge", "r5.xlarge")
ZONES = ("zone-a", "zone-b", "zone-c")


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    extender: str  # "", "spot-extender" or "baseline"
    node_cache_capable: bool = True
    feature_gates: str = ""
    webhook: bool = False  # spot-extender registered as the pods' admission webhook
    filter_verb: bool = True  # with an extender: False configures prioritize only
    arm: str = ""  # "before" or "slices": spot-extender's watch loop as tests/perf/unsliced.py runs it


CASES = (
    Case("a", "kube-scheduler alone", ""),
    # Any extender turns off kube-scheduler's batching of identical pods (OpportunisticBatching,
    # on by default since 1.35): this is the scheduler doing the work it does under b, minus the calls.
    Case("a0", "kube-scheduler alone, OpportunisticBatching off", "", feature_gates="OpportunisticBatching=false"),
    Case("b", "extender only, NodeNames", "spot-extender"),
    Case("e", "webhook only, kube-scheduler as it ships", "", webhook=True),
    Case("f", "both: webhook, and extender filter + prioritize", "spot-extender", webhook=True),
    Case("fp", "both: webhook, and extender prioritize only", "spot-extender", webhook=True, filter_verb=False),
    Case("c", "extender only, full Nodes", "spot-extender", node_cache_capable=False),
    Case("d", "baseline extender (API calls per request), full Nodes", "baseline", node_cache_capable=False),
    Case("b0", "extender only, NodeNames, watch loop before issue 30", "spot-extender", arm="before"),
    Case("bs", "extender only, NodeNames, watch slices without yielding to open calls", "spot-extender",
         arm="slices"),
)
DEFAULT_CASES = ("a", "a0", "b", "e", "f", "fp")


def cluster_nodes(count: int) -> list[dict]:
    """70% spot spread over instance types x zones, the rest on-demand over the zones."""
    spot = round(count * 0.7)
    nodes = []
    for i in range(count):
        zone = ZONES[i % len(ZONES)]
        if i < spot:
            kind = SPOT_TYPES[(i // len(ZONES)) % len(SPOT_TYPES)]
            nodes.append(o.fake_node(f"spot-{i:05d}", "spot", zone, kind, cpu="32", memory="128Gi"))
        else:
            nodes.append(o.fake_node(f"od-{i:05d}", "on-demand", zone, "m5.xlarge", cpu="32", memory="128Gi"))
    return nodes


def add_many_nodes(api: Api, nodes: list[dict]) -> None:
    started = time.monotonic()
    for start in range(0, len(nodes), 250):
        kube.add_nodes(api, nodes[start:start + 250], timeout=300)
        print(f"    {min(start + 250, len(nodes))}/{len(nodes)} nodes Ready", flush=True)
    print(f"    nodes up in {time.monotonic() - started:.1f}s", flush=True)


class BindingWatch(threading.Thread):
    """Times, from a watch, when each pod of a namespace first appears and is first bound."""

    def __init__(self, api: Api, namespace: str, resource_version: str, target: int):
        super().__init__(daemon=True)
        self.api, self.namespace, self.rv, self.target = api, namespace, resource_version, target
        self.started = time.monotonic()
        self.created: dict[str, float] = {}
        self.bound: dict[str, str] = {}  # uid -> node
        self.bound_at: dict[str, float] = {}
        self.ended = 0.0
        self.done = threading.Event()
        self.stopping = False
        self.error: str | None = None

    def run(self) -> None:
        path = f"/api/v1/namespaces/{self.namespace}/pods"
        while not self.stopping and not self.done.is_set():
            try:
                for event in self.api.watch(path, timeout=30, resourceVersion=self.rv):
                    self._apply(event)
                    if self.done.is_set() or self.stopping:
                        return
            except (OSError, ApiError, ValueError) as exc:  # a dropped stream: resume from the last version
                self.error = str(exc)
                time.sleep(0.5)

    def _apply(self, event: dict) -> None:
        pod = event["object"]
        meta = pod.get("metadata", {})
        self.rv = meta.get("resourceVersion", self.rv)
        uid = meta.get("uid")
        if event["type"] not in ("ADDED", "MODIFIED") or not uid:
            return
        now = time.monotonic() - self.started
        self.created.setdefault(uid, now)
        self.seen(pod, uid, now)

    def seen(self, pod: dict, uid: str, now: float) -> None:
        """A pod added or changed, `now` s after the watch started: bindings are timed here."""
        node = pod.get("spec", {}).get("nodeName")
        if node and uid not in self.bound:
            self.bound[uid] = node
            self.bound_at[uid] = now
            if len(self.bound) >= self.target:
                self.done.set()


def deployments(namespace: str, pods: int, replicas: int) -> list[dict]:
    out, left, i = [], pods, 0
    while left > 0:
        size = min(replicas, left)
        out.append(o.deployment(f"load-{i:04d}", size, namespace=namespace, cpu="10m"))
        left -= size
        i += 1
    return out


def start_extender(cluster: ControlPlane, case: Case):
    """The case's extender process and the scheduler configured for it; returns the process.
    A case with an `arm` runs spot-extender as tests/perf/unsliced.py does."""
    process = None
    options = ExtenderOptions(port=free_port(), node_cache_capable=case.node_cache_capable,
                              filter_verb=case.filter_verb)
    cluster.extender = options
    if case.extender == "spot-extender" or case.webhook:
        flags = ["--log-format=json", "--leader-elect=false", "--dry-run=true"]
        ca = None
        if case.webhook:  # HTTPS, as kube-apiserver calls webhooks; kube-scheduler then calls it so too
            ca, cert, key = make_tls(cluster.workdir / "tls")
            flags += [f"--tls-cert-file={cert}", f"--tls-key-file={key}"]
            options.https, options.ca_file = True, str(ca)
        process = ExtenderProcess(cluster, *flags, port=options.port, ca_file=ca, name=f"spot-extender-{case.key}")
        if case.arm:
            process.component.argv[:1] = [sys.executable, "-m", "tests.perf.unsliced"]
            process.component.env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_WATCH_ARM": case.arm}
        process.start()
        if case.webhook:  # registered for every namespace but kube-system
            kube.create(cluster.api, webhook_configuration(process.url, ca, WEBHOOK_NAME))
    elif case.extender == "baseline":
        process = Component(f"baseline-extender-{case.key}", [
            sys.executable, "-m", "tests.perf.baseline_extender", f"--kubeconfig={cluster.kubeconfig}",
            "--host=127.0.0.1", f"--port={options.port}",
        ], cluster.workdir / f"baseline-extender-{case.key}.log", env={**os.environ, "PYTHONPATH": str(ROOT)})
        cluster.components[process.name] = process
        process.start()
        wait_for(lambda: http_ok(f"{options.url}/healthz"), 60, what="baseline extender /healthz")
    cluster.start_scheduler(options, use_extender=bool(case.extender), feature_gates=case.feature_gates)
    return process


def schedule(cluster: ControlPlane, case: Case, namespace: str, pods: int, replicas: int, timeout: float,
             backlog: bool, profile=None) -> BindingWatch:
    """Create the pods and wait until all are bound. `backlog`: with the scheduler stopped
    until every pod exists, so what is timed is scheduling alone. `profile(cluster)`, if
    given, is called the moment scheduling starts."""
    api = cluster.api
    rv = api.get(f"/api/v1/namespaces/{namespace}/pods", limit=1)["metadata"]["resourceVersion"]
    watch = BindingWatch(api, namespace, rv, pods)
    watch.start()
    if backlog:
        cluster.stop_scheduler()
    for obj in deployments(namespace, pods, replicas):
        kube.create(api, obj)
    if backlog:
        wait_for(lambda: len(watch.created) >= pods, timeout, interval=0.5, what=f"{pods} pods created")
        cluster.start_scheduler(use_extender=bool(case.extender))
    if profile is not None:
        profile(cluster)
    cpu_before = cpu_seconds(cluster)
    deadline = time.monotonic() + timeout
    while not watch.done.wait(5):
        cluster.check_running()
        print(f"    {len(watch.bound)}/{pods} bound after {time.monotonic() - watch.started:.0f}s", flush=True)
        if time.monotonic() > deadline:
            break
    watch.stopping = True
    watch.ended = time.monotonic() - watch.started
    cpu_after = cpu_seconds(cluster)
    watch.cpu = {name.removesuffix(f"-{case.key}"): round(cpu_after[name] - cpu_before.get(name, 0.0), 2)
                 for name in cpu_after}
    return watch


SKIPPED = "Skipping extender as it returned error"
WEBHOOK_NAME = "spot-extender-bench"


def skipped_calls(cluster: ControlPlane) -> list[str]:
    """Filter calls kube-scheduler gave up on (an error from an ignorable extender), from its log."""
    log = cluster.workdir / "kube-scheduler.log"
    return [line for line in log.read_text(errors="replace").splitlines() if SKIPPED in line] if log.exists() else []


def run_phase(cluster: ControlPlane, case: Case, args, phase: str, spot_nodes: set[str],
              profiler: Profiler | None = None) -> dict:
    """One timed scheduling of args.pods pods, with a fresh extender process and namespace.
    With a profiler, its profiles are taken as scheduling starts (a backlog phase)."""
    print(f"==> case {case.key} ({case.label}), {phase}{', profiled' if profiler else ''}", flush=True)
    skipped_before = len(skipped_calls(cluster))
    timeout = args.timeout if case.node_cache_capable else args.slow_timeout
    process = start_extender(cluster, case)
    component = getattr(process, "component", process)  # spot-extender, or the baseline's Component
    if args.extender_nice and component is not None:
        # An experiment: does the extender's CPU share on a saturated machine set the rate?
        os.setpriority(os.PRIO_PROCESS, component.process.pid, args.extender_nice)
    namespace = kube.namespace(cluster.api, f"throughput-{case.key}-{phase}{'-profiled' if profiler else ''}")

    def profile(cluster: ControlPlane) -> None:
        profiler.go("kube-scheduler", cluster.scheduler_url, cluster.token)
        profiler.go("kube-apiserver", cluster.server, cluster.token)
        if component is not None and component.process is not None:
            profiler.python(component.name.removesuffix(f"-{case.key}"), component.process.pid)

    watch = schedule(cluster, case, namespace, args.pods, args.replicas, timeout, backlog=phase == "backlog",
                     profile=profile if profiler else None)
    if profiler is not None:
        profiler.wait()  # before the processes it samples stop
    cycle = scheduling_cycle(cluster) if phase == "backlog" else None
    # Stopped before the extender, so pods a cut case left pending do not meet a dead extender.
    cluster.stop_scheduler()
    skipped = skipped_calls(cluster)[skipped_before:]
    complete = len(watch.bound) >= args.pods
    binds = sorted(watch.bound_at.values())
    if phase == "backlog":  # first to last binding: the scheduler's own pace
        seconds = (binds[-1] if complete else watch.ended) - binds[0] if binds else watch.ended
        out = {
            "complete": complete, "bound": len(watch.bound), "seconds": round(seconds, 2),
            "pods_per_second": round(len(watch.bound) / seconds, 1) if seconds else None,
            "spot_fraction": round(sum(n in spot_nodes for n in watch.bound.values()) / max(len(binds), 1), 3),
            "cpu_seconds": watch.cpu,
            "cpu_ms_per_pod": per_pod(watch.cpu, len(watch.bound)),
            "scheduling_algorithm": cycle,
        }
    else:  # from creating the Deployments, controller-manager creating pods included
        seconds = binds[-1] if complete else watch.ended
        created = sorted(watch.created.values())
        out = {
            "rollout_complete": complete, "rollout_seconds": round(seconds, 2),
            "rollout_pods_per_second": round(len(watch.bound) / seconds, 1) if seconds else None,
            "rollout_all_created_seconds": round(created[args.pods - 1], 2) if len(created) >= args.pods else None,
            "rollout_cpu_seconds": watch.cpu,
            "rollout_cpu_ms_per_pod": per_pod(watch.cpu, len(watch.bound)),
        }
    print(f"    {len(watch.bound)}/{args.pods} bound in {seconds:.1f}s: "
          f"{out.get('pods_per_second', out.get('rollout_pods_per_second'))} pods/s", flush=True)
    if (case.extender == "spot-extender" or case.webhook) and phase == "backlog":
        out["extender_latency"] = extender_latency(process.get("/metrics"))
    if case.webhook:
        kube.delete(cluster.api, "MutatingWebhookConfiguration", WEBHOOK_NAME)
    if process is not None:
        process.stop()
        cluster.components = {k: v for k, v in cluster.components.items() if not k.endswith(f"-{case.key}")}
    cleanup_namespace(cluster.api, namespace)
    out["extender_skipped"] = len(skipped)
    if skipped:
        out["extender_skip_example"] = skipped[0][-300:]
    return out


def run_cases(cluster: ControlPlane, cases: list[Case], args, spot_nodes: set[str]) -> list[dict]:
    """Rounds interleaved across cases, so drift over the run hits every case alike; each
    case reports its median round per phase. The slow full Nodes cases get one round.
    Profiled rounds come after, so sampling never slows a timed one."""
    phases = [p for p in ("backlog", "rollout") if p in args.phases.split(",")]
    rounds: dict[tuple[str, str], list[dict]] = {(c.key, p): [] for c in cases for p in phases}
    for number in range(args.rounds):
        for phase in phases:
            for case in cases:
                if number == 0 or case.node_cache_capable:
                    rounds[case.key, phase].append(run_phase(cluster, case, args, phase, spot_nodes))
    results = []
    for case in cases:
        result = {"case": case.key, "label": case.label, "extender_skipped": 0}
        examples = []
        for phase in phases:
            field = "pods_per_second" if phase == "backlog" else "rollout_pods_per_second"
            done = rounds[case.key, phase]
            result["extender_skipped"] += sum(r.pop("extender_skipped") for r in done)
            examples += [r.pop("extender_skip_example") for r in done if "extender_skip_example" in r]
            result.update(sorted(done, key=lambda r: r[field] or 0)[len(done) // 2])
            prefix = "" if phase == "backlog" else "rollout_"
            result[f"{prefix}rounds_pods_per_second"] = [r[field] for r in done]
        if examples:
            result["extender_skip_example"] = examples[0]
        results.append(result)
    profiled = set(filter(None, args.profile_cases.split(","))) or {c.key for c in cases}
    if args.profile_seconds > 0:
        for case, result in zip(cases, results):
            if case.key not in profiled:
                continue
            profiler = Profiler(Path(args.out_dir) / "profiles", case.key, args.profile_seconds)
            run_phase(cluster, case, args, "backlog", spot_nodes, profiler)
            result["profiles"] = profiler.wait()
    return results


def cleanup_namespace(api: Api, namespace: str) -> None:
    """Delete the case's pods before the next case, so it does not pay for them. The owners
    go first, orphaning what they own so nothing recreates it, then the pods at once (no
    grace): the namespace controller alone took 40-50 s for 2000 pods. Once the pods are
    gone the namespace is left to the namespace controller: waiting for it cost 7 s a phase."""
    started = time.monotonic()
    for owners in ("deployments", "replicasets"):
        api.delete(f"/apis/apps/v1/namespaces/{namespace}/{owners}", propagationPolicy="Orphan")
    pods = f"/api/v1/namespaces/{namespace}/pods"
    for _ in range(10):
        try:
            api.delete(pods, gracePeriodSeconds="0")
            break
        except TimeoutError:  # 2000 pods can outlast the client's timeout on a busy machine: go on deleting
            print(f"    deleting the pods of {namespace} outlasted the client's timeout; again", flush=True)
    wait_for(lambda: not api.get(pods, limit=1)["items"], 900, interval=0.2, what=f"pods of {namespace} deleted")
    kube.delete(api, "Namespace", namespace)
    print(f"    pods of {namespace} deleted in {time.monotonic() - started:.1f}s", flush=True)


def per_pod(cpu: dict[str, float], pods: int) -> dict[str, float]:
    """CPU milliseconds each process spent per pod bound: the figure that travels from this
    machine's shared cores to a cluster's, where pods per second does not."""
    return {name: round(seconds * 1000 / pods, 3) for name, seconds in cpu.items()} if pods else {}


def extra_cpu(results: list[dict], field: str = "cpu_ms_per_pod") -> dict:
    """Each case's CPU ms per pod over case a's, per process and in total: what the mode costs."""
    base = next((r.get(field) for r in results if r["case"] == "a"), None)
    if not base:
        return {}
    out = {}
    for r in results:
        mine = r.get(field)
        if r["case"] == "a" or not mine:
            continue
        diff = {name: round(mine.get(name, 0.0) - base.get(name, 0.0), 3) for name in {*mine, *base}}
        diff["total"] = round(sum(mine.values()) - sum(base.values()), 3)
        out[r["case"]] = diff
    return out


def ratios(results: list[dict], field: str = "pods_per_second") -> dict:
    """Every case over a; the cases with an extender also over a0, the scheduler doing the
    same work uncalled; fp over f, what dropping the filter verb gains; b and bs over b0,
    what the watch loop of issue 30 changed."""
    rate = {r["case"]: r.get(field) for r in results}
    out = {}
    for base, cases in (("a", rate), ("a0", ("b", "c", "d", "f", "fp")), ("f", ("fp",)), ("b0", ("b", "bs"))):
        for case in cases:
            if rate.get(base) and rate.get(case) and case != base:
                out[f"{case}/{base}"] = round(rate[case] / rate[base], 3)
    return out


def print_table(report: dict) -> None:
    print(f"\n{report['nodes']} nodes, {report['pods']} pods")
    print(f"{'case':<6}{'rollout pods/s':>16}{'backlog pods/s':>16}  label")
    for r in report["results"]:
        print(f"{r['case']:<6}{str(r.get('rollout_pods_per_second')):>16}{str(r.get('pods_per_second')):>16}  {r['label']}")
    print("rollout ratios: " + ", ".join(f"{k} {v}" for k, v in report["rollout_ratios"].items()))
    print("backlog ratios: " + ", ".join(f"{k} {v}" for k, v in report["ratios"].items()))
    print("CPU ms per pod, backlog: " + "; ".join(
        f"{r['case']} " + ", ".join(f"{k} {v}" for k, v in sorted(r.get("cpu_ms_per_pod", {}).items()))
        for r in report["results"]))
    print("extra CPU ms per pod over a, backlog: " + "; ".join(
        f"{case} {diff['total']} (spot-extender {diff.get('spot-extender')})"
        for case, diff in report["extra_cpu_ms_per_pod"].items()))


def chosen_cases(parser: argparse.ArgumentParser, text: str, cases: tuple[Case, ...]) -> list[Case]:
    """The cases --cases names, in the order of `cases`; a name not among them is a usage error."""
    unknown = set(text.split(",")) - {c.key for c in cases}
    if unknown:
        parser.error(f"unknown cases {sorted(unknown)}: choose from {','.join(c.key for c in cases)}")
    return [c for c in cases if c.key in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--replicas", type=int, default=20, help="replicas per Deployment")
    parser.add_argument("--cases", default=",".join(DEFAULT_CASES), help=f"of {','.join(c.key for c in CASES)}")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a phase may take before it is cut")
    parser.add_argument("--slow-timeout", type=float, default=90,
                        help="the same for the full Nodes cases c and d, which are slow: their rate is of the pods bound by then")
    parser.add_argument("--phases", default="backlog,rollout")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per phase for each fast case; the median counts")
    parser.add_argument("--profile-seconds", type=int, default=0,
                        help="after the timed rounds, one backlog round per case with CPU profiles this long (0: none)")
    parser.add_argument("--profile-cases", default="",
                        help="the cases profiled, of --cases (empty: all of them)")
    parser.add_argument("--extender-nice", type=int, default=0,
                        help="run the extender process at this nice value (negative: ahead of the control plane)")
    parser.add_argument("--out-dir", default=str(OUT_DIR))
    args = parser.parse_args(argv)
    chosen = chosen_cases(parser, args.cases, CASES)
    stray = set(filter(None, args.profile_cases.split(","))) - {c.key for c in chosen}
    if stray:
        parser.error(f"--profile-cases {sorted(stray)} are not among --cases")
    # Client rate limits out of the way: the defaults (20-50 requests/s) would be the result.
    cluster = ControlPlane(log=print, api_qps=2000)
    try:
        cluster.start()
        nodes = cluster_nodes(args.nodes)
        add_many_nodes(cluster.api, nodes)
        spot = {n["metadata"]["name"] for n in nodes if n["metadata"]["labels"][o.CAPACITY_LABEL] == "spot"}
        results = run_cases(cluster, chosen, args, spot)
    finally:
        cluster.cleanup()
    report = {"benchmark": "throughput", "settings": {k: v for k, v in vars(args).items() if k != "out_dir"},
              "nodes": args.nodes, "pods": args.pods, "extender_nice": args.extender_nice,
              "replicas_per_deployment": args.replicas, "results": results, "ratios": ratios(results),
              "rollout_ratios": ratios(results, "rollout_pods_per_second") if "rollout" in args.phases else {},
              "extra_cpu_ms_per_pod": extra_cpu(results),
              "rollout_extra_cpu_ms_per_pod": extra_cpu(results, "rollout_cpu_ms_per_pod")}
    print_table(report)
    publish(report, args.out_dir, plots.throughput_bars)
    return 0


if __name__ == "__main__":
    sys.exit(main())
