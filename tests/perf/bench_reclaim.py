"""Benchmark: time from a termination taint on a spot node to every pod on it evicted.

Runs the real control plane and the extender (leader, controller on), puts N pods of
a spot-only Deployment on one spot node, taints the node the way the AWS Node
Termination Handler does, and times, from the API server, until every pod there is
terminating or gone. Then the same run's reference: the same number of pods put on a
fresh spot node again, and evicted by this benchmark itself through the Eviction API, 20
at a time like the extender's default, with no taint: what the API server and the
machine allow, so the extender's time over it holds from one machine to the next.
Prints a table and writes build/bench/reclaim.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from tests.cluster.api import ApiError
from tests.cluster.controlplane import ControlPlane, ExtenderProcess
from tests.helpers import kube
from tests.helpers import objects as o
from tests.perf.report import OUT_DIR, publish


def pods_on(api, node: str) -> list[dict]:
    return api.get("/api/v1/pods", fieldSelector=f"spec.nodeName={node}")["items"]


IN_FLIGHT = 20  # the extender's --eviction-concurrency default


def deploy(api, pods: int, node: str, ns: str) -> None:
    kube.add_nodes(api, [o.fake_node(node, "spot", "zone-a", cpu="1000", memory="4000Gi", pods=str(pods + 10))])
    print(f"==> {pods} pods on {node}", flush=True)
    kube.create(api, o.deployment("load", pods, namespace=ns, cpu="10m",
                                  annotations={"spot-extender.io/placement": "spot"}))
    kube.wait_ready(api, ns, "load", pods, timeout=600)
    assert len(pods_on(api, node)) == pods, "every pod should be on the one spot node"


def measure(cluster: ControlPlane, pods: int) -> dict:
    api = cluster.api
    node = f"spot-bench-{pods}"
    ns = kube.namespace(api, f"reclaim-{pods}")
    deploy(api, pods, node, ns)
    started = time.monotonic()
    api.merge_patch(f"/api/v1/nodes/{node}", {"spec": {"taints": [o.RECLAIM_TAINT]}})
    first, total = wait_evicted(api, node, pods, started)
    print(f"    first eviction after {first:.2f}s, all {pods} after {total:.2f}s", flush=True)
    kube.delete_namespace(api, ns, timeout=300)
    kube.delete(api, "Node", node)
    reference = reference_eviction(api, pods)
    return {"pods": pods, "first_eviction_seconds": round(first, 3), "all_evicted_seconds": round(total, 3),
            "pods_per_second": round(pods / total, 1), "reference_evict_seconds": round(reference, 3),
            "over_reference": round(total / reference, 2)}


def reference_eviction(api, pods: int) -> float:
    """Seconds for this benchmark to evict the same number of pods itself, IN_FLIGHT at a time."""
    node, ns = f"spot-reference-{pods}", kube.namespace(api, f"reference-{pods}")
    deploy(api, pods, node, ns)
    names = [p["metadata"]["name"] for p in pods_on(api, node)]

    def evict(name: str) -> None:
        try:
            api.post(f"/api/v1/namespaces/{ns}/pods/{name}/eviction",
                     {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": ns}})
        except ApiError as exc:
            if exc.status != 404:  # gone already (the ReplicaSet settling its count): nothing to evict
                raise

    # Replacements must go elsewhere, and this taint is no going-away signal to the extender.
    api.merge_patch(f"/api/v1/nodes/{node}", {"spec": {"taints": [{"key": "bench/reference", "effect": "NoSchedule"}]}})
    started = time.monotonic()
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        list(pool.map(evict, names))
    _, total = wait_evicted(api, node, pods, started)
    print(f"    reference: {pods} pods evicted by the benchmark itself, {IN_FLIGHT} at a time, in {total:.2f}s",
          flush=True)
    kube.delete_namespace(api, ns, timeout=300)
    kube.delete(api, "Node", node)
    return total


def wait_evicted(api, node: str, pods: int, started: float) -> tuple[float, float]:
    """(first, last): seconds from `started` until the first and every pod on the node is
    terminating or gone."""
    first = None
    while True:
        live = [p for p in pods_on(api, node) if "deletionTimestamp" not in p["metadata"]]
        now = time.monotonic() - started
        if first is None and len(live) < pods:
            first = now
        if not live:
            break
        if now > 300:
            raise TimeoutError(f"{len(live)} pods still on {node} after 300s")
        time.sleep(0.05)
    return first, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--out-dir", default=str(OUT_DIR))
    args = parser.parse_args(argv)
    cluster = ControlPlane(log=print)
    try:
        cluster.start()
        ExtenderProcess(cluster, "--log-format=text", "--lease-duration=6s", "--renew-deadline=4s",
                        "--retry-period=1s").start()
        # Room for the replacements, which the extender sends away from the tainted node.
        kube.add_nodes(cluster.api, [o.fake_node(f"od-{i}", "on-demand", "zone-a", cpu="1000", memory="4000Gi",
                                                 pods="1100") for i in range(2)])
        rows = [measure(cluster, int(size)) for size in args.sizes.split(",")]
    finally:
        cluster.cleanup()
    print(f"\n{'pods':>6}{'first eviction s':>18}{'all evicted s':>15}{'pods/s':>9}{'reference s':>13}{'ratio':>7}")
    for r in rows:
        print(f"{r['pods']:>6}{r['first_eviction_seconds']:>18.2f}{r['all_evicted_seconds']:>15.2f}"
              f"{r['pods_per_second']:>9.1f}{r['reference_evict_seconds']:>13.2f}{r['over_reference']:>7}")
    publish({"benchmark": "reclaim", "settings": {k: v for k, v in vars(args).items() if k != "out_dir"},
             "results": rows}, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
