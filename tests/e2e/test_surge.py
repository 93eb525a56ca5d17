"""Surge before evict against the real control plane: kube-controller-manager's ReplicaSet
controller makes the surge pods, kube-scheduler places them, the webhook admits them as
spot, the ValidatingAdmissionPolicy of k8s/base lets the ServiceAccount write surge
ReplicaSets and nothing else, and Ready is counted on every pod watch event.

Pods take 30 s from bound to Ready unless a test sets its own (KWOK's pod-ready stage, per pod by
annotation)."""

from __future__ import annotations

import copy
import os
import signal
import time
import uuid

from spot_extender.api.objects import surge_replicaset
from tests.cluster.api import ApiError
from tests.cluster.controlplane import POD_READY_DELAY
from tests.helpers import kube
from tests.helpers import objects as o
from tests.helpers.fleet import taint_spot
from tests.helpers.objects import CAPACITY_LABEL
from tests.helpers.ports import free_port
from tests.helpers.rollouts import TEMPLATE_HASH, create_rollout, install_rollout_crd
from tests.helpers.sampling import ReadyWatch
from tests.helpers.waiting import wait_for

STARTUP = "30s"
# GKE's notice: 30 s in the session extender's default --drain-notice.
GKE_NOTICE = {"key": "cloud.google.com/impending-node-termination", "value": "true", "effect": "NoSchedule"}
SURGE_LABEL = "spot-extender.io/surge-of"


def surge_web(env, ns: str, replicas: int = 6, name: str = "web", surge: bool = True,
              node_selector: dict | None = None, startup: str = STARTUP) -> dict:
    """A Deployment of R replicas (one floor on on-demand), opted in to surges of up to half
    of R, each pod `startup` from bound to Ready; once all are Ready."""
    annotations = {"spot-extender.io/surge": "true", "spot-extender.io/max-surge": "50%"} if surge else {}
    web = o.deployment(name, replicas, namespace=ns, annotations=annotations)
    web["spec"]["template"]["metadata"]["annotations"] = {POD_READY_DELAY: startup}
    if node_selector:
        web["spec"]["template"]["spec"]["nodeSelector"] = node_selector
    kube.create(env.api, web)
    kube.wait_ready(env.api, ns, name, replicas, timeout=180)
    return web


def surges_in(env, ns: str) -> list[dict]:
    return env.api.get(f"/apis/apps/v1/namespaces/{ns}/replicasets", labelSelector=SURGE_LABEL)["items"]


class LargestSurge:
    """The most replicas any surge ReplicaSet of the namespace was seen asking for: a surge
    grows as the spot nodes get their notice one PATCH at a time, so its first sight may be
    smaller than its size once every node has its notice."""

    def __init__(self, env, ns: str):
        self.env, self.ns, self.replicas = env, ns, 0

    def __call__(self) -> list[dict]:
        surges = surges_in(self.env, self.ns)
        self.replicas = max([self.replicas] + [rs["spec"]["replicas"] for rs in surges])
        return surges


def on_spot(env, ns: str) -> int:
    return sum(p.capacity == "spot" and not p.terminating for p in kube.placements(env.api, ns, "web"))


def reclaimed(env, ns: str, replicas: int) -> bool:
    """Every replica off spot and Ready in the workload's own ReplicaSet, no surge left."""
    own = [p for p in env.api.get(f"/api/v1/namespaces/{ns}/pods", labelSelector="app=web")["items"]
           if SURGE_LABEL not in p["metadata"].get("labels", {}) and not p["metadata"].get("deletionTimestamp")]
    ready = [p for p in own if any(c["type"] == "Ready" and c["status"] == "True"
                                   for c in (p.get("status") or {}).get("conditions") or [])]
    return on_spot(env, ns) == 0 and len(ready) == replicas and not surges_in(env, ns)


def event_reasons(env, ns: str, kind: str = "Deployment") -> list[str]:
    return [e["reason"] for e in env.api.get(f"/api/v1/namespaces/{ns}/events")["items"]
            if e["involvedObject"]["kind"] == kind]


def test_a_reclaim_with_notice_loses_no_ready_replica_and_leaves_no_surge(env, ns):
    surge_web(env, ns)
    assert on_spot(env, ns) == 5
    started = env.metric("spot_extender_surges_total", {"outcome": "started"})
    completed = env.metric("spot_extender_surges_total", {"outcome": "completed"})
    watch = ReadyWatch(env.api, ns, "web").start()
    largest = LargestSurge(env, ns)
    began = time.monotonic()
    try:
        taint_spot(env.api, o.INTERRUPTION_TAINT)  # 120 s of notice; terminationGracePeriodSeconds 0
        surge = wait_for(largest, 30, what="a surge ReplicaSet")[0]

        def reclaimed_watching_the_surge() -> bool:
            largest()
            return reclaimed(env, ns, 6)

        wait_for(reclaimed_watching_the_surge, 240, interval=1, what="web reclaimed, its surge gone")
        took = time.monotonic() - began
    finally:
        watch.stop()
    print(f"reclaimed in {took:.0f}s; fewest Ready {watch.minimum} over {watch.events} watch events")
    assert not watch.errors, watch.errors
    assert watch.events >= 20  # every pod's creation, binding, Ready and deletion was seen
    assert watch.minimum >= 6
    assert largest.replicas == 3  # half of 6, fewer than the 5 doomed
    assert surge["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    assert env.metric("spot_extender_surges_total", {"outcome": "started"}) == started + 1
    assert env.metric("spot_extender_surges_total", {"outcome": "completed"}) == completed + 1
    assert {"SurgeStarted", "SurgeCompleted"} <= set(event_reasons(env, ns))


def test_the_service_account_may_write_surge_replicasets_and_no_other(env):
    """What k8s/base's policy lets the ServiceAccount do to ReplicaSets, as kube-apiserver
    judges it; in kube-system, where the session's controller leaves surges alone."""
    ns, name = "kube-system", f"vap-{uuid.uuid4().hex[:6]}"
    kube.create(env.api, o.deployment(name, 1, namespace=ns))
    collection = f"/apis/apps/v1/namespaces/{ns}/replicasets"
    try:
        beside = wait_for(lambda: env.api.get(collection, labelSelector=f"app={name}")["items"], 30,
                          what="its ReplicaSet")[0]
        sa = env.service_account_api()

        def refused(method: str, path: str, body=None, content_type: str = "application/json") -> str:
            try:
                sa.request(method, path, body, content_type=content_type)
            except ApiError as exc:
                assert exc.status in (403, 422), exc
                return exc.body
            raise AssertionError(f"{method} {path} was allowed")

        surge = surge_replicaset(beside, f"Deployment/{name}", 1, SURGE_LABEL, "spot-extender.io/surge-for")
        plain = {**surge, "metadata": {**surge["metadata"], "name": "plain", "labels": {"app": "web"}}}
        assert "only surge ReplicaSets" in refused("POST", collection, plain)
        other_owner = copy.deepcopy(surge)  # labelled with a uid that is not its owner's
        other_owner["metadata"]["labels"] = {SURGE_LABEL: "not-the-owner"}
        other_owner["spec"]["selector"] = {"matchLabels": {SURGE_LABEL: "not-the-owner"}}
        other_owner["spec"]["template"]["metadata"]["labels"][SURGE_LABEL] = "not-the-owner"
        assert "only surge ReplicaSets" in refused("POST", collection, other_owner)
        privileged = copy.deepcopy(surge)
        privileged["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {"privileged": True}
        assert "privileged" in refused("POST", collection, privileged)
        host = copy.deepcopy(surge)
        host["spec"]["template"]["spec"]["volumes"] = [{"name": "root", "hostPath": {"path": "/"}}]
        assert "hostPath" in refused("POST", collection, host)
        created = sa.post(collection, surge)
        path = f"{collection}/{created['metadata']['name']}"
        sa.request("PATCH", path, [{"op": "replace", "path": "/spec/replicas", "value": 0}],
                   content_type="application/json-patch+json")
        assert "a surge ReplicaSet's replicas" in refused(
            "PATCH", path, {"spec": {"template": {"metadata": {"annotations": {"example.com/x": "1"}}}}},
            "application/merge-patch+json")
        assert "only surge ReplicaSets" in refused("DELETE", f"{collection}/{beside['metadata']['name']}")
        sa.delete(path)
    finally:
        kube.delete(env.api, "Deployment", name, namespace=ns)


def test_a_leader_killed_mid_surge_is_followed_by_one_that_finishes_it(env, ns):
    surge_web(env, ns)
    standby = env.extender_process(name=f"standby-{ns[-5:]}", port=free_port()).start()
    watch = ReadyWatch(env.api, ns, "web").start()
    try:
        taint_spot(env.api, o.INTERRUPTION_TAINT)
        wait_for(lambda: surges_in(env, ns), 30, what="a surge ReplicaSet")
        time.sleep(10)
        os.killpg(env.extender.component.process.pid, signal.SIGKILL)  # no lease release, no clean-up
        env.extender.component.process.wait(10)
        env.extender.start()  # kube-scheduler and kube-apiserver call it: back at once, as a standby or leader
        wait_for(lambda: reclaimed(env, ns, 6), 300, interval=1, what="web reclaimed by the next leader")
    finally:
        watch.stop()
        standby.stop()
    print(f"fewest Ready {watch.minimum} over {watch.events} watch events")
    assert not watch.errors, watch.errors
    assert watch.minimum >= 5


def test_surge_pods_with_no_room_leave_the_paced_drain_as_it_was_and_go_past_the_notice(env, ns):
    """Spot only (a node selector), every spot node under GKE's 30 s notice, pods 5 s from
    bound to Ready, no autoscaler: the surge pods wait Pending, and the surged workload
    loses replicas exactly as its twin without a surge does. Past the notice the surge is
    removed."""
    spot_only = {CAPACITY_LABEL: "spot"}
    for name, surge in (("surged", True), ("paced", False)):
        surge_web(env, ns, 4, name=name, surge=surge, node_selector=spot_only, startup="5s")
    abandoned = env.metric("spot_extender_surges_total", {"outcome": "abandoned"})
    # Their own pods: a surge pod may land on a spot node before that node's notice.
    watches = {name: ReadyWatch(env.api, ns, name, also=f"!{SURGE_LABEL}").start() for name in ("surged", "paced")}
    try:
        taint_spot(env.api, GKE_NOTICE)  # evictions due by 25 s
        wait_for(lambda: surges_in(env, ns), 20, what="a surge ReplicaSet")
        wait_for(lambda: not surges_in(env, ns), 90, interval=0.5, what="the surge removed past the notice")
        time.sleep(1)
    finally:
        for watch in watches.values():
            watch.stop()
    assert all(not p.node for p in kube.placements(env.api, ns, "surged") if not p.terminating), \
        "the replacements have nowhere to go"
    # The paced schedule, side by side: no replacement is ever Ready, so each wave goes as
    # the waves that still fit shrink, the last at the latest time, 25 s; never all at once.
    for start, end in ((3, 20), (27, 30)):
        fewest = {name: watch.fewest(start, end) for name, watch in watches.items()}
        print(f"fewest Ready from {start}s to {end}s: {fewest}")
        assert fewest["surged"] == fewest["paced"], fewest
    assert watches["paced"].fewest(3, 20) >= 1
    assert watches["paced"].fewest(27, 30) == 0
    assert env.metric("spot_extender_surges_total", {"outcome": "abandoned"}) == abandoned + 1
    assert "SurgeAbandoned" in event_reasons(env, ns)


def test_a_workload_deleted_mid_surge_leaves_nothing_behind(env, ns):
    """The surge is owned by the workload's ReplicaSet: the garbage collector takes it, and
    its pods, with the Deployment."""
    surge_web(env, ns, startup="5s")
    taint_spot(env.api, o.INTERRUPTION_TAINT)
    wait_for(lambda: surges_in(env, ns), 30, what="a surge ReplicaSet")
    env.api.delete(f"/apis/apps/v1/namespaces/{ns}/deployments/web", propagationPolicy="Background")

    def nothing_left() -> bool:
        replicasets = env.api.get(f"/apis/apps/v1/namespaces/{ns}/replicasets")["items"]
        pods = env.api.get(f"/api/v1/namespaces/{ns}/pods")["items"]
        return not replicasets and not pods

    wait_for(nothing_left, 60, interval=0.5, what="the surge and every pod garbage-collected")


def test_scaling_during_a_surge_is_not_fought(env, ns):
    """An HPA (here its writes: the scale subresource) grows the workload during the surge,
    then shrinks it. spot-extender never writes the Deployment's replicas: it ends at what
    was set last, every replica Ready off spot, and the surge sized within --max-surge of
    the largest R and gone. Pods start in 15 s: the sizes are what is judged here."""
    surge_web(env, ns, startup="15s")
    scale = f"/apis/apps/v1/namespaces/{ns}/deployments/web/scale"
    watch = ReadyWatch(env.api, ns, "web").start()
    largest = LargestSurge(env, ns)

    try:
        taint_spot(env.api, o.INTERRUPTION_TAINT)
        wait_for(lambda: surges_in(env, ns), 30, what="a surge ReplicaSet")
        env.api.merge_patch(scale, {"spec": {"replicas": 8}})
        grown = time.monotonic()
        while time.monotonic() - grown < 25:  # the surge and the two new replicas turn Ready
            largest()
            time.sleep(0.5)
        shrunk_at = time.monotonic() - watch.began
        env.api.merge_patch(scale, {"spec": {"replicas": 4}})

        def done() -> bool:
            largest()
            return reclaimed(env, ns, 4)

        wait_for(done, 240, interval=1, what="web reclaimed at 4 replicas, its surge gone")
    finally:
        watch.stop()
    fewest = watch.fewest(0, shrunk_at)
    print(f"fewest Ready before the scale-down {fewest}; largest surge {largest.replicas}")
    assert not watch.errors, watch.errors
    assert fewest >= 6
    assert env.api.get(scale)["spec"]["replicas"] == 4  # as the "HPA" left it
    assert 1 <= largest.replicas <= 4  # within half of the largest R, 8


def test_a_rollouts_surge_keeps_its_template_hash_and_loses_no_ready_replica(env, ns):
    """An Argo Rollout (its CRD, and the ReplicaSet its controller would make): the surge
    pods keep rollouts-pod-template-hash, which the Rollout's Services select on."""
    install_rollout_crd(env.api)
    create_rollout(env.api, "web", ns, 6, annotations={"spot-extender.io/surge": "true",
                                                       "spot-extender.io/max-surge": "50%"},
                   pod_annotations={POD_READY_DELAY: "10s"}, template_hash="6c8f9")
    kube.wait_ready(env.api, ns, "web", 6, timeout=180)
    assert on_spot(env, ns) == 5
    watch = ReadyWatch(env.api, ns, "web", also=f"{TEMPLATE_HASH}=6c8f9").start()  # what its Service counts
    try:
        taint_spot(env.api, o.INTERRUPTION_TAINT)
        surge = wait_for(lambda: surges_in(env, ns), 30, what="a surge ReplicaSet")[0]
        wait_for(lambda: reclaimed(env, ns, 6), 240, interval=1, what="the Rollout reclaimed, its surge gone")
    finally:
        watch.stop()
    print(f"fewest Ready {watch.minimum} over {watch.events} watch events")
    assert not watch.errors, watch.errors
    assert watch.minimum >= 6
    assert surge["metadata"]["ownerReferences"][0]["name"] == "web-6c8f9"
    labels = surge["spec"]["template"]["metadata"]["labels"]
    assert labels["app"] == "web" and labels[TEMPLATE_HASH] == "6c8f9" and SURGE_LABEL in labels
    assert {"SurgeStarted", "SurgeCompleted"} <= set(event_reasons(env, ns, "Rollout"))
