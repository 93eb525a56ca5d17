import pytest

from spot_extender.cluster.constraints import selector_matches
from spot_extender.cluster.records import (
    GroupKey,
    WorkloadKey,
    admitted_role,
    group_of,
    pdb_record,
    pod_record,
    workload_record,
)
from spot_extender.core.vocabulary import ADMISSION_ANNOTATION, ROLE_LABEL, Role
from tests.helpers import objects as f


def test_pod_of_replicaset_and_statefulset():
    assert pod_record(f.pod("a", owner=("ReplicaSet", "web-1"))).group == GroupKey("ReplicaSet", "default", "web-1")
    assert pod_record(f.pod("a", owner=("StatefulSet", "db"))).group == GroupKey("StatefulSet", "default", "db")


@pytest.mark.parametrize("owner", [("DaemonSet", "ds"), ("Job", "j"), None])
def test_other_pods_have_no_group(owner):
    assert pod_record(f.pod("a", owner=owner)).group is None


@pytest.mark.parametrize("api_version", ["apps.kruise.io/v1beta1", "example.com/v1", "v1"])
def test_an_owner_of_the_same_kind_in_another_api_group_is_not_ours(api_version):
    # OpenKruise's Advanced StatefulSet is kind StatefulSet of apps.kruise.io.
    raw = f.pod("db-0", owner=("StatefulSet", "db"))
    raw["metadata"]["ownerReferences"][0]["apiVersion"] = api_version
    assert pod_record(raw).group is None and pod_record(raw).owner_kind == "StatefulSet"
    rs = f.replicaset("web-1", "web")
    rs["metadata"]["ownerReferences"][0]["apiVersion"] = api_version
    assert workload_record("ReplicaSet", rs).owner is None  # a ReplicaSet of its own, then


def test_a_rollouts_replicaset_is_matched_by_its_group():
    rs = f.replicaset("web-1", "web")
    rs["metadata"]["ownerReferences"][0].update({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout"})
    rs["metadata"]["annotations"] = {"rollout.argoproj.io/revision": "4"}
    record = workload_record("ReplicaSet", rs)
    assert (record.owner, record.revision) == (WorkloadKey("Rollout", "default", "web"), 4)


def test_non_controller_owner_is_ignored():
    raw = f.pod("a", owner=("ReplicaSet", "web-1"))
    raw["metadata"]["ownerReferences"][0]["controller"] = False
    assert group_of(raw["metadata"]) is None


@pytest.mark.parametrize(
    "kwargs, counts",
    [
        ({"node_name": "n1"}, True),
        ({}, False),  # pending
        ({"node_name": "n1", "deleting": True}, False),
        ({"node_name": "n1", "phase": "Succeeded"}, False),
        ({"node_name": "n1", "phase": "Failed"}, False),
    ],
)
def test_which_pods_count(kwargs, counts):
    assert pod_record(f.pod("a", owner=("ReplicaSet", "r"), **kwargs)).counts is counts


def test_pod_readiness():
    assert pod_record(f.pod("a", node_name="n", ready=True)).ready
    assert not pod_record(f.pod("a", node_name="n", ready=False)).ready


def test_workload_records():
    d = workload_record("Deployment", f.deployment("web", 4, annotations={"spot-extender.io/on-demand-floor": "2"}))
    assert (d.replicas, d.floor, d.placement, d.template_labels) == (4, "2", None, {"app": "web"})
    rs = workload_record("ReplicaSet", f.replicaset("web-abc", "web", revision=7))
    assert (rs.owner, rs.revision) == (WorkloadKey("Deployment", "default", "web"), 7)
    bare = workload_record("ReplicaSet", f.replicaset("solo", None))
    assert bare.owner is None


@pytest.mark.parametrize("value, rebalance, surge", [
    ("true", True, True), ("Yes", True, True), ("on", True, True), ("1", True, True),
    ("false", False, False), ("NO", False, False), ("off", False, False), ("0", False, False),
    ("maybe", True, False), ("", True, False),  # not a boolean word: each annotation's default
])
def test_boolean_annotations_take_the_spellings_flags_take(value, rebalance, surge):
    annotations = {"spot-extender.io/rebalance": value, "spot-extender.io/surge": value}
    record = workload_record("Deployment", f.deployment("web", 4, annotations=annotations))
    assert (record.rebalance, record.surge) == (rebalance, surge)


@pytest.mark.parametrize("ordinals, start", [({"start": 3}, 3), ({}, 0), (None, 0), ({"start": -1}, 0),
                                             ({"start": "3"}, 0), ("x", 0)])
def test_a_statefulsets_ordinals_start(ordinals, start):
    raw = f.statefulset("db", 3)
    if ordinals is not None:
        raw["spec"]["ordinals"] = ordinals
    assert workload_record("StatefulSet", raw).ordinal_start == start


@pytest.mark.parametrize("condition, spec, unscheduled", [
    ({"reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient cpu."}, {}, "unschedulable"),
    ({"reason": "Unschedulable", "message": "pod has unbound immediate PersistentVolumeClaims"}, {}, "waiting-for-volume"),
    ({"reason": "Unschedulable", "message": 'persistentvolumeclaim "data" not found'}, {}, "waiting-for-volume"),
    ({"reason": "SchedulingGated"}, {}, "gated"),
    (None, {"schedulingGates": [{"name": "example.com/wait"}]}, "gated"),
    (None, {}, ""),  # not tried yet
])
def test_why_a_pending_pod_waits(condition, spec, unscheduled):
    raw = f.pod("web-1-a", owner=("ReplicaSet", "web-1"))
    raw["spec"].update(spec)
    if condition:
        raw["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", **condition}]
    assert pod_record(raw).unscheduled == unscheduled


def test_pods_with_the_same_labels_share_one_mapping_and_theirs_are_read_only():
    a, b = (pod_record(f.pod(name, owner=("ReplicaSet", "web-1"), labels={"app": "web"})) for name in ("a", "b"))
    assert a.labels is b.labels and dict(a.labels) == {"app": "web"}
    with pytest.raises(TypeError):
        a.labels["app"] = "other"


def test_missing_replicas_defaults_to_one():
    raw = f.deployment("web")
    del raw["spec"]["replicas"]
    assert workload_record("Deployment", raw).replicas == 1


def test_pdb_record():
    record = pdb_record(f.pdb("p", {"app": "web"}, min_available="50%"))
    assert (record.min_available, record.max_unavailable, record.selector) == ("50%", None, {"matchLabels": {"app": "web"}})


LABELS = {"app": "web", "tier": "front"}


@pytest.mark.parametrize(
    "selector, expected",
    [
        (None, False),
        ({}, True),
        ({"matchLabels": {"app": "web"}}, True),
        ({"matchLabels": {"app": "db"}}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "x"]}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}, False),
        ({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, False),
        ({"matchExpressions": [{"key": "app", "operator": "Weird"}]}, False),
        ({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["back"]}]}, False),
    ],
)
def test_selector(selector, expected):
    assert selector_matches(selector, LABELS) is expected


def _started(created, ready_at, status="True"):
    raw = f.pod("web-1", node_name="n1")
    raw["metadata"]["creationTimestamp"] = created
    raw["status"]["conditions"] = [{"type": "Ready", "status": status, "lastTransitionTime": ready_at}]
    return raw


@pytest.mark.parametrize("raw, ready_after", [
    (_started("2026-12-02T10:00:00Z", "2026-12-02T10:00:07Z"), 7.0),
    (_started("2026-12-02T10:00:07Z", "2026-12-02T10:00:00Z"), 0.0),  # clocks apart: never negative
    (_started("2026-12-02T10:00:00Z", "2026-12-02T10:00:07Z", status="False"), None),  # not Ready: no start-up yet
    (_started("2026-12-02T10:00:00Z", "soon"), None),
    (_started("2026-12-02T10:00:00Z", ["a list"]), None),
    (_started("2026-12-02T10:00:00", "2026-12-02T10:00:07Z"), None),  # one with a zone, one without
    (f.pod("web-1", node_name="n1"), None),
])
def test_start_up_time_of_a_ready_pod(raw, ready_after):
    assert pod_record(raw).ready_after == ready_after


@pytest.mark.parametrize("value, grace", [(None, 30), (0, 0), (120, 120), (-5, 0), (10**12, 86400), ("60", 30), (True, 30)])
def test_termination_grace_period_is_bounded(value, grace):
    raw = f.pod("web-1", node_name="n1")
    if value is not None:
        raw["spec"]["terminationGracePeriodSeconds"] = value
    assert pod_record(raw).grace == grace


def test_the_labels_of_pods_no_longer_held_are_not_kept():
    import gc

    from spot_extender.cluster import records

    gc.collect()  # what earlier tests left behind goes first, not during the count
    before = len(records._LABEL_SETS)
    held = [pod_record(f.pod(f"db-{i}", owner=("StatefulSet", "db"), labels={"app": "db", "pod": f"db-{i}"}))
            for i in range(500)]
    assert len(records._LABEL_SETS) == before + 500
    del held
    gc.collect()
    assert len(records._LABEL_SETS) == before


ADMITTED = {ADMISSION_ANNOTATION: "3f1c-request-uid"}


@pytest.mark.parametrize("labels, annotations, role", [
    ({ROLE_LABEL: Role.FLOOR}, ADMITTED, Role.FLOOR),
    ({ROLE_LABEL: Role.SPOT}, ADMITTED, Role.SPOT),
    ({ROLE_LABEL: Role.SPOT}, {}, ""),  # a template's own label: no admission of ours beside it
    ({ROLE_LABEL: Role.FLOOR}, None, ""),
    ({ROLE_LABEL: Role.SPOT}, {ADMISSION_ANNOTATION: ""}, ""),
    ({ROLE_LABEL: Role.SPOT, "spot-extender.io/webhook": "off"}, ADMITTED, ""),  # opted out: the webhook never ran
    ({ROLE_LABEL: Role.SPOT, "spot-extender.io/webhook": "on"}, ADMITTED, Role.SPOT),
    ({ROLE_LABEL: "boss"}, ADMITTED, ""),
    ({}, ADMITTED, ""),
    (None, ADMITTED, ""),
])
def test_a_role_label_counts_only_beside_the_webhooks_admission_record(labels, annotations, role):
    assert admitted_role(labels, annotations) == role
