"""A synthetic cluster for benchmarks: fed through the index's own event handlers
(`populate`), or listed into it page by page through the real Reflector, with objects
the size kube-apiserver sends (`list_into`)."""

from __future__ import annotations

import random
import time
from typing import Iterator

import orjson

from spot_extender.api.kinds import DEPLOYMENT, REPLICASET, WATCHED
from spot_extender.cluster.index import KIND_NAMES, NODE, POD, Index
from spot_extender.cluster.reflector import Reflector
from spot_extender.core.metrics import Metrics
from spot_extender.core.settings import Settings
from tests.helpers import objects as o
from tests.perf.realistic import full_node, full_pod

ZONES = ("zone-a", "zone-b", "zone-c")
INSTANCE_TYPES = ("m5.large", "m5.xlarge", "c5.xlarge", "r5.large")
SPOT_SHARE = 0.8


def node_names(count: int) -> list[str]:
    return [f"node-{i:05d}" for i in range(count)]


def objects_of(kind: str, nodes: int, pods: int, replicas: int = 20, spot_share: float = SPOT_SHARE,
               seed: int = 7, full: bool = False) -> Iterator[dict]:
    """The cluster's objects of one kind: nodes node-NNNNN (the first `spot_share` spot),
    Deployments app-NNNNN of `replicas` pods each, one ReplicaSet each, the first replica
    of each on on-demand and the rest spread over spot. `full`: the size the API server
    lists them (tests/perf/realistic.py)."""
    names = node_names(nodes)
    spot_cut = int(nodes * spot_share)
    if kind == NODE:
        for i, name in enumerate(names):
            node = o.node(name, "spot" if i < spot_cut else "on-demand", zone=ZONES[i % len(ZONES)],
                          instance_type=INSTANCE_TYPES[(i // len(ZONES)) % len(INSTANCE_TYPES)])
            yield full_node(node) if full else node
        return
    rng = random.Random(seed)
    for d in range(pods // replicas):
        name = f"app-{d:05d}"
        if kind == DEPLOYMENT:
            yield o.deployment(name, replicas)
        elif kind == REPLICASET:
            yield o.replicaset(f"{name}-1", name, replicas)
        elif kind == POD:
            for r in range(replicas):
                node = names[rng.randrange(spot_cut, nodes)] if r == 0 else names[rng.randrange(spot_cut)]
                pod = o.pod(f"{name}-1-{r}", owner=("ReplicaSet", f"{name}-1"), node_name=node, labels={"app": name})
                yield full_pod(pod, d * replicas + r) if full else pod


def populate(index: Index, nodes: int, pods: int, replicas: int = 20, spot_share: float = SPOT_SHARE, seed: int = 7) -> None:
    """Fill the index through its watch-event handler."""
    for kind in KIND_NAMES:
        index.replace(kind, [])
    for kind in (NODE, DEPLOYMENT, REPLICASET, POD):
        for obj in objects_of(kind, nodes, pods, replicas, spot_share, seed):
            index.apply(kind, "ADDED", obj)


class ListedCluster:
    """Stands in for the API client's paging: each page is encoded the moment it is asked
    for and decoded with orjson as the client decodes a response, so the process holds one
    page of raw objects at a time, as it does against a real API server."""

    def __init__(self, nodes: int, pods: int, replicas: int):
        self.nodes, self.pods, self.replicas = nodes, pods, replicas
        self.encode_seconds = 0.0  # the server's half of the work: not the extender's to count

    async def pages(self, resource, page_size: int, timeout: float):
        kind = next(k.name for k in WATCHED if k.resource == resource)
        stream = objects_of(kind, self.nodes, self.pods, self.replicas, full=True)
        number = 0
        while True:
            started = time.perf_counter()
            items = [obj for _, obj in zip(range(page_size), stream)]
            number += 1
            last = len(items) < page_size
            meta = {"resourceVersion": "1"} if last else {"continue": str(number)}
            body = orjson.dumps({"kind": "List", "apiVersion": "v1", "metadata": meta, "items": items})
            del items
            self.encode_seconds += time.perf_counter() - started
            page = orjson.loads(body)
            yield page["items"], page["metadata"].get("resourceVersion")
            if last:
                return


async def list_into(index: Index, settings: Settings, metrics: Metrics, nodes: int, pods: int,
                    replicas: int) -> dict:
    """Every watched kind listed into the index by the real Reflector; the seconds it took,
    less the time spent making the pages."""
    cluster = ListedCluster(nodes, pods, replicas)
    started = time.perf_counter()
    for kind in WATCHED:
        await Reflector(cluster, kind, index, settings, metrics).list()
    elapsed = time.perf_counter() - started
    return {"list_and_sync_seconds": round(elapsed - cluster.encode_seconds, 2),
            "page_encode_seconds": round(cluster.encode_seconds, 2)}
