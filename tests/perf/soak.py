"""`make soak`: spot-extender through 30 minutes of churn on its own control plane (not in CI).

Every few seconds one change, drawn from a seeded random stream: a workload created
(Deployment or StatefulSet, some with a PDB), scaled or deleted; a spot node added or
removed; a whole spot pool reclaimed (AWS interruption taint, a short notice, then the
nodes and their pods gone) and a new one added. Once, at 40% of the run, kube-apiserver
is stopped for 20 s. Every minute it samples the extender process: RSS, open file
descriptors, asyncio tasks, and whether its index equals a fresh list from the API
server (R, k, and replicas on on-demand and on spot per workload, from
/debug/workloads). Writes build/bench/soak.json and soak.png; docs/soak.md reads them.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from tests.cluster.api import ApiError
from tests.cluster.controlplane import ControlPlane, ExtenderProcess
from tests.helpers import kube
from tests.helpers import objects as o
from tests.helpers.metrics import samples, scrape
from tests.perf import plots
from tests.perf.bench_availability import floor_of
from tests.perf.report import OUT_DIR, publish

NS = "soak"
POOLS = [("m5.large", "zone-a"), ("c5.large", "zone-b"), ("r5.large", "zone-c"), ("m6i.large", "zone-a")]
NOTICE = 20.0  # seconds the soak's interruption notice gives (the extender is told the same)


class Soak:
    def __init__(self, cluster: ControlPlane, extender: ExtenderProcess, seed: int):
        self.cluster, self.api, self.extender = cluster, cluster.api, extender
        self.rng = random.Random(seed)
        self.started = time.monotonic()
        self.workloads: dict[str, dict] = {}  # name -> {"kind", "replicas", "min_available"}
        self.spot: dict[str, list[str]] = {}  # pool key -> node names
        self.vanishing: list[tuple[float, list[str]]] = []  # (when, nodes) reclaimed pools still standing
        self.serial = 0
        self.events: list[dict] = []
        self.samples: list[dict] = []
        self.counts: dict[str, int] = {}

    def now(self) -> float:
        return round(time.monotonic() - self.started, 1)

    def event(self, what: str) -> None:
        self.events.append({"t": self.now(), "event": what})
        print(f"    [{self.now():7.1f}s] {what}", flush=True)

    def next_name(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}-{self.serial}"

    # ---- nodes ---------------------------------------------------------------------

    def add_on_demand(self, count: int) -> None:
        kube.add_nodes(self.api, [o.fake_node(f"od-{i}", "on-demand", f"zone-{'ab'[i % 2]}") for i in range(count)])

    def add_pool(self, size: int) -> None:
        kind, zone = self.rng.choice(POOLS)
        key = self.next_name(f"{kind.split('.')[0]}-{zone}")
        names = [f"spot-{key}-{i}" for i in range(size)]
        kube.add_nodes(self.api, [o.fake_node(n, "spot", zone, kind) for n in names])
        self.spot[key] = names
        self.count("pool_added")

    def remove_nodes(self, names: list[str]) -> None:
        for name in names:
            kube.vanish_node(self.api, name)

    # ---- one change ----------------------------------------------------------------

    def step(self) -> None:
        due = [entry for entry in self.vanishing if entry[0] <= time.monotonic()]
        for entry in due:
            self.vanishing.remove(entry)
            self.remove_nodes(entry[1])
            self.count("pool_vanished")
        actions = [(self.create_workload, 4 if len(self.workloads) < 30 else 0),
                   (self.scale_workload, 5 if self.workloads else 0),
                   (self.delete_workload, 2 if len(self.workloads) > 8 else 0),
                   (self.add_spot_node, 2 if sum(map(len, self.spot.values())) < 16 else 0),
                   (self.remove_spot_node, 2 if sum(map(len, self.spot.values())) > 4 else 0),
                   (self.reclaim_pool, 1 if len(self.spot) > 1 else 0),
                   (lambda: self.add_pool(3), 1 if len(self.spot) < 4 else 0)]
        action = self.rng.choices([a for a, _ in actions], [w for _, w in actions])[0]
        action()

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def create_workload(self) -> None:
        kind = self.rng.choice(("Deployment", "Deployment", "StatefulSet"))
        name = self.next_name("sts" if kind == "StatefulSet" else "app")
        replicas = self.rng.randint(1, 8)
        min_available = self.rng.choice((None, None, 1, 2)) if replicas > 2 else None
        make = o.deployment if kind == "Deployment" else o.statefulset
        if min_available is not None:
            kube.create(self.api, o.pdb(name, {"app": name}, min_available=min_available, namespace=NS))
        kube.create(self.api, make(name, replicas, namespace=NS, cpu="50m"))
        self.workloads[name] = {"kind": kind, "replicas": replicas, "min_available": min_available}
        self.count("workload_created")

    def scale_workload(self) -> None:
        name = self.rng.choice(sorted(self.workloads))
        w = self.workloads[name]
        w["replicas"] = self.rng.randint(0 if w["min_available"] is None else 1, 10)
        path = f"{kube.collection(w['kind'], NS)}/{name}/scale"
        self.api.merge_patch(path, {"spec": {"replicas": w["replicas"]}})
        self.count("workload_scaled")

    def delete_workload(self) -> None:
        name = self.rng.choice(sorted(self.workloads))
        w = self.workloads.pop(name)
        kube.delete(self.api, w["kind"], name, NS)
        if w["min_available"] is not None:
            kube.delete(self.api, "PodDisruptionBudget", name, NS)
        self.count("workload_deleted")

    def add_spot_node(self) -> None:
        key = self.rng.choice(sorted(self.spot))
        first = self.api.get(f"/api/v1/nodes/{self.spot[key][0]}")["metadata"]["labels"]
        name = f"spot-{key}-{self.next_name('n')}"
        kube.add_nodes(self.api, [o.fake_node(name, "spot", first["topology.kubernetes.io/zone"],
                                              first["node.kubernetes.io/instance-type"])])
        self.spot[key].append(name)
        self.count("spot_node_added")

    def remove_spot_node(self) -> None:
        key = self.rng.choice([k for k, names in self.spot.items() if len(names) > 1] or sorted(self.spot))
        name = self.spot[key].pop(self.rng.randrange(len(self.spot[key])))
        self.remove_nodes([name])
        if not self.spot[key]:
            del self.spot[key]
        self.count("spot_node_removed")

    def reclaim_pool(self) -> None:
        key = self.rng.choice(sorted(self.spot))
        names = self.spot.pop(key)
        for name in names:
            self.api.merge_patch(f"/api/v1/nodes/{name}", {"spec": {"taints": [o.INTERRUPTION_TAINT]}})
        self.vanishing.append((time.monotonic() + NOTICE, names))
        self.event(f"pool {key} reclaimed ({len(names)} nodes, {NOTICE:g} s notice)")
        self.count("pool_reclaimed")

    # ---- sampling ------------------------------------------------------------------

    def expected(self) -> dict[str, tuple]:
        """(R, k, on-demand, spot) per workload, from the API server."""
        nodes = kube.node_facts(self.api)
        out = {}
        for name, w in self.workloads.items():
            k = floor_of(w["replicas"], w["min_available"], namespace=NS)
            live = [p for p in kube.live(kube.placements(self.api, NS, name, nodes)) if p.capacity]
            out[name] = (w["replicas"], k, sum(p.capacity == "on-demand" for p in live),
                         sum(p.capacity == "spot" for p in live))
        return out

    def seen(self) -> dict[str, tuple]:
        workloads = json.loads(self.extender.get("/debug/workloads"))["workloads"]
        return {w["name"]: (w["replicas"], w["floor"], w["onDemand"], w["spot"]) for w in workloads
                if w["namespace"] == NS}

    def diffs(self, settle: float) -> list[dict]:
        """Workloads whose index view differs from a fresh list, after letting watches
        catch up for up to `settle` seconds (a change made a moment ago is in flight)."""
        deadline = time.monotonic() + settle
        while True:
            expected, seen = self.expected(), self.seen()
            diff = [{"workload": n, "api": list(e), "index": list(seen[n]) if n in seen else None}
                    for n, e in sorted(expected.items()) if seen.get(n) != e]
            diff += [{"workload": n, "api": None, "index": list(v)} for n, v in sorted(seen.items())
                     if n not in expected]
            if not diff or time.monotonic() >= deadline:
                return diff
            time.sleep(1)

    def sample(self, settle: float) -> dict:
        pid = self.extender.component.process.pid
        status = Path(f"/proc/{pid}/status").read_text()
        rss_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
        diffs = self.diffs(settle)
        record = {
            "t": self.now(), "rss_mb": round(rss_kb / 1024, 1), "fds": len(list(Path(f"/proc/{pid}/fd").iterdir())),
            "tasks": int(scrape(self.extender, "spot_extender_asyncio_tasks")),
            "workloads": len(self.workloads), "spot_nodes": sum(map(len, self.spot.values())),
            "pods": len(self.api.get(f"/api/v1/namespaces/{NS}/pods")["items"]),
            "index_diffs": len(diffs), "diff_detail": diffs[:5],
        }
        self.samples.append(record)
        print(f"    [{record['t']:7.1f}s] rss {record['rss_mb']} MB, fds {record['fds']}, tasks {record['tasks']}, "
              f"{record['workloads']} workloads / {record['pods']} pods / {record['spot_nodes']} spot nodes, "
              f"index diffs {record['index_diffs']}", flush=True)
        return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--sample-every", type=float, default=60, help="seconds between samples")
    parser.add_argument("--step", type=float, default=3, help="seconds between two changes")
    parser.add_argument("--settle", type=float, default=20,
                        help="seconds a sample waits for the index to catch up with the changes just made")
    parser.add_argument("--api-down", type=float, default=20, help="seconds kube-apiserver is stopped, once")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--startup", type=float, default=2, help="pod start-up, seconds (KWOK delay)")
    parser.add_argument("--out-dir", default=str(OUT_DIR))
    args = parser.parse_args(argv)
    cluster = ControlPlane(log=print, pod_ready_ms=int(args.startup * 1000))
    duration = args.minutes * 60
    try:
        cluster.start()
        extender = ExtenderProcess(cluster, "--log-format=json", "--rebalance-interval=10s", "--move-cooldown=5s",
                                   f"--drain-notice={o.INTERRUPTION_TAINT['key']}={NOTICE:g}s",
                                   "--max-moves-per-minute=120").start()
        soak = Soak(cluster, extender, args.seed)
        soak.add_on_demand(4)
        for _ in range(3):
            soak.add_pool(3)
        kube.namespace(cluster.api, NS)
        soak.event("start")
        soak.sample(args.settle)
        restart_at = 0.4 * duration
        restarted = False
        next_sample = time.monotonic() + args.sample_every
        while time.monotonic() - soak.started < duration:
            cluster.check_running()
            if not restarted and time.monotonic() - soak.started >= restart_at:
                soak.event(f"kube-apiserver stopped for {args.api_down:g} s")
                cluster.stop_apiserver()
                time.sleep(args.api_down)
                cluster.start_apiserver()
                soak.event("kube-apiserver back")
                restarted = True
            try:
                soak.step()
            except ApiError as exc:  # a change racing another (a node just deleted): counted, not fatal
                soak.count(f"change_refused_{exc.status}")
            if time.monotonic() >= next_sample:
                soak.sample(args.settle)
                next_sample = time.monotonic() + args.sample_every
            time.sleep(args.step)
        soak.event("churn over: one last sample after the settle time")
        soak.sample(args.settle)
        healthy = json.loads(extender.get("/healthz")).get("status") == "ok"
        errors = {s.labels["loop"]: s.value
                  for s in samples(extender.get("/metrics"), "spot_extender_loop_errors_total")}
    except BaseException:
        print(cluster.dump_logs(), flush=True)
        raise
    finally:
        cluster.cleanup()
    first, last = soak.samples[1] if len(soak.samples) > 1 else soak.samples[0], soak.samples[-1]
    report = {
        "benchmark": "soak",
        "settings": {k: v for k, v in vars(args).items() if k != "out_dir"},
        "changes": soak.counts,
        "healthy_at_end": healthy,
        "loop_errors": errors,
        "rss_mb_first_minute": first["rss_mb"], "rss_mb_end": last["rss_mb"],
        "rss_mb_max": max(s["rss_mb"] for s in soak.samples),
        "samples_with_index_diffs": sum(s["index_diffs"] > 0 for s in soak.samples),
        "samples": soak.samples, "events": soak.events,
    }
    print(json.dumps({k: v for k, v in report.items() if k not in ("samples", "events")}, indent=2))
    publish(report, args.out_dir, plots.soak_timeline)
    return 0 if healthy and not report["samples_with_index_diffs"] else 1


if __name__ == "__main__":
    sys.exit(main())
