"""The webhook over a real index: roles by count, bursts, unseen owners, and every answer
that admits without a patch."""

from __future__ import annotations

import base64

import jsonpatch
import orjson
import pytest

from spot_extender.assembly import build
from spot_extender.cluster.index import KIND_NAMES, NODE, POD
from spot_extender.core.settings import Settings
from spot_extender.core.vocabulary import ADMISSION_ANNOTATION, ROLE_LABEL, Role
from tests.helpers import objects as f
from tests.helpers.metrics import registry_value as sample


def parts(**settings):
    # A short confirm wait: here the watch shows an admitted pod at once (shown=True) or never.
    p = build(Settings(**{"webhook_confirm_wait": 0.05, **settings}))
    for kind in KIND_NAMES:
        p.index.replace(kind, [])
    for name, cls in (("s1", "spot"), ("s2", "spot"), ("o1", "on-demand")):
        p.index.apply(NODE, "ADDED", f.node(name, cls))
    return p


def with_web(p, replicas=10, annotations=None):
    p.index.apply("Deployment", "ADDED", f.deployment("web", replicas, annotations=annotations))
    p.index.apply("ReplicaSet", "ADDED", f.replicaset("web-1", "web", replicas))
    return p


def new_pod(owner=("ReplicaSet", "web-1"), namespace="default", **spec) -> dict:
    pod = f.pod("", namespace=namespace, owner=owner, labels={"app": "web", "pod-template-hash": "web-1"})
    del pod["metadata"]["name"], pod["metadata"]["uid"]  # not assigned yet at admission
    pod["spec"].update(spec)
    return pod


def kruise_pod() -> dict:
    pod = new_pod(owner=("StatefulSet", "web"))
    pod["metadata"]["ownerReferences"][0]["apiVersion"] = "apps.kruise.io/v1beta1"
    return pod


def body(pod, uid="req-1", **request) -> bytes:
    return orjson.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
        "namespace": pod["metadata"].get("namespace", "default"), "object": pod, **request}})


async def admit(p, pod, uid="req-1", shown=True, **request) -> tuple[dict, dict | None]:
    """(the response, the patched pod's labels or None without a patch). `shown`: the pod
    is created and the watch shows it at once, Pending, as in a real burst."""
    response = orjson.loads(await p.webhook.review(body(pod, uid, **request)))["response"]
    assert response["allowed"] is True and response["uid"] == (uid if isinstance(uid, str) else "")
    if "patch" not in response:
        return response, None
    ops = orjson.loads(base64.b64decode(response["patch"]))
    labels = next(op["value"] for op in ops if op["path"] == "/metadata/labels")
    if shown and not request.get("dryRun"):
        created = jsonpatch.apply_patch(pod, ops)
        created["metadata"].update(name=f"pod-{uid}", uid=f"uid-{uid}")
        created.setdefault("status", {})["phase"] = "Pending"
        p.index.apply(POD, "ADDED", created)
    return response, labels


async def roles_of_burst(p, count, prefix="req", shown=True):
    """Roles of `count` pods admitted one after another; `shown=False`: creates that never
    happen (denied after admission) or forged reviews, which the watch never shows."""
    roles = []
    for i in range(count):
        _, labels = await admit(p, new_pod(), uid=f"{prefix}-{i}", shown=shown)
        roles.append(labels[ROLE_LABEL])
    return roles


async def test_a_burst_gets_exactly_k_floor_pods_as_the_watch_shows_them():
    p = with_web(parts())
    assert await roles_of_burst(p, 10) == [Role.FLOOR] + [Role.SPOT] * 9
    assert sample(p.metrics, "spot_extender_admissions_total", outcome="floor") == 1
    assert sample(p.metrics, "spot_extender_admissions_total", outcome="spot") == 9
    assert sample(p.metrics, "spot_extender_admission_duration_seconds_count") == 10


async def test_the_watch_takes_over_from_the_admissions_and_a_lost_floor_pod_is_replaced_as_floor():
    p = with_web(parts())
    assert await roles_of_burst(p, 3) == [Role.FLOOR, Role.SPOT, Role.SPOT]
    assert len(p.index.admitted) == 0  # each shown by the watch: the index counts them now
    floor = f.pod("pod-req-0", uid="uid-req-0", owner=("ReplicaSet", "web-1"),
                  labels={"app": "web", "pod-template-hash": "web-1"}, role=Role.FLOOR, phase="Pending")
    floor["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"  # evicted, say
    p.index.apply(POD, "MODIFIED", floor)
    assert await roles_of_burst(p, 2, prefix="replacement") == [Role.FLOOR, Role.SPOT]


async def test_a_pdb_sets_k_for_a_statefulset():
    p = parts()
    p.index.apply("StatefulSet", "ADDED", f.statefulset("db", 4))
    p.index.apply("PodDisruptionBudget", "ADDED", f.pdb("db", {"app": "db"}, min_available=2))
    roles = []
    for i in range(4):
        _, labels = await admit(p, new_pod(owner=("StatefulSet", "db")), uid=f"db-{i}")
        roles.append(labels[ROLE_LABEL])
    assert roles == [Role.FLOOR, Role.FLOOR, Role.SPOT, Role.SPOT]


async def test_an_owner_not_seen_in_time_means_floor():
    p = parts(webhook_owner_wait=0.05)
    assert await roles_of_burst(p, 2) == [Role.FLOOR, Role.FLOOR]
    assert sample(p.metrics, "spot_extender_admission_owner_waits_total", result="timeout") == 2


async def test_an_owner_the_watch_shows_during_the_wait_is_used():
    import asyncio

    p = parts(webhook_owner_wait=1.0)
    asyncio.get_running_loop().call_later(0.05, with_web, p)
    _, first = await admit(p, new_pod(), uid="a")
    _, second = await admit(p, new_pod(), uid="b")
    assert (first[ROLE_LABEL], second[ROLE_LABEL]) == (Role.FLOOR, Role.SPOT)
    assert sample(p.metrics, "spot_extender_admission_owner_waits_total", result="seen") == 1


async def test_dry_run_admissions_are_not_counted():
    p = with_web(parts())
    for uid in ("a", "b"):
        _, labels = await admit(p, new_pod(), uid=uid, dryRun=True)
        assert labels[ROLE_LABEL] == Role.FLOOR
    assert len(p.index.admitted) == 0


@pytest.mark.parametrize("pod, request_fields, outcome", [
    (new_pod(namespace="kube-system"), {}, "excluded"),
    (new_pod(owner=None), {}, "unmanaged"),
    (new_pod(owner=("DaemonSet", "agent")), {}, "unmanaged"),
    (kruise_pod(), {}, "unmanaged"),  # an apps.kruise.io StatefulSet: no owner wait, no floor
    (new_pod(), {"operation": "UPDATE"}, "ignored"),
    (new_pod(nodeName="s1"), {}, "ignored"),
    (new_pod(), {"kind": {"group": "", "version": "v1", "kind": "Binding"}}, "ignored"),
    (new_pod(nodeSelector={"karpenter.sh/capacity-type": "spot"}), {}, "pinned"),
])
async def test_pods_it_does_not_give_a_role_are_admitted_unpatched(pod, request_fields, outcome):
    p = with_web(parts())
    response, labels = await admit(p, pod, **request_fields)
    assert labels is None and "patchType" not in response
    assert sample(p.metrics, "spot_extender_admissions_total", outcome=outcome) == 1


async def test_while_the_index_syncs_pods_are_admitted_unpatched():
    p = build(Settings())
    _, labels = await admit(p, new_pod())
    assert labels is None
    assert sample(p.metrics, "spot_extender_admissions_total", outcome="not-ready") == 1


@pytest.mark.parametrize("raw", [b"", b"{", b"[1]", orjson.dumps({"request": {"uid": "u", "object": 1}})])
async def test_unreadable_requests_are_admitted_and_counted(raw):
    p = with_web(parts())
    response = orjson.loads(await p.webhook.review(raw))["response"]
    assert response["allowed"] is True and "patch" not in response
    assert sample(p.metrics, "spot_extender_admissions_total", outcome="bad-request") == 1


async def test_an_error_of_its_own_admits_unpatched_logs_and_counts(caplog, monkeypatch):
    p = with_web(parts())

    def broken(*args):
        raise RuntimeError("floor computation broke")

    monkeypatch.setattr(p.webhook.floors, "of_workload", broken)
    response, labels = await admit(p, new_pod())
    assert labels is None
    assert sample(p.metrics, "spot_extender_admissions_total", outcome="error") == 1
    assert any("admission failed" in r.message and r.exc_info for r in caplog.records)
    _, labels = await admit(p, new_pod(), uid="after")  # and it goes on answering
    assert labels is None


AKS_SPOT_TAINT = {"key": "kubernetes.azure.com/scalesetpriority", "value": "spot", "effect": "NoSchedule"}


def aks_parts(**settings):
    """AKS: every spot pool carries the scalesetpriority label and its taint."""
    p = build(Settings(**settings))
    for kind in KIND_NAMES:
        p.index.replace(kind, [])
    for name in ("s1", "s2"):
        p.index.apply(NODE, "ADDED", f.node(name, None, labels={"kubernetes.azure.com/scalesetpriority": "spot"},
                                            taints=[AKS_SPOT_TAINT]))
    p.index.apply(NODE, "ADDED", f.node("o1", None, labels={"kubernetes.azure.com/scalesetpriority": "regular"}))
    return p


async def test_on_aks_spot_pods_get_the_spot_taints_toleration_so_the_floor_is_not_clamped_to_r():
    p = with_web(aks_parts(), replicas=4)
    assert await roles_of_burst(p, 4) == [Role.FLOOR, Role.SPOT, Role.SPOT, Role.SPOT]
    # Without the webhook's toleration (an empty --spot-tolerations) no spot node admits them: all floor.
    q = with_web(aks_parts(spot_tolerations=()), replicas=4)
    assert await roles_of_burst(q, 4) == [Role.FLOOR] * 4


async def test_a_pod_whose_volume_attaches_only_where_spot_is_gets_the_spot_role():
    # zone-c has spot nodes only; db-0's claim is bound to a volume there, db-1's to one in zone-a.
    p = parts()
    p.index.apply(NODE, "ADDED", f.node("s3", "spot", zone="zone-c"))
    p.index.apply("StatefulSet", "ADDED", f.statefulset("db", 3))
    p.index.apply("PodDisruptionBudget", "ADDED", f.pdb("db", {"app": "db"}, min_available=2))
    for ordinal, zone in ((0, "zone-c"), (1, "zone-a")):
        p.index.apply("PersistentVolume", "ADDED", {"metadata": {"name": f"pv-{ordinal}"}, "spec": {"nodeAffinity": {
            "required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "topology.kubernetes.io/zone", "operator": "In", "values": [zone]}]}]}}}})
        p.index.apply("PersistentVolumeClaim", "ADDED", {
            "metadata": {"name": f"data-db-{ordinal}", "namespace": "default"},
            "spec": {"volumeName": f"pv-{ordinal}"}, "status": {"phase": "Bound"}})
    roles = []
    for ordinal in (0, 1, 2):
        pod = new_pod(owner=("StatefulSet", "db"))
        pod["metadata"]["name"] = f"db-{ordinal}"
        pod["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": f"data-db-{ordinal}"}}]
        _, labels = await admit(p, pod, uid=f"db-{ordinal}")
        roles.append(labels[ROLE_LABEL])
    # db-2's claim is not bound yet: nothing to go by, the ordinal decides.
    assert roles == [Role.SPOT, Role.FLOOR, Role.SPOT]


async def test_a_statefulsets_ordinals_count_from_its_ordinals_start():
    p = parts()
    db = f.statefulset("db", 4)
    db["spec"]["ordinals"] = {"start": 3}
    p.index.apply("StatefulSet", "ADDED", db)
    p.index.apply("PodDisruptionBudget", "ADDED", f.pdb("db", {"app": "db"}, min_available=2))
    roles = []
    for name in ("db-3", "db-4", "db-5", "db-6"):
        pod = new_pod(owner=("StatefulSet", "db"))
        pod["metadata"]["name"] = name
        _, labels = await admit(p, pod, uid=name)
        roles.append(labels[ROLE_LABEL])
    assert roles == [Role.FLOOR, Role.FLOOR, Role.SPOT, Role.SPOT]


async def test_a_parallel_statefulset_goes_by_ordinal_without_waiting_for_the_watch():
    p = parts(webhook_confirm_wait=1.0)
    p.index.apply("StatefulSet", "ADDED", f.statefulset("db", 4))
    p.index.apply("PodDisruptionBudget", "ADDED", f.pdb("db", {"app": "db"}, min_available=2))
    roles = []
    for name in ("db-0", "db-1", "db-2", "db-3"):  # created at once: the watch shows none yet
        pod = new_pod(owner=("StatefulSet", "db"))
        pod["metadata"]["name"] = name
        _, labels = await admit(p, pod, uid=name, shown=False)
        roles.append(labels[ROLE_LABEL])
    assert roles == [Role.FLOOR, Role.FLOOR, Role.SPOT, Role.SPOT]
    assert sample(p.metrics, "spot_extender_unverified_total", what="admission", reason="unconfirmed") == 0
    assert not p.index.admitted.distrusted(("StatefulSet", "default", "db"))


@pytest.mark.parametrize("depth", [300, 2000])
async def test_a_pod_nested_past_the_encoders_limit_is_admitted_unpatched_with_its_uid(depth):
    """A forged review with an annotation nested deeper than orjson encodes (300) or
    decodes (2000): the answer is still allowed, with the request's uid when it is readable."""
    p = with_web(parts())
    pod = new_pod()
    pod["metadata"]["annotations"] = {"deep": "@"}
    text = body(pod, uid="deep-1").decode()
    raw = text.replace('"@"', "[" * depth + "]" * depth).encode()
    answer = await p.webhook.review(raw)
    response = orjson.loads(answer)["response"]
    assert response["allowed"] is True and "patch" not in response
    assert response["uid"] == ("deep-1" if depth == 300 else "")
    _, labels = await admit(p, new_pod(), uid="after")  # and it goes on answering
    assert labels is not None


async def test_while_a_floor_falls_back_its_pods_are_admitted_as_spot():
    p = with_web(parts())
    rs = f.replicaset("web-1", "web", 10)
    rs["metadata"]["annotations"]["spot-extender.io/floor-fallback"] = "2026-01-01T00:00:00Z"
    p.index.apply("ReplicaSet", "MODIFIED", rs)
    assert await roles_of_burst(p, 2) == [Role.SPOT, Role.SPOT]
    del rs["metadata"]["annotations"]["spot-extender.io/floor-fallback"]
    p.index.apply("ReplicaSet", "MODIFIED", rs)
    assert await roles_of_burst(p, 2, prefix="after") == [Role.FLOOR, Role.SPOT]


def seek_marker(p, stamp):
    rs = f.replicaset("web-1", "web", 10)
    if stamp is not None:
        rs["metadata"]["annotations"]["spot-extender.io/spot-seek"] = stamp
    p.index.apply("ReplicaSet", "MODIFIED", rs)


def affinity_of(response) -> dict:
    ops = orjson.loads(base64.b64decode(response["patch"]))
    return next(op["value"] for op in ops if op["path"] == "/spec/affinity")["nodeAffinity"]


async def test_during_a_spot_seek_spot_pods_require_spot_and_floor_pods_stay_floor():
    p = with_web(parts(spot_seek_timeout=60))
    p.webhook.wall = lambda: f.epoch("2026-01-01T00:00:30Z")
    seek_marker(p, "2026-01-01T00:00:00Z")
    first, labels = await admit(p, new_pod(), uid="a")
    assert labels[ROLE_LABEL] == Role.FLOOR  # a floor short of k is never given up for a seek
    response, labels = await admit(p, new_pod(), uid="b")
    assert labels[ROLE_LABEL] == Role.SPOT
    assert "requiredDuringSchedulingIgnoredDuringExecution" in affinity_of(response)
    assert sample(p.metrics, "spot_extender_admissions_total", outcome="spot-seek") == 1
    p.webhook.wall = lambda: f.epoch("2026-01-01T00:01:30Z")  # the marker is older than the timeout
    response, labels = await admit(p, new_pod(), uid="c")
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in affinity_of(response)
    seek_marker(p, "not a time")
    response, _ = await admit(p, new_pod(), uid="d")
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in affinity_of(response)


async def test_terms_name_only_the_capacity_keys_the_nodes_carry():
    p = with_web(parts())
    for name in ("s1", "s2", "o1"):  # now Karpenter's nodes
        p.index.apply(NODE, "DELETED", f.node(name))
    p.index.apply(NODE, "ADDED", f.node("k1", None, labels={"karpenter.sh/capacity-type": "on-demand"}))
    assert p.index.capacity_keys() == {"karpenter.sh/capacity-type"}
    response, labels = await admit(p, new_pod(), uid="a")
    assert labels[ROLE_LABEL] == Role.FLOOR
    terms = affinity_of(response)["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [
        {"key": "karpenter.sh/capacity-type", "operator": "NotIn", "values": ["spot"]}]}]
    p.index.apply(NODE, "DELETED", f.node("k1", None))
    assert not p.index.capacity_keys()
    response, _ = await admit(p, new_pod(), uid="b")
    assert len(affinity_of(response)["preferredDuringSchedulingIgnoredDuringExecution"]) > 1  # every rule again


def spread_of(response) -> list | None:
    ops = orjson.loads(base64.b64decode(response["patch"]))
    return next((op["value"] for op in ops if op["path"] == "/spec/topologySpreadConstraints"), None)


@pytest.mark.parametrize("seek_spot, karpenter_node, floor_spread", [
    ("auto", False, ["topology.kubernetes.io/zone"]),
    ("auto", True, []),  # Karpenter reads a preferred spread as required: a node per zone
    ("on", False, []),
    ("off", True, ["topology.kubernetes.io/zone"]),
])
async def test_floor_pods_spread_over_zones_unless_an_autoscaler_provisions_and_spot_pods_always_do(
        seek_spot, karpenter_node, floor_spread):
    p = with_web(parts(seek_spot=seek_spot))
    if karpenter_node:
        p.index.apply(NODE, "ADDED", f.node("k1", "on-demand", labels={"karpenter.sh/nodepool": "default"}))
    floor, labels = await admit(p, new_pod(), uid="a")
    assert labels[ROLE_LABEL] == Role.FLOOR
    assert [c["topologyKey"] for c in spread_of(floor) or ()] == floor_spread
    spot, labels = await admit(p, new_pod(), uid="b")
    assert labels[ROLE_LABEL] == Role.SPOT and "topology.kubernetes.io/zone" in [c["topologyKey"] for c in spread_of(spot)]


async def test_a_statefulsets_lowest_ordinals_are_its_floor_pods_so_a_scale_down_keeps_them():
    p = parts()
    p.index.apply("StatefulSet", "ADDED", f.statefulset("db", 4))
    p.index.apply("PodDisruptionBudget", "ADDED", f.pdb("db", {"app": "db"}, min_available=2))
    # However many floor pods exist (db-3 and db-2 from before k was 2), ordinals go first.
    for name, role in (("db-3", Role.FLOOR), ("db-2", Role.FLOOR)):
        pod = new_pod(owner=("StatefulSet", "db"))
        pod["metadata"].update(name=name, uid=name, labels={"app": "db", ROLE_LABEL: role},
                               annotations={ADMISSION_ANNOTATION: f"admission-of-{name}"})
        pod["spec"]["nodeName"] = "o1"
        p.index.apply(POD, "ADDED", pod)
    for name, role in (("db-0", Role.FLOOR), ("db-1", Role.FLOOR), ("db-5", Role.SPOT)):
        pod = new_pod(owner=("StatefulSet", "db"))
        pod["metadata"]["name"] = name
        _, labels = await admit(p, pod, uid=name)
        assert labels[ROLE_LABEL] == role, name


# ---- Forged reviews: /mutate cannot tell them from kube-apiserver's without a client
# certificate, so what they leave behind may only err toward on-demand (issue 26).

def forged(owner_uid=None, template_hash="web-1") -> dict:
    pod = new_pod()
    pod["metadata"]["labels"]["pod-template-hash"] = template_hash
    if owner_uid is not None:
        pod["metadata"]["ownerReferences"][0]["uid"] = owner_uid
    return pod


async def test_forged_reviews_that_do_not_match_the_owner_leave_nothing_and_the_burst_stays_exact():
    p = with_web(parts(), replicas=6, annotations={"spot-extender.io/on-demand-floor": "3"})
    for i, pod in enumerate([forged(owner_uid="not-the-replicasets-uid"), forged(template_hash="an-old-revision"),
                             forged(owner_uid="")]):
        await admit(p, pod, uid=f"forged-{i}", shown=False)
    assert len(p.index.admitted) == 0
    assert sample(p.metrics, "spot_extender_unverified_total", what="admission", reason="owner-uid") == 2
    assert sample(p.metrics, "spot_extender_unverified_total", what="admission", reason="revision") == 1
    assert await roles_of_burst(p, 6) == [Role.FLOOR] * 3 + [Role.SPOT] * 3


async def test_admissions_that_copy_the_owner_exactly_are_bounded_by_its_room():
    p = with_web(parts(), replicas=6, annotations={"spot-extender.io/on-demand-floor": "3"})
    for i in range(1000):
        await admit(p, forged(), uid=f"forged-{i}", shown=False)
    assert len(p.index.admitted) == 6  # R less its live pods, however many come
    assert sample(p.metrics, "spot_extender_unverified_total", what="admission", reason="no-room") == 994
    for i in range(6):  # the ReplicaSet is full: no room for any unseen admission
        p.index.apply(POD, "ADDED", f.pod(f"web-1-{i}", owner=("ReplicaSet", "web-1"), node_name="o1",
                                          labels={"app": "web"}))
    p.index.admitted = type(p.index.admitted)(10.0)
    await admit(p, forged(), uid="one-more", shown=False)
    assert len(p.index.admitted) == 0


async def test_an_admission_the_watch_never_shows_cannot_make_the_next_pods_spot():
    # A create denied after mutating admission (a quota, a validating policy), or a forged
    # review copying the owner exactly: counted, its entry would make the next real pods spot.
    p = with_web(parts(), replicas=6, annotations={"spot-extender.io/on-demand-floor": "3"})
    now = [0.0]
    p.index.admitted.clock = lambda: now[0]
    assert await roles_of_burst(p, 3, prefix="denied", shown=False) == [Role.FLOOR] * 3  # never created
    # The next real pod waits for them to show, in vain: it is floor, and the group stops trusting them.
    assert await roles_of_burst(p, 6, prefix="real") == [Role.FLOOR] * 3 + [Role.SPOT] * 3
    assert sample(p.metrics, "spot_extender_unverified_total", what="admission", reason="unconfirmed") == 1
    assert p.index.admitted.distrusted(("ReplicaSet", "default", "web-1"))
    now[0] += 10.0  # --admission-ttl passes with no pod seen: expired, and counted
    assert len(p.index.admitted) == 0
    assert sample(p.metrics, "spot_extender_unverified_total", what="admission", reason="expired") == 3


async def test_while_the_watch_lags_a_distrusted_group_errs_toward_floor_pods():
    p = with_web(parts(), replicas=6, annotations={"spot-extender.io/on-demand-floor": "3"})
    p.index.admitted.distrust(("ReplicaSet", "default", "web-1"))
    assert await roles_of_burst(p, 5, shown=False) == [Role.FLOOR] * 5  # extra floors, none short


async def test_a_forged_admission_that_takes_the_last_room_does_not_take_the_real_pods_floor():
    # R = 6, k = 3, one floor pod being replaced: the owner has room for one pod. A forged
    # review copying owner and revision takes it; the real replacement must still be floor.
    p = with_web(parts(), replicas=6, annotations={"spot-extender.io/on-demand-floor": "3"})
    for i, role in enumerate([Role.FLOOR, Role.FLOOR, Role.SPOT, Role.SPOT, Role.SPOT]):
        p.index.apply(POD, "ADDED", f.pod(f"web-1-{i}", owner=("ReplicaSet", "web-1"), node_name="o1",
                                          labels={"app": "web", "pod-template-hash": "web-1"}, role=role))
    _, forged_labels = await admit(p, forged(), uid="forged", shown=False)
    assert forged_labels[ROLE_LABEL] == Role.FLOOR and len(p.index.admitted) == 1
    _, real = await admit(p, new_pod(), uid="the-replacement")
    assert real[ROLE_LABEL] == Role.FLOOR
    assert p.index.admitted.distrusted(("ReplicaSet", "default", "web-1"))
