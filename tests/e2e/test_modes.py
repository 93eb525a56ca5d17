"""The same placement in full Nodes mode as in NodeNames mode, and kube-scheduler
carrying on when the extender is down."""

from __future__ import annotations

import dataclasses

from tests.helpers import kube
from tests.helpers import objects as o
from tests.helpers.fleet import assert_spread
from tests.helpers.kube import on_demand
from tests.helpers.waiting import wait_for


def place_sample(env, ns, suffix):
    """A single replica and a burst of ten; returns on-demand counts and checks the spread."""
    kube.create(env.api, o.deployment(f"solo-{suffix}", 1, namespace=ns))
    kube.create(env.api, o.deployment(f"web-{suffix}", 10, namespace=ns))
    solo = kube.wait_ready(env.api, ns, f"solo-{suffix}", 1)
    web = kube.wait_ready(env.api, ns, f"web-{suffix}", 10)
    assert_spread([p for p in web if p.capacity == "spot"])
    return on_demand(solo), on_demand(web)


def test_full_nodes_mode_places_like_node_names_mode(env, ns):
    names_mode = place_sample(env, ns, "names")
    options = env.cluster.extender
    env.cluster.start_scheduler(dataclasses.replace(options, node_cache_capable=False))
    try:
        assert "nodeCacheCapable: false" in env.cluster.scheduler_config()
        nodes_mode = place_sample(env, ns, "nodes")
    finally:
        env.cluster.start_scheduler(options)
    assert names_mode == nodes_mode == (1, 1)


def test_pods_schedule_without_the_extender_and_policy_resumes_after_resync(env, ns):
    env.extender.stop()
    try:
        kube.create(env.api, o.deployment("while-down", 3, namespace=ns))
        kube.wait_ready(env.api, ns, "while-down", 3)  # ignorable: scheduled without the extender
    finally:
        env.extender.start(wait_ready=False)
    env.extender.wait_ready()
    kube.create(env.api, o.deployment("after", 4, namespace=ns))
    assert on_demand(kube.wait_ready(env.api, ns, "after", 4)) == 1
    # The restarted extender lists what was placed while it was down.
    states = wait_for(
        lambda: [w for w in __import__("json").loads(env.extender.get("/debug/workloads"))["workloads"]
                 if w["namespace"] == ns and w["name"] == "while-down" and w["onDemand"] + w["spot"] == 3],
        10, what="the restarted extender to index pods placed while it was down",
    )
    assert states[0]["replicas"] == 3
