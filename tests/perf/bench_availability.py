"""Benchmark 2: availability and cost through spot reclaims, spot-extender vs the native approach.

The same scenario runs once per approach, each on a fresh control plane with the same
nodes and workloads (R from 1 to 20, some PDBs, some StatefulSets):

  spot-extender  kube-scheduler calls spot-extender; workloads carry nothing special
  webhook        kube-scheduler alone, as on a managed control plane; spot-extender is the
                 pods' admission webhook only, writing each pod's role into its spec
  native         no extender; every pod template prefers spot (node affinity, weight
                 100) and tolerates spot taints, the usual way to "use spot"

Timeline: deploy and settle; reclaim the spot pools one at a time (each returns before
the next goes); reclaim every spot node at once; spot returns. A reclaim taints the
nodes the way the AWS Node Termination Handler does, waits the notice, then the nodes
vanish: Node objects and their pods are deleted at once. KWOK makes a bound pod Ready
after a start-up delay, like a container start. The benchmark samples every pod from
the API server twice a second. Writes build/bench/availability.json and availability.png.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

from spot_extender.cluster.records import PdbRecord
from spot_extender.core.settings import Settings
from spot_extender.decisions.policy import compute_floor
from tests.cluster.controlplane import ControlPlane, ExtenderOptions, ExtenderProcess, make_tls
from tests.helpers import kube
from tests.helpers import objects as o
from tests.helpers.sampling import ReadySampler, Sample
from tests.helpers.webhook import webhook_configuration
from tests.perf import plots
from tests.perf.report import OUT_DIR, publish

NAMESPACE = "shop"
POOLS = (("m5.large", "zone-a"), ("c5.large", "zone-b"), ("r5.large", "zone-c"))
ON_DEMAND = (("m5.large", "zone-a"), ("m5.large", "zone-b"))
SPOT_TOLERATIONS = [
    {"key": "cloud.google.com/gke-spot", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "kubernetes.azure.com/scalesetpriority", "operator": "Exists", "effect": "NoSchedule"},
]


@dataclass(frozen=True)
class Workload:
    kind: str  # Deployment or StatefulSet
    name: str
    replicas: int
    min_available: int | str | None = None
    max_unavailable: int | str | None = None

    @property
    def has_pdb(self) -> bool:
        return self.min_available is not None or self.max_unavailable is not None


# Replica counts 1..20, a third with PDBs, four StatefulSets.
FULL = (
    Workload("Deployment", "web", 1), Workload("Deployment", "admin", 1),
    Workload("Deployment", "api", 2), Workload("Deployment", "auth", 3, min_available=2),
    Workload("Deployment", "worker", 4), Workload("Deployment", "cache", 5, max_unavailable=1),
    Workload("Deployment", "front", 6), Workload("Deployment", "batch", 8),
    Workload("Deployment", "search", 10, min_available="50%"), Workload("Deployment", "queue", 12),
    Workload("Deployment", "render", 15, max_unavailable=2), Workload("Deployment", "edge", 20),
    Workload("StatefulSet", "db", 1), Workload("StatefulSet", "etcd", 3, max_unavailable=1),
    Workload("StatefulSet", "kafka", 5, min_available=3), Workload("StatefulSet", "zk", 7),
)
SMALL = (
    Workload("Deployment", "web", 1), Workload("Deployment", "api", 3, min_available=2),
    Workload("Deployment", "worker", 4), Workload("StatefulSet", "db", 3, max_unavailable=1),
)


def floor_of(replicas: int, min_available=None, max_unavailable=None, namespace: str = NAMESPACE) -> int:
    """A workload's on-demand floor k, as spot-extender computes it with its defaults,
    given the PDB (if either bound is set) that selects its pods."""
    settings = Settings()
    pdbs = ([PdbRecord(namespace, "pdb", {}, min_available, max_unavailable)]
            if min_available is not None or max_unavailable is not None else [])
    return compute_floor(replicas, None, None, pdbs, settings.default_floor, settings.floor_from_max_unavailable).k


def floors(workloads) -> dict[str, int]:
    """Each workload's on-demand floor k."""
    return {w.name: floor_of(w.replicas, w.min_available, w.max_unavailable) for w in workloads}


def workload_fields(workloads) -> dict:
    """The report's `workloads` (each with its floor k) and `spot_room`, sum(R - k)."""
    k = floors(workloads)
    return {"workloads": [{"kind": w.kind, "name": w.name, "replicas": w.replicas, "floor": k[w.name],
                           "pdb": w.has_pdb} for w in workloads],
            "spot_room": sum(w.replicas - k[w.name] for w in workloads)}


def manifests(workloads, native: bool) -> list[dict]:
    out = []
    for w in workloads:
        make = o.deployment if w.kind == "Deployment" else o.statefulset
        obj = make(w.name, w.replicas, namespace=NAMESPACE)
        if native:
            obj["spec"]["template"]["spec"]["affinity"] = {"nodeAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "preference": {
                    "matchExpressions": [{"key": o.CAPACITY_LABEL, "operator": "In", "values": ["spot"]}]}}]}}
            obj["spec"]["template"]["spec"]["tolerations"] = SPOT_TOLERATIONS
        out.append(obj)
        if w.has_pdb:
            out.append(o.pdb(w.name, {"app": w.name}, w.min_available, w.max_unavailable, namespace=NAMESPACE))
    return out


class Scenario:
    """One approach's run: its cluster, what exists, and every sample taken."""

    def __init__(self, approach: str, cluster: ControlPlane, workloads, nodes_per_pool: int, sample_every: float):
        self.approach, self.cluster, self.api = approach, cluster, cluster.api
        self.workloads = workloads
        self.floor = floors(workloads)
        self.desired = {w.name: w.replicas for w in workloads}
        self.nodes_per_pool = nodes_per_pool
        self.spot_pools: dict[str, list[str]] = {}
        self.generation = 0
        self.sampler = ReadySampler(self.api, NAMESPACE, list(self.desired), sample_every, on_sample=self.record)
        self.started = self.sampler.started
        self.samples: list[dict] = []  # one record per sample
        self.events: list[dict] = []

    # ---- nodes -------------------------------------------------------------------

    def add_on_demand(self) -> None:
        nodes = [o.fake_node(f"od-{zone}-{i}", "on-demand", zone, kind)
                 for kind, zone in ON_DEMAND for i in range(2)]
        kube.add_nodes(self.api, nodes)

    def add_spot(self, pools=None) -> None:
        self.generation += 1
        nodes = []
        for kind, zone in pools or POOLS:
            names = [f"spot-{kind.split('.')[0]}-{zone}-g{self.generation}-{i}" for i in range(self.nodes_per_pool)]
            self.spot_pools[f"{kind}/{zone}"] = names
            nodes += [o.fake_node(n, "spot", zone, kind) for n in names]
        kube.add_nodes(self.api, nodes)

    def reclaim(self, pool_keys: list[str], notice: float) -> None:
        """Termination notice on every node of the pools, then after `notice` they vanish."""
        names = [n for key in pool_keys for n in self.spot_pools.pop(key)]
        for name in names:
            self.api.merge_patch(f"/api/v1/nodes/{name}", {"spec": {"taints": [o.INTERRUPTION_TAINT]}})
        self.event(f"notice {'+'.join(pool_keys)}")
        self.sampler.sample_for(notice)
        for name in names:
            kube.vanish_node(self.api, name)
        self.event("vanished")

    # ---- sampling ----------------------------------------------------------------

    def event(self, what: str) -> None:
        t = round(time.monotonic() - self.started, 2)
        self.events.append({"t": t, "event": what})
        print(f"    [{self.approach} {t:7.1f}s] {what}", flush=True)

    def record(self, sample: Sample) -> None:
        """Every sample, as the timeline keeps it. Terminating pods, pending ones and ones on
        a node that is gone serve nothing; the pods on spot count whether ready or not."""
        ready = {app: sample.ready(app) for app in self.desired}
        on_spot = sample.on("spot")
        spot_room = sum(r - self.floor[n] for n, r in self.desired.items())
        by_app = {app: sum(p.capacity == "spot" and not p.terminating for p in sample.pods[app]) for app in self.desired}
        self.samples.append({"t": round(sample.t, 2), "ready": ready, "ready_total": sum(ready.values()),
                             "on_spot": on_spot, "on_spot_by_app": by_app,
                             "spot_share": round(on_spot / spot_room, 4) if spot_room else None})

    def sample(self) -> dict:
        self.sampler.sample()
        return self.samples[-1]

    def sample_until(self, done, timeout: float, stall: float | None = None) -> float | None:
        """ReadySampler.sample_until with done() given each record, the cluster checked at every sample."""
        def check(_: Sample) -> bool:
            self.cluster.check_running()
            return done(self.samples[-1])

        return self.sampler.sample_until(check, timeout, stall)

    def all_ready(self, record: dict) -> bool:
        return all(record["ready"][n] >= r for n, r in self.desired.items())

    # ---- phases ------------------------------------------------------------------

    def settle(self, quiet: float, timeout: float) -> dict:
        """Until every replica is ready and the spot count has not moved for `quiet` seconds."""
        start, last, since = time.monotonic(), None, time.monotonic()
        while time.monotonic() - start < timeout:
            record = self.sample()
            key = (record["on_spot"], record["ready_total"])
            if key != last:
                last, since = key, time.monotonic()
            elif self.all_ready(record) and time.monotonic() - since >= quiet:
                break
            time.sleep(self.sampler.interval)
        return self.samples[-1]

    def window(self, since: float) -> list[dict]:
        return [s for s in self.samples if s["t"] >= since]

    def lost(self, window: list[dict], name: str) -> float:
        """Replica-seconds the workload was short of R over the window: each sample's
        shortfall held until the next sample."""
        replicas = self.desired[name]
        return sum((b["t"] - a["t"]) * max(0, replicas - a["ready"][name]) for a, b in zip(window, window[1:]))

    def per_workload(self, since: float) -> dict[str, dict]:
        """Each workload's fewest ready replicas and replica-seconds lost since `since`."""
        window = self.window(since)
        return {name: {"min_ready": min(s["ready"][name] for s in window),
                       "replica_seconds_lost": round(self.lost(window, name), 1)} for name in self.desired}

    def losses(self, since: float) -> dict:
        """Availability over the samples taken since `since` (seconds on this run's clock)."""
        window = self.window(since)
        zero, below = set(), set()
        lost = sum(self.lost(window, name) for name in self.desired)
        for s in window:
            zero.update(n for n, c in s["ready"].items() if c == 0)
            below.update(n for n, c in s["ready"].items() if c < self.floor[n])
        return {"workloads_with_zero_ready": len(zero), "zero_ready_names": sorted(zero),
                "workloads_below_floor": len(below), "below_floor_names": sorted(below),
                "replica_seconds_lost": round(lost, 1)}


APPROACHES = ("spot-extender", "webhook", "native")


def run_approach(approach: str, args, workloads) -> dict:
    native = approach == "native"
    cluster = ControlPlane(log=print, pod_ready_ms=int(args.startup * 1000))
    tls: tuple = ()
    if approach == "webhook":  # kube-apiserver calls webhooks over HTTPS only
        ca, cert, key = tls = make_tls(cluster.workdir / "tls")
        cluster.extender = ExtenderOptions(port=cluster.extender.port, https=True, ca_file=str(ca))
    print(f"==> {approach}", flush=True)
    try:
        cluster.start()
        if approach != "spot-extender":
            cluster.start_scheduler(use_extender=False)
        if not native:
            process = ExtenderProcess(
                cluster, "--log-format=json", f"--drain-notice={o.INTERRUPTION_TAINT['key']}={args.notice:g}s",
                f"--rebalance-interval={args.rebalance_interval}s",
                f"--move-cooldown={args.move_cooldown}s", f"--max-moves-per-minute={args.max_moves}",
                "--lease-duration=6s", "--renew-deadline=4s", "--retry-period=1s",
                *([f"--tls-cert-file={tls[1]}", f"--tls-key-file={tls[2]}"] if tls else []),
                ca_file=tls[0] if tls else None).start()
            if tls:
                kube.create(cluster.api, webhook_configuration(process.url, tls[0]))
        run = Scenario(approach, cluster, workloads, args.nodes_per_pool, args.sample_every)
        run.add_on_demand()
        run.add_spot()
        kube.namespace(cluster.api, NAMESPACE)
        run.event("deploy")
        for obj in manifests(workloads, native):
            kube.create(cluster.api, obj)
        steady = run.settle(args.settle, args.settle_timeout)
        run.event(f"steady: spot share {steady['spot_share']}")

        pools_start = run.samples[-1]["t"]
        for key in list(run.spot_pools)[:args.pools_one_at_a_time or None]:
            run.reclaim([key], args.notice)
            run.sample_until(run.all_ready, args.recover_timeout)
            kind, zone = key.split("/")
            run.add_spot([(kind, zone)])
            run.event(f"{key} back")
        pools = run.losses(pools_start)
        before_all = run.settle(args.settle, args.settle_timeout)

        all_start = run.samples[-1]["t"]
        run.event("reclaim all spot")
        run.reclaim(list(run.spot_pools), args.notice)
        recovered = run.sample_until(run.all_ready, args.recover_timeout)
        at_once = run.losses(all_start)
        run.event("every replica ready again" if recovered is not None else "not all ready at the timeout")
        run.add_spot()
        run.event("spot returns")
        target = steady["on_spot"]
        back = run.sample_until(lambda s: s["on_spot"] >= target and run.all_ready(s), args.return_timeout,
                                args.return_stall)
        run.event(f"spot share back after {back}s" if back is not None
                  else f"spot share not back: {run.samples[-1]['spot_share']}")
    finally:
        cluster.cleanup()
    return {
        "approach": approach,
        "steady_spot_share": steady["spot_share"],
        "steady_on_spot": steady["on_spot"],
        "spot_share_before_all_at_once": before_all["spot_share"],
        "pools_one_at_a_time": pools,
        "all_at_once": {**at_once, "seconds_to_all_ready": recovered},
        "seconds_to_steady_share_after_return": back,
        "spot_share_after_return": run.samples[-1]["spot_share"],
        "events": run.events,
        "timeline": [{k: s[k] for k in ("t", "ready_total", "on_spot", "spot_share")} for s in run.samples],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", choices=("full", "small"), default="full")
    parser.add_argument("--nodes-per-pool", type=int, default=3)
    parser.add_argument("--notice", type=float, default=10, help="seconds from termination taint to the node vanishing")
    parser.add_argument("--startup", type=float, default=5, help="seconds from binding to Ready (KWOK delay)")
    parser.add_argument("--sample-every", type=float, default=0.5)
    parser.add_argument("--settle", type=float, default=15, help="quiet seconds that count as steady")
    parser.add_argument("--settle-timeout", type=float, default=240)
    parser.add_argument("--recover-timeout", type=float, default=120)
    parser.add_argument("--return-timeout", type=float, default=900)
    parser.add_argument("--return-stall", type=float, default=60,
                        help="the return phase ends once no replica moved to or from spot for this long")
    parser.add_argument("--rebalance-interval", type=float, default=10)
    parser.add_argument("--move-cooldown", type=float, default=5)
    parser.add_argument("--max-moves", type=int, default=120, help="spot-extender --max-moves-per-minute")
    parser.add_argument("--pools-one-at-a-time", type=int, default=0,
                        help="spot pools reclaimed one at a time before all at once (0: every pool)")
    parser.add_argument("--approaches", default=",".join(APPROACHES))
    parser.add_argument("--out-dir", default=str(OUT_DIR))
    args = parser.parse_args(argv)
    workloads = FULL if args.workloads == "full" else SMALL
    results = [run_approach(a, args, workloads) for a in args.approaches.split(",")]
    report = {
        "benchmark": "availability",
        "settings": {k: v for k, v in vars(args).items() if k not in ("out_dir", "approaches")},
        **workload_fields(workloads),
        "results": results,
    }
    print_table(report)
    publish(report, args.out_dir, plots.availability_timeline)
    return 0


def print_table(report: dict) -> None:
    print(f"\n{len(report['workloads'])} workloads, {sum(w['replicas'] for w in report['workloads'])} replicas, "
          f"room on spot sum(R-k) = {report['spot_room']}")
    print(f"{'approach':<15}{'steady share':>13}{'phase':>16}{'zero-ready':>11}{'below floor':>12}"
          f"{'replica-s lost':>15}{'back to steady s':>17}")
    for r in report["results"]:
        for phase in ("pools_one_at_a_time", "all_at_once"):
            p = r[phase]
            print(f"{r['approach']:<15}{r['steady_spot_share']:>13}{phase[:15]:>16}{p['workloads_with_zero_ready']:>11}"
                  f"{p['workloads_below_floor']:>12}{p['replica_seconds_lost']:>15}"
                  f"{str(r['seconds_to_steady_share_after_return']):>17}")


if __name__ == "__main__":
    sys.exit(main())
