"""Surge before evict: the pure numbers (decisions/surge.py), the surge ReplicaSet's body
(api/objects.py), and the drain's surges over a real index with a recording API
(controller/surge.py). End to end: tests/e2e/test_surge.py."""

from __future__ import annotations

import asyncio
import base64

import orjson
import pytest

from spot_extender.api import StatusError
from spot_extender.api.objects import surge_replicaset
from spot_extender.assembly import build
from spot_extender.cluster.index import KIND_NAMES, NODE, POD
from spot_extender.cluster.records import workload_record
from spot_extender.controller import Controller
from spot_extender.core.settings import Settings
from spot_extender.core.vocabulary import (
    ANNOTATION_MAX_SURGE,
    ANNOTATION_SURGE,
    ROLE_LABEL,
    SURGE_FOR_ANNOTATION,
    SURGE_LABEL,
    Role,
)
from spot_extender.decisions.pacing import Doomed
from spot_extender.decisions.surge import late_after, surge_bound, surge_holds, surge_wanted, surge_wave
from spot_extender.serving.status import Status, WorkloadState
from spot_extender.serving.status_table import last_action
from tests.helpers import objects as f
from tests.helpers.controller import ITN, RecordingKube, evictions_done, setup
from tests.helpers.metrics import registry_value as sample

# ---- the numbers -----------------------------------------------------------------------


@pytest.mark.parametrize("max_surge, replicas, bound", [
    ("25%", 6, 2),  # rounded up, as a Deployment's maxSurge
    ("25%", 1, 1),  # a single replica gets its one
    ("25%", 0, 1),
    ("50%", 6, 3),
    ("3", 10, 3),
    ("100%", 4, 4),
])
def test_surge_bound(max_surge, replicas, bound):
    assert surge_bound(max_surge, replicas) == bound


@pytest.mark.parametrize("current, doomed, bound, replicas, healthy, wanted", [
    (None, 5, 3, 6, 1, 3),  # the start: one per doomed replica, within the bound
    (None, 2, 3, 6, 4, 2),
    (None, 1, 1, 1, 0, 1),  # R = 1: its one replica gets a stand-in
    (1, 4, 3, 6, 2, 3),  # more nodes got their notice: it grows, within the bound
    (3, 2, 3, 6, 4, 2),  # one replacement Ready: one surge pod goes
    (3, 0, 3, 6, 6, 0),  # every replacement Ready: the surge is over
    (2, 0, 3, 9, 6, 2),  # an HPA scaled up during the reclaim: not a reason to grow
    (3, 3, 3, 4, 2, 2),  # an HPA scaled down: the surge shrinks with it
])
def test_surge_wanted(current, doomed, bound, replicas, healthy, wanted):
    assert surge_wanted(current, doomed, bound, replicas, healthy) == wanted


@pytest.mark.parametrize("now, ready_at, waiting, covering, paced_wave, on_track, holds", [
    (0, 30, 5, 3, 2, True, True),  # Ready at 30, evictions at 30 and 60: before 85
    (0, 30, 5, 2, 2, True, False),  # three rounds: the last at 90 is too late
    (0, 30, 5, 0, 2, True, False),  # nothing coming: the paced schedule
    (0, 30, 0, 3, 2, True, False),  # nothing waiting
    (40, 30, 2, 3, 2, True, True),  # Ready already: one round, now
    (0, 90, 1, 1, 1, True, False),  # Ready after the latest time
    (24, 30, 5, 3, 2, True, True),  # on track: trusted, though giving up now would cost 3 at once
    (23, 30, 5, 3, 2, False, True),  # off track: giving up now still costs the 2 at once planned
    (24, 30, 5, 3, 2, False, False),  # off track, a pass from now only 2 waves fit: it gives up now
])
def test_surge_holds(now, ready_at, waiting, covering, paced_wave, on_track, holds):
    # Start-ups of 30 s, the earliest latest time at 85.
    assert surge_holds(now, ready_at, waiting, covering, 30, 85, paced_wave, on_track) is holds


DOOMED = [Doomed("a", 100), Doomed("b", 90), Doomed("c", 110), Doomed("idle", 100, ready=False)]


@pytest.mark.parametrize("now, down, limit, ready, hold, evicted", [
    (0, 0, None, 0, True, ["idle"]),  # holding with no surge pod Ready: only what serves nothing
    (0, 0, None, 2, True, ["idle", "b", "a"]),  # two Ready surge pods: two go, earliest latest first
    (0, 1, None, 2, True, ["idle", "b"]),  # one replica already down
    (0, 0, 1, 2, True, ["idle", "b"]),  # the PDB allows one
    (95, 0, None, 0, True, ["idle", "b"]),  # b is due: it goes, surge or not
    (0, 0, None, 0, False, ["idle", "b"]),  # not holding: the paced wave (3 waiting, 4 waves -> 1)
    (0, 0, None, 1, False, ["idle", "b"]),  # one Ready surge pod covers what the paced wave takes anyway
    (0, 0, None, 2, False, ["idle", "b", "a"]),  # two cover more than it: they go
])
def test_surge_wave(now, down, limit, ready, hold, evicted):
    assert surge_wave(DOOMED, now, down, 30, limit, ready, hold) == evicted


def test_the_surge_replicaset_is_the_template_beside_its_replicaset_with_a_hash_of_its_own():
    beside = f.replicaset("web-1", "web", 6)
    beside["spec"]["template"]["spec"] = {"containers": [{"name": "app", "image": "x"}]}
    body = surge_replicaset(beside, "Deployment/web", 3, SURGE_LABEL, SURGE_FOR_ANNOTATION)
    uid = beside["metadata"]["uid"]
    assert body["metadata"]["name"] == "web-1-surge"
    assert body["metadata"]["ownerReferences"] == [{
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": uid, "controller": True,
        "blockOwnerDeletion": False}]
    assert body["metadata"]["annotations"] == {SURGE_FOR_ANNOTATION: "Deployment/web"}
    assert body["metadata"]["labels"] == {SURGE_LABEL: uid}  # not the app's: no GitOps tool claims it
    assert body["spec"]["selector"] == {"matchLabels": {SURGE_LABEL: uid}}
    assert body["spec"]["replicas"] == 3
    labels = body["spec"]["template"]["metadata"]["labels"]
    assert labels == {"app": "web", "pod-template-hash": "surge-web-1", SURGE_LABEL: uid}
    assert beside["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == "web-1"  # not changed in place
    assert body["spec"]["template"]["spec"] == beside["spec"]["template"]["spec"]
    # The index reads it back as a surge for the Deployment; a made-up label naming another uid is none.
    assert workload_record("ReplicaSet", {**body, "metadata": {**body["metadata"], "uid": "s"}}).surge_for == (
        "Deployment", "default", "web")
    forged = {**body, "metadata": {**body["metadata"], "labels": {SURGE_LABEL: "other"}}}
    assert workload_record("ReplicaSet", forged).surge_for is None


# ---- the drain's surges ---------------------------------------------------------------


class SurgingKube(RecordingKube):
    """Also reads, creates, scales and deletes ReplicaSets, which the watch then shows."""

    def __init__(self, refuse_create: bool = False):
        super().__init__()
        self.created: list[dict] = []
        self.scaled: list[int] = []
        self.deleted: list[str] = []
        self.refuse_create = refuse_create

    async def get(self, resource, namespace, name, timeout):
        record = self.index.workload(("ReplicaSet", namespace, name))
        rs = f.replicaset(name, "web", record.replicas)
        return rs

    async def create(self, resource, namespace, body, timeout):
        if self.refuse_create:
            raise StatusError(403, "replicasets.apps is forbidden")
        self.created.append(body)
        body = {**body, "metadata": {**body["metadata"], "uid": "surge-uid"}}
        self.index.apply("ReplicaSet", "ADDED", body)
        return body

    async def scale(self, resource, namespace, name, replicas, uid, timeout):
        self.scaled.append(replicas)
        rs = self.created[-1]
        rs = {**rs, "metadata": {**rs["metadata"], "uid": uid}, "spec": {**rs["spec"], "replicas": replicas}}
        self.index.apply("ReplicaSet", "MODIFIED", rs)

    async def delete(self, resource, namespace, name, uid, timeout):
        self.deleted.append(name)
        self.index.apply("ReplicaSet", "DELETED", {"metadata": {"name": name, "namespace": namespace}})


def surging(spot_nodes=("s1",) * 5, annotations=None, kube=None, **settings):
    """(controller, index, clock, kube): Deployment web of a replica on o1 and one per entry
    of `spot_nodes`, pods 30 s from creation to Ready, opted in to surges."""
    kube = kube or SurgingKube()
    controller, index = setup(kube=kube, **settings)
    clock = [1000.0]
    index.clock = controller.drain.clock = controller.drain.surges.clock = lambda: clock[0]
    nodes = ["o1", *spot_nodes]
    deployment = f.deployment("web", len(nodes), annotations={ANNOTATION_SURGE: "true", **(annotations or {})})
    index.apply("Deployment", "ADDED", deployment)
    index.apply("ReplicaSet", "ADDED", f.replicaset("web-1", "web", len(nodes)))
    for i, node in enumerate(nodes):
        raw = f.pod(f"web-1-{i}", owner=("ReplicaSet", "web-1"), node_name=node, labels={"app": "web"})
        raw["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
        raw["status"]["conditions"][0]["lastTransitionTime"] = "2026-01-01T00:00:30Z"
        index.apply(POD, "ADDED", raw)
    return controller, index, clock, kube


async def pass_(controller):
    """One drain pass, and the writes and evictions it started."""
    await controller.drain.once()
    await evictions_done(controller)
    for _ in range(3):
        await asyncio.sleep(0)
    await asyncio.gather(*[t for t in controller.tasks.running()], return_exceptions=True)


def surge_pods(index, count, ready=True, node="o2", first=0, unscheduled=None):
    for i in range(first, first + count):
        raw = f.pod(f"web-1-surge-{i}", node_name="" if unscheduled else node, ready=ready,
                    labels={"app": "web"}, unscheduled=unscheduled)
        raw["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1-surge",
                                               "uid": "surge-uid", "controller": True}]
        index.apply(POD, "ADDED", raw)


def replacements(index, count, first=0):
    for i in range(first, first + count):
        index.apply(POD, "ADDED", f.pod(f"web-1-r{i}", owner=("ReplicaSet", "web-1"), node_name="o2",
                                        labels={"app": "web"}))


async def test_a_reclaim_with_notice_surges_first_and_evicts_as_surge_pods_turn_ready():
    controller, index, clock, kube = surging(annotations={ANNOTATION_MAX_SURGE: "50%"})
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))  # 120 s: evict by 1085
    await pass_(controller)
    assert [b["spec"]["replicas"] for b in kube.created] == [3]  # 5 doomed, 50% of 6
    assert kube.evicted == []  # Ready by 1030, evictions at 1030 and 1060: nothing goes yet
    assert [e["reason"] for e in kube.events] == ["SurgeStarted"]
    surge_pods(index, 3, ready=False)
    clock[0] = 1010.0
    await pass_(controller)
    assert kube.evicted == []
    surge_pods(index, 3)  # Ready
    clock[0] = 1030.0
    await pass_(controller)
    assert len(kube.evicted) == 3  # each Ready surge pod lets one go
    assert sample(controller.metrics, "spot_extender_drain_waves_total", trigger="surge") == 1
    replacements(index, 3)
    clock[0] = 1060.0
    await pass_(controller)
    assert kube.scaled == [2]  # 4 that stay are Ready: 2 short of 6
    assert len(kube.evicted) == 5
    replacements(index, 2, first=3)
    clock[0] = 1090.0
    await pass_(controller)
    assert kube.deleted == ["web-1-surge"]
    assert sample(controller.metrics, "spot_extender_surges_total", outcome="completed") == 1
    assert [e["reason"] for e in kube.events][-1] == "SurgeCompleted"
    assert sample(controller.metrics, "spot_extender_surge_pod_seconds_total") > 0


async def test_a_surge_grows_as_more_nodes_get_their_notice_and_the_drain_waits_for_it():
    controller, index, clock, kube = surging(spot_nodes=("s1", "s2", "s2", "s2", "s2"),
                                             annotations={ANNOTATION_MAX_SURGE: "50%"})
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))  # handlers taint node by node
    await pass_(controller)
    assert [b["spec"]["replicas"] for b in kube.created] == [1]
    index.apply(NODE, "MODIFIED", f.node("s2", "spot", taints=[ITN]))
    await pass_(controller)
    assert kube.scaled == [3]  # 5 doomed now, within 50% of 6
    assert kube.evicted == []  # 3 surge pods replace 5 in two rounds: the drain waits for them


async def test_a_surge_too_small_for_the_notice_keeps_the_paced_schedule():
    # 25% of 6 is 2: three rounds of 30 s do not fit in 85 s, so the paced waves go on.
    controller, index, clock, kube = surging()
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))
    await pass_(controller)
    assert [b["spec"]["replicas"] for b in kube.created] == [2]
    assert len(kube.evicted) == 2  # 3 waves fit: 2 at a time, as without a surge


async def test_surge_pods_never_ready_are_given_up_once_late_and_go_past_the_notice():
    controller, index, clock, kube = surging(annotations={ANNOTATION_MAX_SURGE: "50%"})
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))  # paced: 2, 2 and 1, by 1085
    surge_pods(index, 3, ready=False)
    evicted_at: dict[float, int] = {}
    for now in range(1000, 1090, 1):  # a pass a second, none of the surge pods ever Ready
        clock[0] = float(now)
        before = len(kube.evicted)
        await pass_(controller)
        if len(kube.evicted) > before:
            evicted_at[now] = len(kube.evicted) - before
    assert sum(evicted_at.values()) == 5
    # Trusted until its pods are late (expected at 1030, late past a quarter start-up more),
    # then given up: and the paced waves from there take at most one replica more at once
    # than planned (2).
    assert min(evicted_at) <= late_after(1030, 30) + 1 <= 1039, evicted_at
    assert max(evicted_at.values()) <= 3, evicted_at
    clock[0] = 1121.0  # the notice is over and none is Ready: they are no longer wanted
    await pass_(controller)
    assert kube.deleted == ["web-1-surge"]
    assert sample(controller.metrics, "spot_extender_surges_total", outcome="abandoned") == 1
    assert kube.events[-1]["reason"] == "SurgeAbandoned" and kube.events[-1]["type"] == "Warning"


@pytest.mark.parametrize("ready_at, startup, late", [(1030, 30, 1037.5), (1005, 5, 1007), (1000, 0, 1002),
                                                       (1300, 300, 1375)])
def test_surge_pods_are_late_past_a_quarter_start_up_more_at_least_2_s(ready_at, startup, late):
    assert late_after(ready_at, startup) == late


async def test_surge_pods_a_little_later_than_the_workloads_start_up_are_still_waited_for():
    # Made a moment after the notice, surge pods turn Ready a few seconds after the
    # workload's usual 30 s: the drain goes on waiting, and nothing goes before they cover it.
    controller, index, clock, kube = surging(annotations={ANNOTATION_MAX_SURGE: "50%"})
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))
    surge_pods(index, 3, ready=False)
    for now in range(1000, 1036):
        clock[0] = float(now)
        await pass_(controller)
    assert kube.evicted == []
    surge_pods(index, 3)  # Ready at 1036
    clock[0] = 1036.0
    await pass_(controller)
    assert len(kube.evicted) == 3
    assert sample(controller.metrics, "spot_extender_drain_waves_total", trigger="surge") == 1


async def test_surge_pods_with_no_room_and_no_autoscaler_leave_the_paced_schedule_as_it_was():
    controller, index, clock, kube = surging(annotations={ANNOTATION_MAX_SURGE: "50%"})
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))
    await pass_(controller)
    assert kube.evicted == []
    surge_pods(index, 3, unscheduled=("Unschedulable", "0/4 nodes are available: 4 Insufficient cpu."))
    await pass_(controller)
    assert len(kube.evicted) == 2  # the paced schedule: 3 waves of 85 s at 30 s start-ups


@pytest.mark.parametrize("mode, annotated, surges", [
    ("annotated", True, 1), ("annotated", False, 0), ("all", False, 1), ("off", True, 0),
])
async def test_who_surges(mode, annotated, surges):
    controller, index, clock, kube = surging(surge=mode)
    if not annotated:
        index.apply("Deployment", "MODIFIED", f.deployment("web", 6))
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))
    await pass_(controller)
    assert len(kube.created) == surges


async def test_a_statefulset_never_surges_and_a_drain_without_notice_neither():
    controller, index, clock, kube = surging(surge="all")
    index.apply("StatefulSet", "ADDED", f.statefulset("db", 2))
    for i in range(2):
        index.apply(POD, "ADDED", f.pod(f"db-{i}", owner=("StatefulSet", "db"), node_name="s2", labels={"app": "db"}))
    index.apply(NODE, "MODIFIED", f.node("s2", "spot", taints=[ITN]))
    await pass_(controller)
    assert kube.created == []
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", unschedulable=True))  # a cordon: no notice, at once
    await pass_(controller)
    assert kube.created == []
    assert len([e for e in kube.evicted if e.startswith("default/web")]) == 5


async def test_a_refused_surge_is_counted_not_retried_and_the_drain_goes_on_paced():
    controller, index, clock, kube = surging(kube=SurgingKube(refuse_create=True),
                                             annotations={ANNOTATION_MAX_SURGE: "50%"})
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))
    await pass_(controller)
    await pass_(controller)
    assert sample(controller.metrics, "spot_extender_surges_total", outcome="failed") == 1
    assert sample(controller.metrics, "spot_extender_surge_writes_total", write="create", result="error") == 1
    assert len(kube.evicted) == 2  # paced, as without a surge


async def test_a_new_leader_adopts_the_surge_a_killed_one_left():
    controller, index, clock, kube = surging(annotations={ANNOTATION_MAX_SURGE: "50%"})
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))
    await pass_(controller)
    surge_pods(index, 3, ready=False)
    successor = Controller(kube, index, controller.rebalance.floors, Settings(), controller.metrics)
    successor.drain.clock = successor.drain.surges.clock = lambda: clock[0]
    clock[0] = 1010.0
    await pass_(successor)
    assert len(kube.created) == 1  # adopted, not made again
    assert kube.evicted == []  # and waited for, from its first pass (paced, 2 would go now)
    surge_pods(index, 3)
    clock[0] = 1030.0
    await pass_(successor)
    assert len(kube.evicted) == 3  # its Ready pods let doomed ones go
    replacements(index, 5)
    clock[0] = 1200.0
    await pass_(successor)
    await pass_(successor)
    assert kube.deleted == ["web-1-surge"]


async def test_a_surge_pod_is_admitted_spot_and_kept_out_of_floors_and_drains():
    controller, index, clock, kube = surging(annotations={ANNOTATION_MAX_SURGE: "50%"})
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))
    await pass_(controller)
    surge = index.workload(("ReplicaSet", "default", "web-1-surge"))
    assert surge.surge_for == ("Deployment", "default", "web")
    assert controller.rebalance.floors.of_workload(surge).k == 0
    assert "web-1-surge" not in {w.name for w in index.top_level_workloads()}
    surge_pods(index, 1, node="s1")  # on a node going away: not the drain's to evict
    assert not controller.context.scope.may_touch(index.pod(next(p.uid for p in index.pods() if "surge" in p.name)))


async def test_every_replica_shows_a_surge_in_progress():
    controller, index, clock, kube = surging(annotations={ANNOTATION_MAX_SURGE: "50%"})
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))
    await pass_(controller)
    surge_pods(index, 2)
    surge_pods(index, 1, ready=False, first=2)
    status = Status(index, controller.rebalance.floors, Settings())  # no controller: any replica
    web = next(s for s in status.workloads() if s.name == "web")
    assert (web.surge_pods, web.surge_ready) == (3, 2)
    assert WorkloadState.from_json(web.to_json()) == web
    assert last_action(web) == "surge: 2/3 Ready"
    older = {k: v for k, v in web.to_json().items() if k not in ("surgePods", "surgeReady")}
    assert WorkloadState.from_json(older).surge_pods == 0  # a server from before surges


class LaggingKube(SurgingKube):
    """Deletes and scales that the watch shows only when told (show()); scales refused on ask."""

    def __init__(self, refuse_scale: bool = False):
        super().__init__()
        self.refuse_scale = refuse_scale
        self.pending: list = []
        self.attempts = 0

    async def scale(self, resource, namespace, name, replicas, uid, timeout):
        self.attempts += 1
        if self.refuse_scale:
            raise StatusError(422, "the uid test failed")
        self.pending.append(lambda: SurgingKube.scale(self, resource, namespace, name, replicas, uid, timeout))

    async def delete(self, resource, namespace, name, uid, timeout):
        self.deleted.append(name)

        async def shown():
            self.index.apply("ReplicaSet", "DELETED", {"metadata": {"name": name, "namespace": namespace}})

        self.pending.append(shown)

    async def show(self):
        while self.pending:
            await self.pending.pop(0)()


async def test_a_write_the_watch_has_not_shown_yet_is_neither_repeated_nor_counted_twice():
    kube = LaggingKube()
    controller, index, clock, kube = surging(kube=kube, annotations={ANNOTATION_MAX_SURGE: "50%"})
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))
    await pass_(controller)
    surge_pods(index, 3)
    replacements(index, 5)  # every replica replaced at once: none wanted
    for _ in range(4):
        clock[0] += 1
        await pass_(controller)
    assert kube.deleted == ["web-1-surge"]  # once, though the watch still shows it
    assert sample(controller.metrics, "spot_extender_surges_total", outcome="completed") == 1
    assert [e["reason"] for e in kube.events].count("SurgeCompleted") == 1
    await kube.show()
    await pass_(controller)
    assert kube.deleted == ["web-1-surge"] and not controller.drain.surges.removed  # forgotten once gone


async def test_a_failing_write_backs_off_instead_of_repeating_every_pass():
    kube = LaggingKube(refuse_scale=True)
    controller, index, clock, kube = surging(kube=kube, annotations={ANNOTATION_MAX_SURGE: "50%"})
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))
    await pass_(controller)
    surge_pods(index, 3)
    replacements(index, 3)  # 4 that stay: it would scale to 2
    for _ in range(20):  # passes 50 ms apart, as index changes wake the drain
        clock[0] += 0.05
        await pass_(controller)
    assert kube.attempts == 1
    assert sample(controller.metrics, "spot_extender_surge_writes_total", write="scale", result="error") == 1
    clock[0] += 5  # past the first backoff (at most 2 s)
    await pass_(controller)
    assert kube.attempts == 2


async def test_a_surge_stands_in_for_its_counted_revision_only():
    # Mid-rollout: web-0 (revision 1) and web-1 (revision 2) both have replicas on s1.
    controller, index, clock, kube = surging(annotations={ANNOTATION_MAX_SURGE: "50%"})
    index.apply("ReplicaSet", "MODIFIED", f.replicaset("web-1", "web", 6, revision=2))
    index.apply("ReplicaSet", "ADDED", f.replicaset("web-0", "web", 4, revision=1))
    for i in range(4):
        raw = f.pod(f"web-0-{i}", owner=("ReplicaSet", "web-0"), node_name="s1", labels={"app": "web"})
        raw["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
        raw["status"]["conditions"][0]["lastTransitionTime"] = "2026-01-01T00:00:30Z"
        index.apply(POD, "ADDED", raw)
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))
    await pass_(controller)
    surge_pods(index, 3)
    clock[0] = 1030.0
    before = [e for e in kube.evicted if "web-0" in e]
    await pass_(controller)
    old = [e for e in kube.evicted if "web-0" in e]
    new = [e for e in kube.evicted if "web-1" in e]
    assert len(new) == 3  # the surge's three Ready pods let three of web-1 go
    assert len(old) - len(before) <= 1  # web-0 keeps its own paced waves: the surge is not counted twice


async def test_the_webhook_admits_a_surge_pod_as_spot():
    controller, index, clock, kube = surging(annotations={ANNOTATION_MAX_SURGE: "50%"})
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))
    await pass_(controller)
    parts = build(Settings())
    for kind in KIND_NAMES:
        parts.index.replace(kind, [])
    for record in ("Deployment", "ReplicaSet"):
        for obj in [kube.created[0]] if record == "ReplicaSet" else []:
            parts.index.apply(record, "ADDED", {**obj, "metadata": {**obj["metadata"], "uid": "surge-uid"}})
    parts.index.apply("Deployment", "ADDED", f.deployment("web", 6))
    parts.index.apply("ReplicaSet", "ADDED", f.replicaset("web-1", "web", 6))
    pod = {"metadata": {"namespace": "default", "labels": kube.created[0]["spec"]["template"]["metadata"]["labels"],
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1-surge",
                                             "uid": "surge-uid", "controller": True}]},
           "spec": {"containers": [{"name": "app", "image": "x"}]}}
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "r1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
        "namespace": "default", "object": pod}}
    response = orjson.loads(await parts.webhook.review(orjson.dumps(review)))["response"]
    ops = orjson.loads(base64.b64decode(response["patch"]))
    labels = next(op["value"] for op in ops if op["path"] == "/metadata/labels")
    assert labels[ROLE_LABEL] == Role.SPOT  # the first pod of a group, yet no floor: a surge has none
    assert sample(parts.metrics, "spot_extender_admissions_total", outcome="spot") == 1


async def test_a_surge_pod_on_a_node_going_away_is_evicted_for_one_elsewhere():
    controller, index, clock, kube = surging(spot_nodes=("s1",) * 5, annotations={ANNOTATION_MAX_SURGE: "50%"})
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))
    await pass_(controller)
    surge_pods(index, 1, node="s2")  # s2 got no notice yet when it landed there
    index.apply(NODE, "MODIFIED", f.node("s2", "spot", taints=[ITN]))
    await pass_(controller)
    assert "default/web-1-surge-0" in kube.evicted


async def test_no_move_back_to_spot_while_a_drain_or_a_surge_is_in_progress():
    controller, index, clock, kube = surging(spot_nodes=("s1", "s1"), annotations={ANNOTATION_MAX_SURGE: "50%"})
    for i in range(2):  # two spot replicas on on-demand: surplus a return to spot would move
        raw = f.pod(f"web-1-x{i}", owner=("ReplicaSet", "web-1"), node_name="o2", labels={"app": "web"})
        index.apply(POD, "ADDED", raw)
    index.apply("Deployment", "MODIFIED", f.deployment("web", 5, annotations={ANNOTATION_SURGE: "true"}))
    index.apply("ReplicaSet", "MODIFIED", f.replicaset("web-1", "web", 5))
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))
    await controller.rebalance.once()
    assert not [e for e in kube.evicted if "x" in e]
    state = controller.rebalance.state_of(("Deployment", "default", "web"))
    assert "a drain is in progress" in (state.last_skip or ""), state
