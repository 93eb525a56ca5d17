"""Kubernetes objects for every kind of test, as plain API-shaped dicts.

Unit tests and benchmarks feed them to the index as the API server would send them;
end-to-end tests, benchmarks and the demo create them on a real API server (see
tests/helpers/kube.py). The builders of objects that get created (fake_node,
deployment, statefulset, pdb) set apiVersion and kind and never
metadata.resourceVersion, which the API server refuses on create. node, pod and
replicaset only ever stand for objects the API server sends, so they carry a
resourceVersion as stored objects do.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime

CAPACITY_LABEL = "node.kubernetes.io/capacity"
KARPENTER_CAPACITY_LABEL = "karpenter.sh/capacity-type"  # on the nodes Karpenter makes
ROLE_LABEL = "spot-extender.io/role"  # what the admission webhook writes: floor or spot
ADMISSION_ANNOTATION = "spot-extender.io/admission"  # ... beside its role label: without it a label is no role
# What the AWS Node Termination Handler puts on a spot node at its 2-minute interruption
# notice: spot-extender paces its drain over that notice.
INTERRUPTION_TAINT = {"key": "aws-node-termination-handler/spot-itn", "value": "true", "effect": "NoSchedule"}
# A going-away taint that gives no notice (Karpenter's, as it disrupts a node): drained at once.
RECLAIM_TAINT = {"key": "karpenter.sh/disrupted", "effect": "NoSchedule"}

_serial = itertools.count(1)


def owner_uid(kind: str, name: str, namespace: str = "default") -> str:
    """The uid of a workload object these builders make, as its pods' owner references name it."""
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"{kind}/{namespace}/{name}"))


def epoch(stamp: str) -> float:
    """An RFC 3339 time as Unix time."""
    return datetime.fromisoformat(stamp).timestamp()


def _node_labels(name: str, capacity: str | None, zone: str, instance_type: str) -> dict:
    labels = {
        "kubernetes.io/hostname": name,
        "topology.kubernetes.io/zone": zone,
        "node.kubernetes.io/instance-type": instance_type,
    }
    if capacity:
        labels[CAPACITY_LABEL] = capacity
    return labels


def node(
    name: str,
    capacity: str | None = "spot",
    zone: str = "zone-a",
    instance_type: str = "m5.large",
    labels: dict | None = None,
    taints: list | None = None,
    unschedulable: bool = False,
    ready: bool = True,
    deleting: bool = False,
) -> dict:
    """A Node as listed or watched: its Ready condition set, 4 CPUs, 16Gi, 110 pods."""
    all_labels = _node_labels(name, capacity, zone, instance_type)
    all_labels.update(labels or {})
    meta = {"name": name, "uid": str(uuid.uuid4()), "labels": all_labels, "resourceVersion": str(next(_serial))}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    spec: dict = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "metadata": meta,
        "spec": spec,
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"},
        },
    }


def fake_node(name: str, capacity: str, zone: str, instance_type: str = "m5.large",
              cpu: str = "8", memory: str = "32Gi", pods: str = "110") -> dict:
    """A Node to create for KWOK to manage: KWOK reports it Ready, heartbeats it and runs
    whatever binds to it, so it carries no conditions of its own."""
    resources = {"cpu": cpu, "memory": memory, "pods": pods}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {**_node_labels(name, capacity, zone, instance_type),
                       "kubernetes.io/os": "linux", "type": "kwok"},
        },
        "spec": {},
        "status": {"allocatable": resources, "capacity": resources},
    }


def pod(
    name: str,
    namespace: str = "default",
    owner: tuple[str, str] | None = None,
    node_name: str = "",
    uid: str | None = None,
    labels: dict | None = None,
    deleting: bool = False,
    phase: str | None = None,
    ready: bool = True,
    role: str = "",
    unscheduled: tuple[str, str] | None = None,
) -> dict:
    """A Pod as listed or watched; Running and Ready once bound to `node_name`. `role`: the
    role label and admission record the webhook writes. `unscheduled`: the (reason, message)
    of kube-scheduler's PodScheduled=False condition on a pending pod."""
    meta: dict = {
        "name": name,
        "namespace": namespace,
        "uid": uid or str(uuid.uuid4()),
        "labels": dict(labels or {"app": name.rsplit("-", 1)[0]}),
        "resourceVersion": str(next(_serial)),
    }
    if role:
        meta["labels"][ROLE_LABEL] = role
        meta["annotations"] = {ADMISSION_ANNOTATION: f"admission-of-{meta['uid']}"}
    if owner:
        meta["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "uid": owner_uid(owner[0], owner[1], namespace),
             "controller": True}
        ]
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    spec: dict = {"containers": [{"name": "app", "image": "registry.example/app:1"}]}
    if node_name:
        spec["nodeName"] = node_name
    status: dict = {"phase": phase or ("Running" if node_name else "Pending")}
    if node_name:
        status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
    elif unscheduled:
        status["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": unscheduled[0],
                                 "message": unscheduled[1]}]
    return {"metadata": meta, "spec": spec, "status": status}


# kube-scheduler's words for a pod no node can take now.
NO_ROOM = ("Unschedulable", "0/4 nodes are available: 2 Insufficient cpu, 2 node(s) didn't match Pod's node affinity.")


def _pod_template(app: str, cpu: str) -> dict:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {
            "containers": [{"name": "app", "image": "registry.invalid/app:1",
                            "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}],
            "terminationGracePeriodSeconds": 0,
        },
    }


def _workload(kind: str, name: str, replicas: int, namespace: str, annotations: dict | None, cpu: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        # A uid as stored objects have; on create the API server assigns its own.
        "metadata": {"name": name, "namespace": namespace, "uid": owner_uid(kind, name, namespace),
                     "annotations": annotations or {}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": _pod_template(name, cpu),
        },
    }


def deployment(name: str, replicas: int = 3, namespace: str = "default", annotations: dict | None = None,
               *, cpu: str = "100m") -> dict:
    """A Deployment whose pods are labelled app=<name> and each request `cpu` and 64Mi."""
    return _workload("Deployment", name, replicas, namespace, annotations, cpu)


def statefulset(name: str, replicas: int = 3, namespace: str = "default", annotations: dict | None = None,
                *, cpu: str = "100m") -> dict:
    """A StatefulSet like deployment(), its pods started in parallel."""
    obj = _workload("StatefulSet", name, replicas, namespace, annotations, cpu)
    obj["spec"].update({"serviceName": name, "podManagementPolicy": "Parallel"})
    return obj


def replicaset(
    name: str, deployment_name: str | None, replicas: int = 3, revision: int = 1, namespace: str = "default"
) -> dict:
    """A ReplicaSet as listed or watched, owned by `deployment_name` unless None."""
    meta: dict = {
        "name": name,
        "namespace": namespace,
        "uid": owner_uid("ReplicaSet", name, namespace),
        "annotations": {"deployment.kubernetes.io/revision": str(revision)},
        "resourceVersion": str(next(_serial)),
    }
    if deployment_name:
        meta["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment_name, "uid": "d", "controller": True}
        ]
    app = deployment_name or name
    return {
        "metadata": meta,
        "spec": {"replicas": replicas, "template": {"metadata": {"labels": {"app": app, "pod-template-hash": name}}}},
    }


def pdb(
    name: str,
    match_labels: dict,
    min_available=None,
    max_unavailable=None,
    namespace: str = "default",
) -> dict:
    """A PodDisruptionBudget over the pods with `match_labels`."""
    spec: dict = {"selector": {"matchLabels": match_labels}}
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}
