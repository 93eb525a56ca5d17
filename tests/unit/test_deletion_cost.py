"""DeletionCost (app/controller/deletion_cost.py): pod-deletion-cost patches, written only
when they change."""

from spot_extender.cluster.index import POD
from spot_extender.core.vocabulary import DELETION_COST
from tests.helpers import objects as f
from tests.helpers.controller import _uid, deploy, setup


async def test_deletion_costs_are_patched_only_when_they_change():
    controller, index = setup()
    deploy(index, "web", ["o1", "o2", "s1"])
    await controller.deletion_cost.once()
    assert controller.kube.annotated == {
        "default/web-1-0": {DELETION_COST: "1000"},
        "default/web-1-1": {DELETION_COST: "-1000"},
        "default/web-1-2": {DELETION_COST: "0"},
    }
    for name, patch in controller.kube.annotated.items():  # the watch shows the patches
        pod = index.pod(_uid(index, name.split("/")[1]))
        raw = f.pod(pod.name, owner=("ReplicaSet", "web-1"), node_name=pod.node, uid=pod.uid, labels={"app": "web"})
        raw["metadata"]["annotations"] = patch
        raw["metadata"]["creationTimestamp"] = pod.created
        index.apply(POD, "MODIFIED", raw)
    controller.kube.annotated.clear()
    await controller.deletion_cost.once()
    assert controller.kube.annotated == {}
