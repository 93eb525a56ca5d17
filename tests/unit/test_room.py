"""The room model against an index fed as the watches feed it: every reason kube-scheduler
would turn a pod away that the model follows, and UNKNOWN wherever it cannot tell."""

from __future__ import annotations

import pytest

from spot_extender.cluster.index import KIND_NAMES, NODE, POD, Index
from spot_extender.cluster.inflight import InFlight
from spot_extender.cluster.needs import needs_of
from spot_extender.cluster.nodes import NodeClassifier
from spot_extender.core.settings import Settings
from spot_extender.decisions.room import Pod, find_room
from tests.helpers import objects as f

GPU = {"nvidia.com/gpu": "1"}


def node(name, capacity, zone="zone-a", pods="110", extra=None):
    raw = f.node(name, capacity, zone=zone)
    raw["status"]["allocatable"].update({"pods": pods, **(extra or {})})
    return raw


def cluster(*nodes) -> Index:
    index = Index(NodeClassifier(Settings()), InFlight(30))
    for kind in KIND_NAMES:
        index.replace(kind, [])
    for raw in nodes or (node("o1", "on-demand"), node("s1", "spot"), node("s2", "spot", zone="zone-b")):
        index.apply(NODE, "ADDED", raw)
    return index


def running(index, name, node_name, namespace="default", labels=None, spec=None):
    raw = f.pod(name, namespace, node_name=node_name, labels=labels or {"app": name.rsplit("-", 1)[0]})
    raw["spec"].update(spec or {})
    index.apply(POD, "ADDED", raw)
    return raw


def wanting(spec: dict, namespace="default", name="", uid="", labels=None) -> Pod:
    return Pod(100, 1 << 20, needs=needs_of(spec), namespace=namespace, name=name, uid=uid,
               labels=labels or {"app": "web"})


def container(**fields) -> dict:
    return {"name": "app", "image": "app:1", **fields}


def anti(selector, key="kubernetes.io/hostname", **extra) -> dict:
    return {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": selector}, "topologyKey": key, **extra}]}}}


def test_a_gpu_request_needs_a_node_that_has_one_free():
    index = cluster(node("o1", "on-demand"), node("s1", "spot", extra=GPU))
    gpu_pod = wanting({"containers": [container(resources={"limits": GPU})]})  # a template: limits only
    fit = find_room(index, "on-demand", gpu_pod)
    assert fit.verdict is False and fit.fixable  # an autoscaler could add an on-demand node with a GPU
    assert find_room(index, "spot", gpu_pod).node == "s1"
    running(index, "other-1", "s1", spec={"containers": [container(resources={"requests": GPU})]})
    fit = find_room(index, "spot", gpu_pod)
    assert fit.verdict is False and fit.reason == "no spot node has room for it" and fit.fixable


def test_a_node_at_its_pod_count_has_no_room():
    index = cluster(node("o1", "on-demand", pods="2"), node("s1", "spot"))
    running(index, "a-1", "o1")
    assert find_room(index, "on-demand", wanting({})).node == "o1"
    running(index, "b-1", "o1")
    assert not find_room(index, "on-demand", wanting({}))


@pytest.mark.parametrize("theirs, ours, conflict", [
    ({"hostPort": 8080}, {"hostPort": 8080}, True),
    ({"hostPort": 8080, "protocol": "UDP"}, {"hostPort": 8080}, False),
    ({"hostPort": 8080, "hostIP": "10.0.0.1"}, {"hostPort": 8080, "hostIP": "10.0.0.2"}, False),
    ({"hostPort": 8080, "hostIP": "10.0.0.1"}, {"hostPort": 8080}, True),  # ours binds every address
    ({"containerPort": 8080}, {"hostPort": 8080}, False),  # no host port taken
])
def test_host_ports_as_the_scheduler_counts_them(theirs, ours, conflict):
    index = cluster(node("o1", "on-demand"))
    running(index, "agent-1", "o1", spec={"containers": [container(ports=[{"containerPort": 80, **theirs}])]})
    fit = find_room(index, "on-demand", wanting({"containers": [container(ports=[{"containerPort": 80, **ours}])]}))
    assert bool(fit) is not conflict


def test_required_anti_affinity_against_the_pods_on_the_node_and_in_its_zone():
    index = cluster(node("o1", "on-demand"), node("o2", "on-demand", zone="zone-b"), node("s1", "spot"))
    running(index, "web-1", "o1", labels={"app": "web"})
    one_per_node = wanting(anti({"app": "web"}))
    assert find_room(index, "on-demand", one_per_node).node == "o2"
    one_per_zone = wanting(anti({"app": "web"}, key="topology.kubernetes.io/zone"))
    assert find_room(index, "on-demand", one_per_zone).node == "o2"
    running(index, "web-2", "o2", labels={"app": "web"})
    assert not find_room(index, "on-demand", one_per_node)
    # The pod being replaced does not block its own replacement; another namespace's pods do not either.
    index2 = cluster(node("o1", "on-demand"))
    raw = running(index2, "web-1", "o1", labels={"app": "web"})
    assert find_room(index2, "on-demand", wanting(anti({"app": "web"}), uid=raw["metadata"]["uid"]))
    assert find_room(index2, "on-demand", wanting(anti({"app": "web"}), namespace="other"))
    assert not find_room(index2, "on-demand", wanting(anti({"app": "web"}, namespaces=["default"]), namespace="other"))


def test_the_anti_affinity_of_the_pods_already_there_keeps_it_away_too():
    index = cluster(node("o1", "on-demand"), node("o2", "on-demand", zone="zone-b"))
    running(index, "db-1", "o1", labels={"app": "db"}, spec=anti({"app": "web"}))
    running(index, "cache-1", "o2", labels={"app": "cache"},
            spec=anti({"app": "web"}, key="topology.kubernetes.io/zone"))
    assert not find_room(index, "on-demand", wanting({}, labels={"app": "web"}))
    assert find_room(index, "on-demand", wanting({}, labels={"app": "api"}))  # not selected: both nodes
    assert find_room(index, "on-demand", wanting({}, labels={"app": "web"}, namespace="other"))


def affinity(selector, key="kubernetes.io/hostname") -> dict:
    return {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": selector}, "topologyKey": key}]}}}


def test_required_pod_affinity_needs_a_selected_pod_in_the_domain_unless_none_runs_and_it_selects_itself():
    index = cluster(node("o1", "on-demand"), node("o2", "on-demand", zone="zone-b"))
    with_cache = wanting(affinity({"app": "cache"}, key="topology.kubernetes.io/zone"))
    assert not find_room(index, "on-demand", with_cache)  # no cache pod anywhere, and it is no cache
    running(index, "cache-1", "o2", labels={"app": "cache"})
    assert find_room(index, "on-demand", with_cache).node == "o2"
    together = wanting(affinity({"app": "web"}), labels={"app": "web"})
    assert find_room(index, "on-demand", together)  # the first of its group goes anywhere
    running(index, "web-1", "o2", labels={"app": "web"})
    assert find_room(index, "on-demand", together).node == "o2"


def test_more_terms_than_it_follows_is_unknown_not_a_scan_per_term():
    terms = [{"labelSelector": {"matchLabels": {"app": f"a{i}"}}, "topologyKey": "topology.kubernetes.io/zone"}
             for i in range(100)]
    spec = {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": terms}}}
    assert find_room(cluster(), "on-demand", wanting(spec)).reason == (
        "cannot tell: more pod affinity terms than it follows")


@pytest.mark.parametrize("spec, reason", [
    (anti({"app": "web"}, namespaceSelector={"matchLabels": {"team": "a"}}),
     "cannot tell: its pod affinity selects namespaces by label"),
    ({"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-web"}}]},
     "cannot tell: its PersistentVolumeClaim is not known yet"),
])
def test_what_the_index_does_not_follow_is_unknown_not_no(spec, reason):
    fit = find_room(cluster(), "on-demand", wanting(spec))
    assert fit.unknown and not fit and fit.reason == reason


def pv(name, zone):
    return {"metadata": {"name": name}, "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": [zone]}]}]}}}}


def pvc(name, volume=None, namespace="default"):
    claim = {"metadata": {"name": name, "namespace": namespace}, "spec": {}, "status": {"phase": "Pending"}}
    if volume:
        claim["spec"]["volumeName"] = volume
        claim["status"]["phase"] = "Bound"
    return claim


def test_a_zonal_volume_pins_the_pod_to_its_zone():
    index = cluster(node("o1", "on-demand"), node("s1", "spot"), node("s2", "spot", zone="zone-c"))
    claim = {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}}]}
    index.apply("PersistentVolumeClaim", "ADDED", pvc("data-db-0"))
    assert find_room(index, "on-demand", wanting(claim)).reason == "cannot tell: its PersistentVolumeClaim is not bound"
    index.apply("PersistentVolumeClaim", "MODIFIED", pvc("data-db-0", "pv-1"))
    assert find_room(index, "on-demand", wanting(claim)).reason == "cannot tell: its PersistentVolume is not known yet"
    index.apply("PersistentVolume", "ADDED", pv("pv-1", "zone-c"))
    fit = find_room(index, "on-demand", wanting(claim))
    assert fit.verdict is False and fit.reason == "its volumes cannot be attached on any on-demand node"
    assert find_room(index, "spot", wanting(claim)).node == "s2"
    index.apply("PersistentVolume", "DELETED", pv("pv-1", "zone-c"))
    index.apply("PersistentVolumeClaim", "DELETED", pvc("data-db-0"))
    assert index.sizes()["PersistentVolume"] == index.sizes()["PersistentVolumeClaim"] == 0


def test_a_statefulsets_claim_templates_give_each_pod_its_own_claim():
    index = cluster(node("o1", "on-demand"), node("s2", "spot", zone="zone-c"))
    index.apply("PersistentVolume", "ADDED", pv("pv-0", "zone-a"))
    index.apply("PersistentVolume", "ADDED", pv("pv-1", "zone-c"))
    index.apply("PersistentVolumeClaim", "ADDED", pvc("data-db-0", "pv-0"))
    index.apply("PersistentVolumeClaim", "ADDED", pvc("data-db-1", "pv-1"))
    needs = needs_of({}, claim_templates=("data",))
    assert find_room(index, "on-demand", Pod(needs=needs, namespace="default", name="db-0")).node == "o1"
    assert not find_room(index, "on-demand", Pod(needs=needs, namespace="default", name="db-1"))
