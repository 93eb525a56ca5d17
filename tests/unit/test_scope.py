"""Scope (app/controller/scope.py): the namespaces the controller acts in (excluded ones
never, and only the included ones when some are named), and which workloads it may move
and which pods it may touch."""

from spot_extender.cluster.index import POD
from spot_extender.cluster.records import WorkloadKey
from spot_extender.controller.scope import Scope
from spot_extender.core.settings import Settings
from tests.helpers import objects as f
from tests.helpers.controller import deploy, setup


def test_excluded_namespaces_are_out_and_included_ones_narrow_the_rest():
    _, index = setup()
    everywhere = Scope(index, Settings())  # kube-system is excluded by default
    assert everywhere.acts_in("default") and everywhere.acts_in("web")
    assert not everywhere.acts_in("kube-system")
    listed = Scope(index, Settings(excluded_namespaces=("batch",), controller_namespaces=("web", "batch")))
    assert listed.acts_in("web")
    assert not listed.acts_in("default") and not listed.acts_in("kube-system")  # not included
    assert not listed.acts_in("batch")  # included, but excluded too: excluded wins


def test_may_move_a_workload_in_scope_that_has_not_opted_out():
    _, index = setup()
    deploy(index, "web", ["s1"])
    deploy(index, "mine", ["s1"], annotations={"spot-extender.io/rebalance": "false"})
    deploy(index, "sys", ["s1"], namespace="kube-system")
    scope = Scope(index, Settings())

    def may_move(namespace, name):
        return scope.may_move(index.workload(WorkloadKey("Deployment", namespace, name)))

    assert may_move("default", "web")
    assert not may_move("default", "mine")  # opted out
    assert not may_move("kube-system", "sys")  # excluded namespace
    assert not Scope(index, Settings(controller_namespaces=("other",))).may_move(
        index.workload(WorkloadKey("Deployment", "default", "web")))  # not included


def test_may_touch_a_pod_of_a_workload_in_scope_unless_it_opted_out():
    _, index = setup()
    deploy(index, "web", ["s1"])
    deploy(index, "mine", ["s1"], annotations={"spot-extender.io/rebalance": "false"})
    deploy(index, "sys", ["s1"], namespace="kube-system")
    index.apply(POD, "ADDED", f.pod("bare", node_name="s1"))  # no owner: no group
    index.apply(POD, "ADDED", f.pod("orphan-1-0", owner=("ReplicaSet", "orphan-1"), node_name="s1"))
    scope = Scope(index, Settings())
    touch = {p.name: scope.may_touch(p) for p in index.pods()}
    assert touch == {
        "web-1-0": True,
        "mine-1-0": False,  # its Deployment opted out
        "sys-1-0": False,  # excluded namespace
        "bare": False,  # a bare pod has no workload to bring it back
        "orphan-1-0": True,  # a workload the index does not hold has not opted out
    }
