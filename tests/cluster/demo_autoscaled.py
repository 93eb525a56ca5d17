"""`make demo-autoscaled`: Karpenter (its KWOK provider) makes every worker node of a local
control plane that starts with none; spot-extender is the pods' admission webhook only and
kube-scheduler runs as it ships, the managed-cluster case. Three workloads arrive,
Karpenter buys on-demand for their floor pods and spot for the rest; then every spot
NodeClaim is deleted at once, as an interruption would, and the floors hold while
Karpenter buys spot again.

Run: .venv/bin/python -m tests.cluster.demo_autoscaled (make demo-autoscaled)
Exit code 0 when each workload ran exactly k floor pods on on-demand and the rest on spot,
kept at least k ready replicas through the spot loss and came back the same way;
1 otherwise; 128+signal when interrupted.
"""

from __future__ import annotations

import sys
import time

from tests.cluster.autoscaled import AutoscaledCluster
from tests.cluster.demo_run import run
from tests.cluster.karpenter import capacity_counts, vcpus
from tests.helpers import kube
from tests.helpers import objects as o
from tests.helpers.layout import Watch, settled

NS = "shop"
FLOOR_ANNOTATION = "spot-extender.io/on-demand-floor"
# name, kind, replicas, floor k (the StatefulSet's by annotation, not a PDB: an evicted
# StatefulSet pod comes back under the same name, and its PDB counts that name as disrupted
# for 2 minutes, holding every move back that long)
WORKLOADS = (("admin", "Deployment", 1, 1), ("web", "Deployment", 6, 1), ("cache", "StatefulSet", 3, 2))
FLOORS = {name: k for name, _, _, k in WORKLOADS}
REPLICAS = {name: r for name, _, r, _ in WORKLOADS}
SETTLE_TIMEOUT = 240
FLAGS = ("--log-format=json", "--rebalance-interval=3s", "--move-cooldown=1s", "--max-moves-per-minute=600",
         "--lease-duration=6s", "--renew-deadline=4s", "--retry-period=1s")
START = time.monotonic()


def step(msg: str) -> float:
    print(f"==> {msg}", flush=True)
    return time.monotonic()


def nodes_line(env: AutoscaledCluster) -> str:
    nodes = env.karpenter.nodes()
    cpus = {kind: sum(vcpus(n) for n in nodes if n["metadata"]["labels"].get(o.KARPENTER_CAPACITY_LABEL) == kind)
            for kind in ("on-demand", "spot")}
    return f"Karpenter's nodes: {capacity_counts(nodes)}, vCPUs {cpus}"


def main() -> int:
    began = step("a control plane with no worker node, Karpenter's KWOK provider (one NodePool, spot and "
             "on-demand), spot-extender as the admission webhook, kube-scheduler without the extender")
    env = AutoscaledCluster(FLAGS, log=print)

    def acts() -> int:
        failed = False
        env.start()
        print(f"    up in {time.monotonic() - began:.1f}s", flush=True)
        step(f"workloads arrive: {', '.join(f'{k} {n} R={r} k={f}' for n, k, r, f in WORKLOADS)}")
        kube.namespace(env.api, NS)
        for name, kind, replicas, k in WORKLOADS:
            if kind == "Deployment":
                kube.create(env.api, o.deployment(name, replicas, namespace=NS))
            else:
                floor = {FLOOR_ANNOTATION: str(k)}
                kube.create(env.api, o.statefulset(name, replicas, namespace=NS, annotations=floor))
        watch = Watch(env.api, NS, REPLICAS, FLOORS)
        took = watch.until_settled(SETTLE_TIMEOUT)
        failed |= took is None
        print(f"    {f'floor pods on on-demand, the rest on spot after {took}s' if took is not None else 'NOT settled'}"
              f"; {nodes_line(env)}", flush=True)

        step("every spot NodeClaim deleted at once, as an interruption would")
        spot = {n["metadata"]["name"] for n in env.karpenter.nodes()
                if n["metadata"]["labels"].get(o.KARPENTER_CAPACITY_LABEL) == "spot"}
        print(f"    deleted {env.karpenter.delete_node_claims('spot')}", flush=True)
        watch = Watch(env.api, NS, REPLICAS, FLOORS)
        back = watch.until(lambda s: not spot & set(s.nodes) and settled(s, REPLICAS, FLOORS), SETTLE_TIMEOUT)
        step("result (min ready = fewest ready replicas at any sample, twice a second)")
        for name, _, replicas, k in WORKLOADS:
            held = watch.sampler.minimum[name] >= k
            failed |= not held
            print(f"    {name:<6} R={replicas} k={k}  min ready {watch.sampler.minimum[name]}  "
                  f"floor held: {'yes' if held else 'NO'}")
        failed |= back is None or bool(watch.floor_on_spot)
        print(f"    spot bought again and every spot pod back on spot: "
              f"{f'yes, after {back}s' if back is not None else 'NO'}; {nodes_line(env)}")
        print(f"\n==> {'FAILED' if failed else 'done'} in {time.monotonic() - START:.0f}s", flush=True)
        return 1 if failed else 0

    return run(acts, env.cluster, env.cleanup)

if __name__ == "__main__":
    sys.exit(main())
