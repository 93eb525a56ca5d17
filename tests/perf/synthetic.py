"""A synthetic cluster fed through the index's own event handlers, for benchmarks."""

from __future__ import annotations

import random

from spot_extender.index import KINDS, NODE, POD, Index
from tests.helpers import objects as o

ZONES = ("zone-a", "zone-b", "zone-c")
INSTANCE_TYPES = ("m5.large", "m5.xlarge", "c5.xlarge", "r5.large")
SPOT_SHARE = 0.8


def node_names(count: int) -> list[str]:
    return [f"node-{i:05d}" for i in range(count)]


def populate(index: Index, nodes: int, pods: int, replicas: int = 20, spot_share: float = SPOT_SHARE, seed: int = 7) -> list[str]:
    """Fill the index; returns the names of the Deployments created."""
    rng = random.Random(seed)
    for kind in KINDS:
        index.replace(kind, [])
    names = node_names(nodes)
    spot_cut = int(nodes * spot_share)
    for i, name in enumerate(names):
        index.apply(
            NODE,
            "ADDED",
            o.node(
                name,
                "spot" if i < spot_cut else "on-demand",
                zone=ZONES[i % len(ZONES)],
                instance_type=INSTANCE_TYPES[(i // len(ZONES)) % len(INSTANCE_TYPES)],
            ),
        )
    deployments = []
    for d in range(pods // replicas):
        name = f"app-{d:05d}"
        deployments.append(name)
        index.apply("Deployment", "ADDED", o.deployment(name, replicas))
        index.apply("ReplicaSet", "ADDED", o.replicaset(f"{name}-1", name, replicas))
        for r in range(replicas):
            # the first replica of each on on-demand, the rest spread over spot
            node = names[rng.randrange(spot_cut, nodes)] if r == 0 else names[rng.randrange(spot_cut)]
            index.apply(
                POD,
                "ADDED",
                o.pod(f"{name}-1-{r}", owner=("ReplicaSet", f"{name}-1"), node_name=node, labels={"app": name}),
            )
    return deployments
