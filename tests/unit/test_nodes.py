import pytest

from spot_extender.cluster.nodes import NodeClassifier, Pool
from spot_extender.core.settings import Settings
from spot_extender.core.vocabulary import Capacity
from tests.helpers import objects as f

CLASSIFIER = NodeClassifier(Settings())


@pytest.mark.parametrize(
    "labels, expected",
    [
        ({"node.kubernetes.io/capacity": "spot"}, Capacity.SPOT),
        ({"node.kubernetes.io/capacity": "on-demand"}, Capacity.ON_DEMAND),
        ({"karpenter.sh/capacity-type": "spot"}, Capacity.SPOT),
        ({"karpenter.sh/capacity-type": "on-demand"}, Capacity.ON_DEMAND),
        ({"karpenter.sh/capacity-type": "reserved"}, Capacity.ON_DEMAND),
        ({"eks.amazonaws.com/capacityType": "SPOT"}, Capacity.SPOT),
        ({"eks.amazonaws.com/capacityType": "ON_DEMAND"}, Capacity.ON_DEMAND),
        ({"cloud.google.com/gke-spot": "true"}, Capacity.SPOT),
        ({"cloud.google.com/gke-preemptible": "true"}, Capacity.SPOT),
        ({"cloud.google.com/gke-provisioning": "spot"}, Capacity.SPOT),
        ({"cloud.google.com/gke-provisioning": "preemptible"}, Capacity.SPOT),
        ({"cloud.google.com/gke-provisioning": "standard"}, Capacity.ON_DEMAND),
        ({"kubernetes.azure.com/scalesetpriority": "spot"}, Capacity.SPOT),
        ({"kubernetes.azure.com/scalesetpriority": "regular"}, Capacity.ON_DEMAND),
        ({"eks.amazonaws.com/capacityType": "spot"}, Capacity.UNKNOWN),  # values are case-sensitive, as in EKS
        ({"cloud.google.com/gke-spot": "false"}, Capacity.UNKNOWN),
        ({}, Capacity.UNKNOWN),
    ],
)
def test_provider_labels(labels, expected):
    assert CLASSIFIER.capacity(labels) == expected


def test_first_matching_rule_wins():
    labels = {"node.kubernetes.io/capacity": "on-demand", "karpenter.sh/capacity-type": "spot"}
    assert CLASSIFIER.capacity(labels) == Capacity.ON_DEMAND


def test_custom_rules_replace_builtin():
    classifier = NodeClassifier(Settings(capacity_labels=("pool=cheap:spot",)))
    assert classifier.capacity({"pool": "cheap"}) == Capacity.SPOT
    assert classifier.capacity({"node.kubernetes.io/capacity": "spot"}) == Capacity.UNKNOWN


@pytest.mark.parametrize("unknown_class", ["on-demand", "spot"])
def test_unknown_maps_to_configured_class(unknown_class):
    classifier = NodeClassifier(Settings(unknown_class=unknown_class))
    record = classifier.record(f.node("n1", capacity=None))
    assert record.capacity == Capacity.UNKNOWN
    assert record.effective == unknown_class
    assert classifier.unknown_node("ghost").pool == Pool(unknown_class, "", "")


def test_pool_is_class_instance_type_zone():
    record = CLASSIFIER.record(f.node("n1", "spot", zone="eu-1b", instance_type="c6i.xlarge"))
    assert record.pool == Pool(Capacity.SPOT, "c6i.xlarge", "eu-1b")


def test_pool_reads_beta_labels():
    raw = f.node("n1", "spot")
    labels = raw["metadata"]["labels"]
    del labels["topology.kubernetes.io/zone"], labels["node.kubernetes.io/instance-type"]
    labels["failure-domain.beta.kubernetes.io/zone"] = "z-old"
    labels["beta.kubernetes.io/instance-type"] = "t-old"
    assert CLASSIFIER.record(raw).pool == Pool(Capacity.SPOT, "t-old", "z-old")


TERMINATION_TAINTS = [
    "aws-node-termination-handler/spot-itn",
    "aws-node-termination-handler/rebalance-recommendation",
    "aws-node-termination-handler/scheduled-maintenance",
    "aws-node-termination-handler/asg-lifecycle-termination",
    "karpenter.sh/disrupted",
    "ToBeDeletedByClusterAutoscaler",
    "cloud.google.com/impending-node-termination",
    "remediator.kubernetes.azure.com/unschedulable",
    "node.kubernetes.io/unschedulable",
    "node.kubernetes.io/out-of-service",
    "node.cloudprovider.kubernetes.io/shutdown",
]


@pytest.mark.parametrize("key", TERMINATION_TAINTS)
def test_termination_taints_mean_going_away(key):
    raw = f.node("n1", taints=[{"key": key, "effect": "NoSchedule"}])
    assert CLASSIFIER.going_away(raw) == f"node has taint {key}"


@pytest.mark.parametrize(
    "raw, reason",
    [
        (f.node("n1"), None),
        (f.node("n1", taints=[{"key": "DeletionCandidateOfClusterAutoscaler", "effect": "PreferNoSchedule"}]), None),
        (f.node("n1", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]), None),
        (f.node("n1", unschedulable=True), "node is cordoned"),
        (f.node("n1", ready=False), "node is not Ready"),
        (f.node("n1", deleting=True), "node is being deleted"),
        ({"metadata": {"name": "n1"}}, "node is not Ready"),  # no Ready condition yet
    ],
)
def test_going_away_signals(raw, reason):
    assert CLASSIFIER.going_away(raw) == reason


def test_signals_can_be_switched_off():
    classifier = NodeClassifier(Settings(going_away_signals=("taints",)))
    assert classifier.going_away(f.node("n1", unschedulable=True, ready=False, deleting=True)) is None
    assert classifier.going_away(f.node("n1", taints=[{"key": "karpenter.sh/disrupted"}])) is not None


def test_taint_list_is_configurable():
    classifier = NodeClassifier(Settings(going_away_taints=("example.com/leaving",)))
    assert classifier.going_away(f.node("n1", taints=[{"key": "example.com/leaving"}])) is not None
    assert classifier.going_away(f.node("n1", taints=[{"key": "karpenter.sh/disrupted"}])) is None


ITN = {"key": "aws-node-termination-handler/spot-itn", "value": "true", "effect": "NoSchedule"}
UNSCHEDULABLE = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
GKE = {"key": "cloud.google.com/impending-node-termination", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    "raw, reason, notice, signalled_at",
    [
        (f.node("n1", taints=[ITN]), f"node has taint {ITN['key']}", 120.0, None),
        # Handlers cordon as they taint: the cordon neither names the reason nor shortens the notice.
        (f.node("n1", taints=[UNSCHEDULABLE, ITN], unschedulable=True), f"node has taint {ITN['key']}", 120.0, None),
        (f.node("n1", taints=[ITN, GKE]), f"node has taint {ITN['key']}", 30.0, None),  # the shortest notice
        (f.node("n1", taints=[{"key": "remediator.kubernetes.azure.com/unschedulable"}]), None, 30.0, None),
        (f.node("n1", taints=[{"key": "karpenter.sh/disrupted"}]), None, 0.0, None),  # no notice: at once
        (f.node("n1", unschedulable=True), "node is cordoned", 0.0, None),
        (f.node("n1", taints=[ITN], deleting=True), "node is being deleted", 0.0, None),  # deletion means now
        (f.node("n1", taints=[{**ITN, "timeAdded": "2026-12-02T10:00:00Z"}]), None, 120.0, 1796205600.0),
        (f.node("n1", taints=[{**ITN, "timeAdded": "yesterday"}]), None, 120.0, None),  # malformed: ignored
        (f.node("n1", taints=[{**ITN, "timeAdded": "0001-01-01T00:00:00"}]), None, 120.0, None),  # out of range
        (f.node("n1"), None, 0.0, None),  # not going away at all
    ],
)
def test_notice_of_a_going_away_node(raw, reason, notice, signalled_at):
    record = CLASSIFIER.record(raw)
    if reason is not None:
        assert record.going_away == reason
    assert (record.notice, record.signalled_at) == (notice, signalled_at)


def test_notices_are_configurable_and_can_all_be_off():
    custom = NodeClassifier(Settings(drain_notice=("karpenter.sh/disrupted=45s",)))
    assert custom.record(f.node("n1", taints=[{"key": "karpenter.sh/disrupted"}])).notice == 45.0
    assert custom.record(f.node("n1", taints=[ITN])).notice == 0.0
    off = NodeClassifier(Settings(drain_notice=()))
    assert off.record(f.node("n1", taints=[ITN])).notice == 0.0
