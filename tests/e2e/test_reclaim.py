"""Every spot node deleted at once: the floors keep every workload serving."""

from __future__ import annotations

import threading
import time

from tests.e2e.conftest import SPOT_NODES
from tests.helpers import kube
from tests.helpers import objects as o
from tests.helpers.waiting import wait_for

WORKLOADS = {  # app: (kind, replicas, floor)
    "web": ("Deployment", 6, 1),
    "api": ("Deployment", 4, 2),
    "db": ("StatefulSet", 3, 2),
}


class ReadySampler(threading.Thread):
    """Samples ready replicas per app from the API server until stopped."""

    def __init__(self, api, ns, apps, interval=0.25):
        super().__init__(daemon=True)
        self.api, self.ns, self.apps, self.interval = api, ns, apps, interval
        self.minimum = {app: None for app in apps}
        self.samples = 0
        self.errors: list[str] = []
        self._done = threading.Event()

    def run(self):
        while not self._done.is_set():
            try:
                nodes = kube.node_facts(self.api)
                for app in self.apps:
                    ready = sum(1 for p in kube.placements(self.api, self.ns, app, nodes) if p.ready)
                    current = self.minimum[app]
                    self.minimum[app] = ready if current is None else min(current, ready)
                self.samples += 1
            except Exception as exc:  # noqa: BLE001 - recorded, and the test fails on it
                self.errors.append(repr(exc))
            self._done.wait(self.interval)

    def stop(self):
        self._done.set()
        self.join(10)


def test_all_spot_nodes_deleted_at_once_every_workload_keeps_its_floor(env, ns):
    kube.create(env.api, o.deployment("web", 6, namespace=ns))
    kube.create(env.api, o.deployment("api", 4, namespace=ns, annotations={"spot-extender.io/on-demand-floor": "2"}))
    kube.create(env.api, o.pdb("db", {"app": "db"}, min_available=2, namespace=ns))
    kube.create(env.api, o.statefulset("db", 3, namespace=ns))
    for app, (_, replicas, floor) in WORKLOADS.items():
        placed = kube.wait_ready(env.api, ns, app, replicas)
        assert sum(p.capacity == "on-demand" for p in placed) == floor, (app, placed)

    sampler = ReadySampler(env.api, ns, list(WORKLOADS))
    sampler.start()
    time.sleep(1)
    started = time.monotonic()
    for name, _, _ in SPOT_NODES:
        kube.delete(env.api, "Node", name)

    def recovered():
        placed = {app: kube.live(kube.placements(env.api, ns, app)) for app in WORKLOADS}
        return all(
            len(p) == WORKLOADS[app][1] and all(x.ready and x.capacity == "on-demand" for x in p)
            for app, p in placed.items()
        )

    try:
        wait_for(recovered, 180, interval=1, what="replacements running on on-demand")
    finally:
        sampler.stop()
    print(f"recovered in {time.monotonic() - started:.0f}s, {sampler.samples} samples, minimum ready {sampler.minimum}")
    assert not sampler.errors, sampler.errors[:3]
    assert sampler.samples > 20
    for app, (_, _, floor) in WORKLOADS.items():
        assert sampler.minimum[app] >= floor, (app, sampler.minimum)
