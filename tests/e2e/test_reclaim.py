"""Every spot node deleted at once: the floors keep every workload serving."""

from __future__ import annotations

import time

from tests.helpers import kube
from tests.helpers import objects as o
from tests.helpers.fleet import SPOT_NODES
from tests.helpers.sampling import ReadySampler
from tests.helpers.waiting import wait_for

WORKLOADS = {  # app: (kind, replicas, floor)
    "web": ("Deployment", 6, 1),
    "api": ("Deployment", 4, 2),
    "db": ("StatefulSet", 3, 2),
}


def test_all_spot_nodes_deleted_at_once_every_workload_keeps_its_floor(env, ns):
    kube.create(env.api, o.deployment("web", 6, namespace=ns))
    kube.create(env.api, o.deployment("api", 4, namespace=ns, annotations={"spot-extender.io/on-demand-floor": "2"}))
    kube.create(env.api, o.pdb("db", {"app": "db"}, min_available=2, namespace=ns))
    kube.create(env.api, o.statefulset("db", 3, namespace=ns))
    for app, (_, replicas, floor) in WORKLOADS.items():
        placed = kube.wait_ready(env.api, ns, app, replicas)
        assert sum(p.capacity == "on-demand" for p in placed) == floor, (app, placed)

    sampler = ReadySampler(env.api, ns, list(WORKLOADS), interval=0.25, count_terminating=True).start()
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
    print(f"recovered in {time.monotonic() - started:.0f}s, {sampler.count} samples, minimum ready {sampler.minimum}")
    assert not sampler.errors, sampler.errors[:3]
    assert sampler.count > 20
    for app, (_, _, floor) in WORKLOADS.items():
        assert sampler.minimum[app] >= floor, (app, sampler.minimum)
