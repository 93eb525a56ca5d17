"""Memory the index keeps after churn, in-process (no cluster): `python -m tests.perf.index_churn`.

Each round adds 3 spot nodes (every third round under an interruption notice), a
Deployment with its ReplicaSet and 5 pods, asks the floors about every workload, then
deletes it all. It prints the memory tracemalloc traces after a warm-up and after the
remaining rounds: what the index keeps of things that are gone. docs/soak.md quotes it.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tracemalloc

from spot_extender.assembly import build
from spot_extender.cluster.index import KIND_NAMES, NODE, POD
from spot_extender.core.settings import Settings
from tests.helpers import objects as f

ITN = {"key": "aws-node-termination-handler/spot-itn", "effect": "NoSchedule"}


def churn(parts, r: int) -> None:
    index = parts.index
    nodes = [f.node(f"spot-{r}-{j}", "spot", taints=[ITN] if r % 3 == 0 else None) for j in range(3)]
    for node in nodes:
        index.apply(NODE, "ADDED", node)
    name = f"app-{r}"
    deployment, rs = f.deployment(name, 5), f.replicaset(f"{name}-1", name, 5)
    index.apply("Deployment", "ADDED", deployment)
    index.apply("ReplicaSet", "ADDED", rs)
    pods = []
    for j in range(5):
        pod = f.pod(f"{name}-1-{j}", owner=("ReplicaSet", f"{name}-1"), labels={"app": name},
                    node_name=f"spot-{r}-{j % 3}" if j else "od-0")
        pod["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
        pod["status"]["conditions"][0]["lastTransitionTime"] = "2026-01-01T00:00:05Z"
        index.apply(POD, "ADDED", pod)
        pods.append(pod)
    for workload in index.top_level_workloads():
        parts.floors.of_workload(workload)
    for pod in pods:
        index.apply(POD, "DELETED", pod)
    index.apply("ReplicaSet", "DELETED", rs)
    index.apply("Deployment", "DELETED", deployment)
    for node in nodes:
        index.apply(NODE, "DELETED", node)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=4000)
    args = parser.parse_args(argv)
    parts = build(Settings())
    for kind in KIND_NAMES:
        parts.index.replace(kind, [])
    for i in range(4):
        parts.index.apply(NODE, "ADDED", f.node(f"od-{i}", "on-demand"))
    tracemalloc.start()
    for r in range(args.warmup):
        churn(parts, r)
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    for r in range(args.warmup, args.warmup + args.rounds):
        churn(parts, r)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    print(f"traced after {args.warmup} warm-up rounds: {before} B; after {args.rounds} more: {after} B; "
          f"growth {after - before} B ({(after - before) / args.rounds:.1f} B a round)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
