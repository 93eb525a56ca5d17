"""Leader election against the real API server: one holder among replicas, a takeover
only after a killed leader's lease ran out, and the lease released on a clean stop.

The holder is always read from the Lease itself; each process's own view comes from
its /debug/workloads."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time
import uuid

from tests.cluster.api import ApiError
from tests.cluster.controlplane import ExtenderProcess
from tests.helpers import kube
from tests.helpers import objects as o
from tests.helpers.fleet import taint_spot
from tests.helpers.metrics import scrape
from tests.helpers.ports import free_port
from tests.helpers.waiting import wait_for

LEASE_DURATION, RETRY_PERIOD = 4, 1
FLAGS = (
    "--lease-namespace=default", f"--lease-duration={LEASE_DURATION}s", "--renew-deadline=3s",
    f"--retry-period={RETRY_PERIOD}s", "--log-format=text",
)


def lease_spec(env, namespace: str, name: str) -> dict | None:
    try:
        return env.api.get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}")["spec"]
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def holder(env, name: str, namespace: str = "default") -> str | None:
    return (lease_spec(env, namespace, name) or {}).get("holderIdentity")


def says_leader(process: ExtenderProcess) -> bool | None:
    return json.loads(process.get("/debug/workloads"))["leader"]


def leaders(processes: dict[str, ExtenderProcess]) -> list[str]:
    return [identity for identity, p in processes.items() if says_leader(p)]


def two_candidates(env, prefix: str) -> tuple[str, dict[str, ExtenderProcess]]:
    """Two extra extender processes competing for a fresh Lease, keyed by identity;
    on ports of their own, so kube-scheduler never calls them."""
    suffix = uuid.uuid4().hex[:6]
    name = f"{prefix}-{suffix}"
    return name, {
        f"{who}-{suffix}": ExtenderProcess(
            env.cluster, f"--lease-name={name}", f"--identity={who}-{suffix}", *FLAGS,
            name=f"{prefix}-{who}-{suffix}", port=free_port(),
        )
        for who in ("a", "b")
    }


def test_session_extender_holds_its_default_lease(env):
    # Defaults: kube-system (no $POD_NAMESPACE here), identity = hostname + 6 hex characters.
    pattern = re.compile(re.escape(socket.gethostname()) + r"-[0-9a-f]{6}$")
    wait_for(lambda: says_leader(env.extender), 20, what="the session extender to lead")
    found = holder(env, "spot-extender", "kube-system")
    assert found and pattern.match(found), found


def test_one_leader_takeover_after_a_kill_and_release_on_stop(env):
    name, processes = two_candidates(env, "e2e-leader")
    try:
        for p in processes.values():
            p.start(wait_ready=False)
        for p in processes.values():
            p.wait_ready()

        first = wait_for(lambda: holder(env, name), 15, what="a holder of the lease")
        assert first in processes
        wait_for(lambda: leaders(processes) == [first], 10, what="exactly the holder to say it leads")
        time.sleep(3 * RETRY_PERIOD)  # several renewals later: still one leader, no transitions
        assert holder(env, name) == first and leaders(processes) == [first]
        assert lease_spec(env, "default", name)["leaseTransitions"] == 0

        # SIGKILL: no release, so the survivor must wait out the lease.
        (second,) = set(processes) - {first}
        killed = processes[first].component.process
        killed_at = time.monotonic()
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(10)
        wait_for(lambda: holder(env, name) == second, LEASE_DURATION + 5, interval=0.1,
                 what="the survivor to take over")
        took = time.monotonic() - killed_at
        # It saw the last renewal at most ~1.2 retry periods before the kill, then waited the full lease.
        assert took >= LEASE_DURATION - 1.2 * RETRY_PERIOD - 0.3, took
        wait_for(lambda: says_leader(processes[second]), 5, what="the survivor to say it leads")
        assert lease_spec(env, "default", name)["leaseTransitions"] == 1

        # SIGTERM: a clean stop hands the lease back.
        survivor = processes[second].component
        process = survivor.process
        survivor.stop(timeout=15)
        assert process.returncode == 0, survivor.tail()
        spec = lease_spec(env, "default", name)
        assert not spec.get("holderIdentity"), spec
        assert spec["leaseDurationSeconds"] == 1
        assert "lease released" in survivor.tail(200)
    finally:
        for p in processes.values():
            p.stop()
            env.cluster.components.pop(p.component.name, None)  # gone on purpose, not died


def spot_only(deployment: dict) -> dict:
    """Pin pods to spot nodes: this test runs without the scheduler's extender, and its
    point is who evicts, not where kube-scheduler would have put them."""
    deployment["spec"]["template"]["spec"]["nodeSelector"] = {"node.kubernetes.io/capacity": "spot"}
    return deployment


def reclaim_evictions(process: ExtenderProcess) -> float:
    return scrape(process, "spot_extender_evictions_total", {"cause": "reclaim", "result": "evicted"})


def test_only_the_leader_evicts_and_the_next_leader_takes_over_the_work(env, ns):
    def taint(on: bool):
        taint_spot(env.api, o.RECLAIM_TAINT if on else None)

    def on_spot(app):
        return [p for p in kube.placements(env.api, ns, app) if p.capacity == "spot" and not p.terminating]

    name, processes = two_candidates(env, "e2e-evict")
    # The session extender leads a lease of its own and would evict too: it sits this one
    # out, and kube-scheduler places pods without it (ignorable), pinned to spot by selector.
    env.extender.stop()
    try:
        for p in processes.values():
            p.start(wait_ready=False)
        for p in processes.values():
            p.wait_ready()
        leader = wait_for(lambda: holder(env, name), 15, what="a holder")
        (follower,) = set(processes) - {leader}
        kube.create(env.api, spot_only(o.deployment("web", 4, namespace=ns)))
        wait_for(lambda: len(on_spot("web")) == 4, 60, what="4 replicas on spot")
        taint(True)
        wait_for(lambda: not on_spot("web"), 20, what="the leader to evict them")
        # At least the 4: a replacement may land on a spot node the taint has not reached yet
        # (nodes are tainted one by one), and is then rightly evicted too.
        assert reclaim_evictions(processes[leader]) >= 4
        assert reclaim_evictions(processes[follower]) == 0

        os.killpg(processes[leader].component.process.pid, signal.SIGKILL)
        processes[leader].component.process.wait(10)
        wait_for(lambda: holder(env, name) == follower, LEASE_DURATION + 5, what="the follower to take over")
        taint(False)
        kube.create(env.api, spot_only(o.deployment("more", 3, namespace=ns)))
        wait_for(lambda: len(on_spot("more")) == 3, 60, what="3 more replicas on spot")
        taint(True)
        wait_for(lambda: not on_spot("more"), 20, what="the new leader to evict them")
        assert reclaim_evictions(processes[follower]) >= 3
    finally:
        for p in processes.values():
            p.stop()
            env.cluster.components.pop(p.component.name, None)
        env.extender.start()
