"""A live spot-extender process for the fuzz runs, and valid calls to send it.

The process is tests/perf/extender_server.py: the real app over a synthetic index
(tests/perf/synthetic.py) listed in page by page through the real Reflector, no cluster
needed. Its Deployments are app-00000.., one ReplicaSet app-NNNNN-1 each."""

from __future__ import annotations

import random
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, NamedTuple

from tests.helpers import objects as f
from tests.helpers.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
NODES = 500
# The synthetic index names nodes node-00000..; the first 70% are spot, the rest on-demand.
NAMES = [f"node-{i:05d}" for i in range(NODES)]
ON_DEMAND = set(NAMES[int(NODES * 0.7):])
FLOOR_POD = f.pod("app-00000-9-zz", owner=("ReplicaSet", "app-00000-9"))  # a new revision: floor unmet


def valid_requests(rng: random.Random) -> list[dict]:
    """A /filter or /prioritize call with NodeNames, and one with full Nodes."""
    names = rng.sample(NAMES, 40)
    return [
        {"Pod": FLOOR_POD, "NodeNames": names},
        {"Pod": FLOOR_POD, "Nodes": {"items": [f.node(n, "spot" if n not in ON_DEMAND else "on-demand")
                                               for n in names[:10]]}},
    ]


ADMITTED_POD = f.pod("", owner=("ReplicaSet", "app-00001-1"), labels={"app": "app-00001"})
ADMITTED_POD["spec"].update({
    "tolerations": [{"key": "a", "operator": "Exists"}],
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}},
})


def valid_reviews(rng: random.Random) -> list[dict]:
    """An AdmissionReview of a pod of app-00001 as kube-apiserver sends it, and its dry run."""
    request = {"uid": f"req-{rng.randrange(10**9)}", "kind": {"group": "", "version": "v1", "kind": "Pod"},
               "operation": "CREATE", "namespace": "default", "object": ADMITTED_POD}
    return [{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request},
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {**request, "dryRun": True}}]


class Live(NamedTuple):
    url: str  # http://127.0.0.1:PORT
    pid: int
    loaded: str  # the server's `loaded {...}` line: list-and-sync and controller timings


@contextmanager
def live_extender(*args: str, module: str = "tests.perf.extender_server") -> Iterator[Live]:
    """The server with NODES nodes and these further flags (--pods, --workloads, ...),
    serving once /healthz answers; stopped on the way out."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", module, "--nodes", str(NODES), "--port", str(port), *args],
                              stdout=subprocess.PIPE, cwd=ROOT)
    try:
        loaded = server.stdout.readline().decode().strip()  # the load and controller timings
        assert server.stdout.readline().strip() == b"ready"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.1)
        yield Live(f"http://127.0.0.1:{port}", server.pid, loaded)
    finally:
        server.terminate()
        server.wait(10)
