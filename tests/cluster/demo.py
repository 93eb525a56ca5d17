"""`make demo`: a real local control plane, spot-extender as both admission webhook and
scheduler extender, sample workloads with their roles, every spot node reclaimed at once
(drained in waves over its interruption notice, then deleted), and the return to spot once
capacity comes back. A second act restarts kube-scheduler without the extender, as on a
managed control plane, and places new workloads by the webhook's roles alone.

Run: .venv/bin/python -m tests.cluster.demo (make demo)
Exit code 0 when every workload kept at least its floor k of ready replicas throughout
the reclaim, came back to full strength, went back to spot down to its floor, and in the
second act ran exactly k floor pods on on-demand and the rest on spot;
1 otherwise; 128+signal when interrupted.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from tests.cluster.controlplane import ControlPlane, ExtenderOptions, ExtenderProcess, make_tls
from tests.cluster.demo_run import run
from tests.helpers import kube
from tests.helpers import objects as o
from tests.helpers.sampling import ReadySampler, Sample
from tests.helpers.waiting import wait_for
from tests.helpers.webhook import webhook_configuration

NS = "demo"
MANAGED_NS = "managed"  # the second act's namespace
WORKLOADS = [("admin", "Deployment", 1), ("web", "Deployment", 6), ("cache", "StatefulSet", 3)]
APPS = [name for name, _, _ in WORKLOADS]
DRAIN_TIMEOUT = 60.0  # well inside the 2-minute notice, with room for a busy machine
RECOVERY_TIMEOUT = 240  # pod GC alone waits 40-60 s on a deleted node; the machine may be busy
START = time.monotonic()


def step(msg: str) -> float:
    print(f"==> {msg}", flush=True)
    return time.monotonic()


def done(since: float, msg: str) -> None:
    print(f"    {msg} ({time.monotonic() - since:.1f}s)", flush=True)


def spot_nodes() -> list[dict]:
    # 3 instance types x 2 zones: 6 capacity pools, reclaimed here all at once (the worst case).
    types = ("m5.large", "c5.large", "r5.large")
    return [o.fake_node(f"spot-{i + 1}", "spot", f"zone-{'ab'[i % 2]}", types[i // 2]) for i in range(6)]


def on_demand_nodes() -> list[dict]:
    return [o.fake_node(f"od-{i + 1}", "on-demand", f"zone-{'ab'[i % 2]}", "m5.xlarge") for i in range(3)]


def at_once(fn, items) -> None:
    """Call fn on every item concurrently, as a provider reclaiming capacity would."""
    with ThreadPoolExecutor(len(items)) as pool:
        list(pool.map(fn, items))


def deploy(cp: ControlPlane, ns: str = NS) -> None:
    kube.namespace(cp.api, ns)
    # The PDB first, so spot-extender already knows k=2 when the StatefulSet's pods arrive.
    kube.create(cp.api, o.pdb("cache", {"app": "cache"}, min_available=2, namespace=ns))
    kube.create(cp.api, o.deployment("admin", 1, namespace=ns))
    kube.create(cp.api, o.deployment("web", 6, namespace=ns))
    kube.create(cp.api, o.statefulset("cache", 3, namespace=ns))
    for name, _, replicas in WORKLOADS:
        kube.wait_ready(cp.api, ns, name, replicas, timeout=180)


def floors(ext: ExtenderProcess, ns: str) -> dict[str, dict]:
    """/debug/workloads for the namespace, once it lists every workload (it may be a second old)."""
    def listed():
        states = {w["name"]: w for w in json.loads(ext.get("/debug/workloads"))["workloads"] if w["namespace"] == ns}
        return states if all(name in states for name, _, _ in WORKLOADS) else None

    return wait_for(listed, 10, what=f"/debug/workloads to list every workload of {ns}")


def show(cp: ControlPlane, ext: ExtenderProcess, ns: str = NS) -> dict[str, int]:
    """Print a placement table per workload, with each pod's role; return each workload's floor k."""
    states, nodes, ks = floors(ext, ns), kube.node_facts(cp.api), {}
    for name, kind, _ in WORKLOADS:
        replicas = cp.api.get(f"{kube.collection(kind, ns)}/{name}")["spec"]["replicas"]
        pods = kube.live(kube.placements(cp.api, ns, name, nodes))
        state = states.get(name, {})
        ks[name] = state.get("floor", 0)
        print(f"\n    {kind} {name}: R={replicas}  k={ks[name]} ({state.get('floorSource', '?')})"
              f"  on on-demand={kube.on_demand(pods)}  on spot={sum(p.capacity == 'spot' for p in pods)}"
              f"  floor pods={sum(p.role == 'floor' for p in pods)}")
        print(f"      {'pod':<24} {'role':<6} {'node':<7} {'class':<10} {'pool':<18} ready")
        for p in pods:
            print(f"      {p.pod:<24} {p.role or '-':<6} {p.node or '-':<7} {p.capacity or '-':<10} {p.pool:<18} "
                  f"{'yes' if p.ready else 'no'}")
    print()
    return ks


def roles_hold(cp: ControlPlane, ks: dict[str, int], ns: str) -> bool:
    """Exactly k floor pods per workload, all on on-demand, and every spot pod on spot."""
    nodes = kube.node_facts(cp.api)
    for name, _, _ in WORKLOADS:
        pods = kube.live(kube.placements(cp.api, ns, name, nodes))
        floor = [p for p in pods if p.role == "floor"]
        if len(floor) != ks[name] or any(p.capacity != "on-demand" for p in floor):
            return False
        if any(p.capacity != "spot" for p in pods if p.role == "spot"):
            return False
    return True


class Monitor:
    """Samples the API server every 0.5s: per workload, ready replicas on nodes that still
    exist; prints a row whenever something changed."""

    def __init__(self, cp: ControlPlane):
        self.sampler = ReadySampler(cp.api, NS, APPS, interval=0.5, on_sample=self.observe)
        self.last = None
        self.full_since: dict[str, float | None] = {name: 0.0 for name in APPS}

    def event(self, msg: str) -> None:
        print(f"    {time.monotonic() - self.sampler.started:6.1f}s  {msg}", flush=True)

    def observe(self, sample: Sample) -> None:
        row, gone, pending = [], 0, 0
        for name, _, replicas in WORKLOADS:
            pods, ready = sample.pods[name], sample.ready(name)
            # Full: exactly R live pods, all ready, none left behind on a deleted node.
            full = len(pods) == replicas and ready == replicas
            if not full:
                self.full_since[name] = None
            elif self.full_since[name] is None:
                self.full_since[name] = sample.t
            gone += sum(bool(p.node) and p.node not in sample.nodes for p in pods)
            pending += sum(not p.node for p in pods)
            row.append(f"{name} {ready}/{replicas}")
        line = "   ".join(row) + f"   | {gone} pods on deleted nodes, {pending} pending"
        if line != self.last:
            self.event(line)
            self.last = line

    def run(self, seconds: float, until) -> bool:
        """Sample until until(sample) holds, for at most `seconds`; then one last look."""
        return self.sampler.sample_until(until, seconds) is not None or until(self.sampler.sample())

    def full(self) -> bool:
        return all(t is not None for t in self.full_since.values())

    @property
    def low(self) -> dict[str, int]:
        """Each workload's fewest ready replicas at any sample (reclaim() takes the first), R at most."""
        return {name: min(replicas, self.sampler.minimum[name]) for name, _, replicas in WORKLOADS}


def reclaim(cp: ControlPlane, spot: list[str]) -> Monitor:
    m = Monitor(cp)
    m.sampler.sample()

    def taint(name: str) -> None:
        taints = cp.api.get(f"/api/v1/nodes/{name}")["spec"].get("taints", [])
        cp.api.merge_patch(f"/api/v1/nodes/{name}", {"spec": {"taints": taints + [o.INTERRUPTION_TAINT]}})

    at_once(taint, spot)
    m.event(f"tainted {len(spot)} spot nodes {o.INTERRUPTION_TAINT['key']}:NoSchedule (interruption notice)")
    # The controller drains the doomed nodes through the Eviction API, paced to the 2-minute
    # notice: a few replicas of each workload at a time, the next once an earlier one's
    # replacement is Ready.
    # Pods here start at once, so the waves take seconds, not the whole notice.
    drained = m.run(DRAIN_TIMEOUT, lambda sample: m.full() and not sample.on("spot"))
    m.event("spot nodes drained: every replica ready elsewhere" if drained
            else f"spot nodes NOT drained in {DRAIN_TIMEOUT:.0f}s")
    at_once(lambda name: kube.delete(cp.api, "Node", name), spot)
    m.event(f"deleted {len(spot)} spot Node objects (instances gone); the pod GC removes their pods")
    m.run(RECOVERY_TIMEOUT, lambda _: m.full())
    return m


def wait_back_on_spot(cp: ControlPlane, ks: dict[str, int], timeout: float) -> bool:
    """Until each workload runs exactly k replicas on on-demand, all ready; prints progress."""
    last = None

    def settled(sample: Sample) -> bool:
        nonlocal last
        row, done = [], True
        for name, _, replicas in WORKLOADS:
            pods = kube.live(sample.pods[name])
            on_demand = kube.on_demand(pods)
            done &= on_demand == ks[name] and len(pods) == replicas and all(p.ready for p in pods)
            row.append(f"{name} {on_demand} on-demand/{len(pods)}")
        if row != last:
            print("    " + "   ".join(row), flush=True)
            last = row
        return done

    return ReadySampler(cp.api, NS, APPS, interval=1).sample_until(settled, timeout) is not None


class Observer(Protocol):
    """Watches a demo run from outside (tests/cluster/dashboard.py: Prometheus scraping it)."""

    def started(self, cluster: ControlPlane, extender: ExtenderProcess, ca: Path) -> None: ...

    def finished(self) -> None: ...


def main(observer: Observer | None = None) -> int:
    cp = ControlPlane(log=lambda msg: print(msg, flush=True))
    # HTTPS: kube-apiserver calls webhooks over TLS only, and kube-scheduler checks the same CA.
    ca, cert, key = make_tls(cp.workdir / "tls")
    cp.extender = ExtenderOptions(port=cp.extender.port, https=True, ca_file=str(ca))

    def acts() -> int:
        failed = True
        step("starting control plane (etcd, kube-apiserver, controller-manager, kube-scheduler, KWOK)")
        cp.start()
        t = step("starting spot-extender: admission webhook and scheduler extender in one process")
        # A short rebalance interval and cooldown so the return to spot fits in a demo.
        ext = ExtenderProcess(cp, "--log-format=text", "--rebalance-interval=10s", "--move-cooldown=1s",
                              "--max-moves-per-minute=120", f"--tls-cert-file={cert}", f"--tls-key-file={key}",
                              ca_file=ca).start()
        kube.create(cp.api, webhook_configuration(ext.url, ca))
        done(t, f"ready at {ext.url}; k8s/webhook-configuration's MutatingWebhookConfiguration registered")
        if observer is not None:
            observer.started(cp, ext, ca)

        t = step("adding 6 spot nodes (3 instance types x 2 zones) and 3 on-demand nodes")
        kube.add_nodes(cp.api, spot_nodes() + on_demand_nodes(), timeout=120)
        done(t, "9 nodes Ready")

        t = step(f"deploying into namespace {NS}: Deployment admin (1), Deployment web (6), "
                 "StatefulSet cache (3) + PDB minAvailable=2")
        deploy(cp)
        done(t, "all replicas ready")
        ks = show(cp, ext)

        spot = [n["metadata"]["name"] for n in spot_nodes()]
        t = step("reclaiming every spot node at once (sampling ready replicas every 0.5s)")
        m = reclaim(cp, spot)
        done(t, "reclaim over")

        step("result (min ready = fewest ready replicas on surviving nodes at any sample)")
        failed = False
        for name, _, replicas in WORKLOADS:
            survived = m.low[name] >= ks[name]
            back = m.full_since[name]
            failed |= not survived or back is None
            recovered = ("never dropped" if m.low[name] == replicas else
                         f"back to {replicas}/{replicas} at {back:.1f}s" if back is not None else "NOT back to full")
            print(f"    {name:<6} R={replicas} k={ks[name]}  min ready {m.low[name]}  "
                  f"survived: {'yes' if survived else 'NO'}  ({recovered})")

        t = step("spot capacity returns: re-creating the 6 spot nodes")
        kube.add_nodes(cp.api, spot_nodes(), timeout=120)
        done(t, "spot nodes Ready")
        t = step("the controller moves surplus on-demand replicas back to spot, one at a time per workload")
        back = wait_back_on_spot(cp, ks, timeout=180)
        done(t, "every workload is back at its floor on on-demand" if back else "NOT back at the floors")
        failed |= not back
        step("where pods are now")
        show(cp, ext)

        t = step("act 2, a managed cluster: kube-scheduler restarted WITHOUT the extender; only the "
                 "roles the webhook writes into pod specs steer it")
        cp.start_scheduler(use_extender=False)
        deploy(cp, MANAGED_NS)
        done(t, f"the same three workloads in namespace {MANAGED_NS}, all replicas ready")
        managed_ks = show(cp, ext, MANAGED_NS)
        held = roles_hold(cp, managed_ks, MANAGED_NS)
        print(f"    exactly k floor pods on on-demand, every spot pod on spot: {'yes' if held else 'NO'}")
        failed |= not held
        if observer is not None:
            observer.finished()
        print(f"\n==> {'FAILED' if failed else 'done'} in {time.monotonic() - START:.0f}s", flush=True)
        return 1 if failed else 0

    return run(acts, cp, cp.cleanup)

if __name__ == "__main__":
    sys.exit(main())
