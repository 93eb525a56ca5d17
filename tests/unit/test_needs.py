"""What a pod spec needs of a node beyond its constraints, read as kube-scheduler reads it."""

from __future__ import annotations

import pytest

from spot_extender.cluster.needs import NO_NEEDS, PodTerm, needs_of, ports_conflict


def container(**fields) -> dict:
    return {"name": "c", "image": "c:1", **fields}


def test_a_plain_pod_needs_nothing_beyond_cpu_and_memory():
    assert needs_of({"containers": [container(resources={"requests": {"cpu": "1", "memory": "1Gi"}})]}) is NO_NEEDS


def test_extended_requests_sum_over_containers_and_take_the_largest_init_container():
    spec = {"containers": [container(resources={"requests": {"nvidia.com/gpu": "1", "cpu": "1"}}),
                           container(resources={"requests": {"nvidia.com/gpu": "2", "hugepages-2Mi": "4Mi"}})],
            "initContainers": [container(resources={"requests": {"nvidia.com/gpu": "4"}})]}
    assert needs_of(spec).extended == (("hugepages-2Mi", 4 * 2**20 * 1000), ("nvidia.com/gpu", 4000))


def test_a_templates_limits_stand_in_for_the_requests_it_leaves_out():
    # The API server defaults a pod's requests from its limits, not a pod template's: GPU
    # templates usually set limits only.
    spec = {"containers": [container(resources={"limits": {"nvidia.com/gpu": "2", "cpu": "1"}}),
                           container(resources={"limits": {"example.com/fpga": "2"},
                                                "requests": {"example.com/fpga": "1"}})]}
    assert needs_of(spec).extended == (("example.com/fpga", 1000), ("nvidia.com/gpu", 2000))


def test_with_host_network_every_container_port_is_a_host_port():
    spec = {"hostNetwork": True, "containers": [container(ports=[{"containerPort": 9100}])]}
    assert needs_of(spec).host_ports == ((9100, "TCP", ""),)


def test_host_ports_of_containers_and_init_containers():
    spec = {"containers": [container(ports=[{"containerPort": 80, "hostPort": 8080},
                                            {"containerPort": 53, "hostPort": 53, "protocol": "UDP"},
                                            {"containerPort": 9090}])],
            "initContainers": [container(ports=[{"containerPort": 1, "hostPort": 7000, "hostIP": "10.0.0.1"}])]}
    assert needs_of(spec).host_ports == ((53, "UDP", ""), (7000, "TCP", "10.0.0.1"), (8080, "TCP", ""))


@pytest.mark.parametrize("wanted, used, conflict", [
    (((80, "TCP", ""),), ((80, "TCP", "10.0.0.1"),), True),
    (((80, "TCP", "0.0.0.0"),), ((80, "TCP", "10.0.0.1"),), True),
    (((80, "TCP", "10.0.0.2"),), ((80, "TCP", "10.0.0.1"),), False),
    (((80, "TCP", ""),), ((80, "SCTP", ""),), False),
    (((80, "TCP", ""),), ((81, "TCP", ""),), False),
])
def test_host_port_conflicts(wanted, used, conflict):
    assert ports_conflict(wanted, used) is conflict


def test_required_pod_anti_affinity_terms_and_pod_affinity():
    spec = {"affinity": {
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"},
                               "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["batch"]}]},
             "topologyKey": "kubernetes.io/hostname"},
            {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "topology.kubernetes.io/zone",
             "namespaces": ["data"], "namespaceSelector": {}},
            {"labelSelector": {"matchLabels": {"app": "x"}}},  # no topology key: the API refuses it
        ],
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "podAffinityTerm": {}}]},
        "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "kubernetes.io/hostname"}]}}}
    needs = needs_of(spec)
    (cache,) = needs.affinity
    assert cache.topology_key == "kubernetes.io/hostname" and cache.selects({"app": "cache"})
    web, db = needs.anti_affinity
    assert (web.topology_key, web.namespaces, web.other_namespaces) == ("kubernetes.io/hostname", (), False)
    assert web.selects({"app": "web"}) and web.selects({"app": "web", "tier": "api"})
    assert not web.selects({"app": "web", "tier": "batch"}) and not web.selects({"app": "db"})
    assert (db.namespaces, db.other_namespaces) == (("data",), True)
    assert not PodTerm("k", None, (), False).selects({})  # no selector selects nothing


def test_claims_of_a_deployment_and_of_each_statefulset_pod():
    spec = {"volumes": [{"name": "shared", "persistentVolumeClaim": {"claimName": "uploads"}},
                        {"name": "tmp", "emptyDir": {}}]}
    assert needs_of(spec).claims == ("uploads",)
    stateful = needs_of(spec, claim_templates=("data", "logs"))
    assert stateful.claims_of("db-3") == ("uploads", "data-db-3", "logs-db-3")
    assert stateful.claims_of("") == ("uploads",)


@pytest.mark.parametrize("spec", [
    {"containers": "x"}, {"containers": [{"ports": "x"}]}, {"containers": [{"ports": [{"hostPort": "80"}]}]},
    {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": "x"}}},
    {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchExpressions": ["x"]}, "topologyKey": "k"}]}}},
    {"volumes": [{"persistentVolumeClaim": "x"}]},
    {"containers": 5}, {"volumes": 5}, {"initContainers": 5}, {"containers": [{"resources": [1]}]},
    {"containers": [{"resources": {"limits": "x", "requests": 5}}]},
    {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchExpressions": 5}, "topologyKey": "k"}]}}},
    {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [5, "x", None]}}},
])
def test_malformed_parts_are_read_as_absent_without_an_error(spec):
    needs_of(spec)
