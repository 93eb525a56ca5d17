import pytest

from spot_extender.cluster.constraints import NONE, Constraints, Taint, admits, from_pod_spec

LABELS = {"node.kubernetes.io/capacity": "spot", "topology.kubernetes.io/zone": "zone-a", "cores": "8"}
SPOT_TAINT = Taint("kubernetes.azure.com/scalesetpriority", "spot", "NoSchedule")


def affinity(*terms):
    return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": list(terms)}}}}


def expr(key, operator, *values):
    return {"matchExpressions": [{"key": key, "operator": operator, "values": list(values)}]}


@pytest.mark.parametrize(
    "spec, taints, expected",
    [
        ({}, (), True),
        ({"nodeSelector": {"node.kubernetes.io/capacity": "spot"}}, (), True),
        ({"nodeSelector": {"node.kubernetes.io/capacity": "on-demand"}}, (), False),
        ({"nodeSelector": {"missing": "x"}}, (), False),
        (affinity(expr("node.kubernetes.io/capacity", "In", "spot", "x")), (), True),
        (affinity(expr("node.kubernetes.io/capacity", "NotIn", "spot")), (), False),
        (affinity(expr("node.kubernetes.io/capacity", "NotIn", "on-demand")), (), True),
        (affinity(expr("absent", "DoesNotExist")), (), True),
        (affinity(expr("cores", "Exists")), (), True),
        (affinity(expr("cores", "Gt", "4")), (), True),
        (affinity(expr("cores", "Lt", "4")), (), False),
        (affinity(expr("cores", "Gt", "four")), (), False),
        (affinity(expr("absent", "Exists"), expr("cores", "Exists")), (), True),  # terms are ORed
        (affinity({"matchExpressions": [{"key": "cores", "operator": "Exists"},
                                        {"key": "absent", "operator": "Exists"}]}), (), False),  # ANDed within
        (affinity({}), (), False),  # an empty term selects nothing
        (affinity(), (), False),  # no terms: nothing
        (affinity({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}), (), True),
        (affinity({"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]}), (), False),
        (affinity(expr("cores", "Weird", "1")), (), False),
        ({}, (SPOT_TAINT,), False),
        ({}, (Taint("soft", "", "PreferNoSchedule"),), True),
        ({"tolerations": [{"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot",
                           "effect": "NoSchedule"}]}, (SPOT_TAINT,), True),
        ({"tolerations": [{"key": "kubernetes.azure.com/scalesetpriority", "value": "regular"}]}, (SPOT_TAINT,), False),
        ({"tolerations": [{"key": "kubernetes.azure.com/scalesetpriority", "operator": "Exists"}]}, (SPOT_TAINT,), True),
        ({"tolerations": [{"operator": "Exists"}]}, (SPOT_TAINT, Taint("other", "", "NoExecute")), True),
        ({"tolerations": [{"key": "kubernetes.azure.com/scalesetpriority", "operator": "Exists",
                           "effect": "NoExecute"}]}, (SPOT_TAINT,), False),
    ],
)
def test_admits_as_the_scheduler_filters_do(spec, taints, expected):
    assert admits(from_pod_spec(spec), "n1", LABELS, taints) is expected


@pytest.mark.parametrize("spec", [{}, {"nodeSelector": None}, {"affinity": {}}, {"tolerations": []},
                                  {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}}])
def test_no_constraints_is_the_shared_none(spec):
    assert from_pod_spec(spec) is NONE


@pytest.mark.parametrize("spec", [{"nodeSelector": ["x"]}, {"affinity": "x"}, {"tolerations": ["x", 1]},
                                  {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": 5}}},
                                  affinity("x", {"matchExpressions": [1, {"key": 2}]})])
def test_malformed_parts_read_as_absent(spec):
    constraints = from_pod_spec(spec)
    assert isinstance(constraints, Constraints)
    admits(constraints, "n1", LABELS, (SPOT_TAINT,))  # never raises
