"""The leader SIGKILLed in the middle of a drain of 100 pods (issue 12 item 3c): the other
replica takes the Lease over and finishes the drain, and no workload ever has fewer
ready replicas than its floor."""

from __future__ import annotations

import os
import signal
import time

from tests.cluster.controlplane import ExtenderProcess
from tests.helpers import kube
from tests.helpers import objects as o
from tests.helpers.fleet import SPOT_NODES, taint_spot
from tests.helpers.metrics import scrape
from tests.helpers.ports import free_port
from tests.helpers.sampling import ReadySampler
from tests.helpers.waiting import wait_for

APPS = [f"app-{i}" for i in range(10)]
REPLICAS = 11  # floor 1 on on-demand, 10 on spot: 100 pods to drain
LEASE = 6.0
FLAGS = ("--log-format=text", f"--lease-duration={LEASE:.0f}s", "--renew-deadline=4s", "--retry-period=1s",
         "--eviction-concurrency=2")  # a drain slow enough to be cut in the middle


def reclaimed(extender: ExtenderProcess) -> float:
    return scrape(extender, "spot_extender_evictions_total", {"cause": "reclaim", "result": "evicted"})


def test_leader_killed_mid_drain_the_successor_finishes_it(cluster):
    replicas = {
        who: ExtenderProcess(cluster, *FLAGS, f"--identity={who}", name=f"spot-extender-{who}",
                             port=cluster.extender.port if who == "a" else free_port()).start()
        for who in ("a", "b")
    }
    ns = kube.namespace(cluster.api, "drain")
    for app in APPS:
        kube.create(cluster.api, o.deployment(app, REPLICAS, namespace=ns, cpu="10m"))
    for app in APPS:
        placed = kube.wait_ready(cluster.api, ns, app, REPLICAS, timeout=180)
        assert sum(p.capacity == "on-demand" for p in placed) == 1, placed
    leader = wait_for(lambda: next((w for w, p in replicas.items() if scrape(p, "spot_extender_leader") == 1), None),
                      30, what="a leader")
    successor = next(w for w in replicas if w != leader)

    sampler = ReadySampler(cluster.api, ns, APPS, interval=0.5)
    sampler.start()
    taint_spot(cluster.api)  # every spot node gets its termination notice at once
    wait_for(lambda: reclaimed(replicas[leader]) >= 10, 60, interval=0.05, what="the drain under way")
    os.killpg(replicas[leader].component.process.pid, signal.SIGKILL)
    killed_at = time.monotonic()

    spot = {name for name, _, _ in SPOT_NODES}

    def drained() -> bool:
        return not [p for app in APPS for p in kube.live(kube.placements(cluster.api, ns, app)) if p.node in spot]

    wait_for(drained, 60, interval=0.25, what="no pod left on a going-away node")
    took = time.monotonic() - killed_at
    sampler.stop()
    print(f"\n    drain finished {took:.1f}s after the leader was killed (lease {LEASE:.0f}s); "
          f"the successor evicted {reclaimed(replicas[successor]):.0f}; fewest ready: {min(sampler.minimum.values())}")
    assert scrape(replicas[successor], "spot_extender_leader") == 1
    assert reclaimed(replicas[successor]) > 0
    assert took < LEASE + 15
    assert not sampler.errors, sampler.errors
    assert all(low is not None and low >= 1 for low in sampler.minimum.values()), sampler.minimum
