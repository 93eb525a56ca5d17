import pytest

from spot_extender.nodes import ON_DEMAND, SPOT, UNKNOWN, NodeClassifier, Pool
from spot_extender.settings import Settings
from tests.helpers import objects as f

CLASSIFIER = NodeClassifier(Settings())


@pytest.mark.parametrize(
    "labels, expected",
    [
        ({"node.kubernetes.io/capacity": "spot"}, SPOT),
        ({"node.kubernetes.io/capacity": "on-demand"}, ON_DEMAND),
        ({"karpenter.sh/capacity-type": "spot"}, SPOT),
        ({"karpenter.sh/capacity-type": "on-demand"}, ON_DEMAND),
        ({"karpenter.sh/capacity-type": "reserved"}, ON_DEMAND),
        ({"eks.amazonaws.com/capacityType": "SPOT"}, SPOT),
        ({"eks.amazonaws.com/capacityType": "ON_DEMAND"}, ON_DEMAND),
        ({"cloud.google.com/gke-spot": "true"}, SPOT),
        ({"cloud.google.com/gke-preemptible": "true"}, SPOT),
        ({"cloud.google.com/gke-provisioning": "spot"}, SPOT),
        ({"cloud.google.com/gke-provisioning": "preemptible"}, SPOT),
        ({"cloud.google.com/gke-provisioning": "standard"}, ON_DEMAND),
        ({"kubernetes.azure.com/scalesetpriority": "spot"}, SPOT),
        ({"kubernetes.azure.com/scalesetpriority": "regular"}, ON_DEMAND),
        ({"eks.amazonaws.com/capacityType": "spot"}, UNKNOWN),  # values are case-sensitive, as in EKS
        ({"cloud.google.com/gke-spot": "false"}, UNKNOWN),
        ({}, UNKNOWN),
    ],
)
def test_provider_labels(labels, expected):
    assert CLASSIFIER.capacity(labels) == expected


def test_first_matching_rule_wins():
    labels = {"node.kubernetes.io/capacity": "on-demand", "karpenter.sh/capacity-type": "spot"}
    assert CLASSIFIER.capacity(labels) == ON_DEMAND


def test_custom_rules_replace_builtin():
    classifier = NodeClassifier(Settings(capacity_labels=("pool=cheap:spot",)))
    assert classifier.capacity({"pool": "cheap"}) == SPOT
    assert classifier.capacity({"node.kubernetes.io/capacity": "spot"}) == UNKNOWN


@pytest.mark.parametrize("unknown_class", ["on-demand", "spot"])
def test_unknown_maps_to_configured_class(unknown_class):
    classifier = NodeClassifier(Settings(unknown_class=unknown_class))
    record = classifier.record(f.node("n1", capacity=None))
    assert record.capacity == UNKNOWN
    assert record.effective == unknown_class
    assert classifier.unknown_node("ghost").pool == Pool(unknown_class, "", "")


def test_pool_is_class_instance_type_zone():
    record = CLASSIFIER.record(f.node("n1", "spot", zone="eu-1b", instance_type="c6i.xlarge"))
    assert record.pool == Pool(SPOT, "c6i.xlarge", "eu-1b")


def test_pool_reads_beta_labels():
    raw = f.node("n1", "spot")
    labels = raw["metadata"]["labels"]
    del labels["topology.kubernetes.io/zone"], labels["node.kubernetes.io/instance-type"]
    labels["failure-domain.beta.kubernetes.io/zone"] = "z-old"
    labels["beta.kubernetes.io/instance-type"] = "t-old"
    assert CLASSIFIER.record(raw).pool == Pool(SPOT, "t-old", "z-old")


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
