"""Raw API-shaped dicts for tests and benchmarks, as the API server would send them."""

from __future__ import annotations

import itertools
import uuid

_serial = itertools.count(1)


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
    all_labels = {
        "kubernetes.io/hostname": name,
        "topology.kubernetes.io/zone": zone,
        "node.kubernetes.io/instance-type": instance_type,
    }
    if capacity:
        all_labels["node.kubernetes.io/capacity"] = capacity
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
) -> dict:
    meta: dict = {
        "name": name,
        "namespace": namespace,
        "uid": uid or str(uuid.uuid4()),
        "labels": labels or {"app": name.rsplit("-", 1)[0]},
        "resourceVersion": str(next(_serial)),
    }
    if owner:
        meta["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "uid": "owner-uid", "controller": True}
        ]
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    spec: dict = {"containers": [{"name": "app", "image": "registry.example/app:1"}]}
    if node_name:
        spec["nodeName"] = node_name
    status: dict = {"phase": phase or ("Running" if node_name else "Pending")}
    if node_name:
        status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
    return {"metadata": meta, "spec": spec, "status": status}


def deployment(name: str, replicas: int = 3, namespace: str = "default", annotations: dict | None = None) -> dict:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
            "annotations": annotations or {},
            "resourceVersion": str(next(_serial)),
        },
        "spec": {"replicas": replicas, "template": {"metadata": {"labels": {"app": name}}}},
    }


def statefulset(name: str, replicas: int = 3, namespace: str = "default", annotations: dict | None = None) -> dict:
    return deployment(name, replicas, namespace, annotations)


def replicaset(
    name: str, deployment_name: str | None, replicas: int = 3, revision: int = 1, namespace: str = "default"
) -> dict:
    meta: dict = {
        "name": name,
        "namespace": namespace,
        "uid": str(uuid.uuid4()),
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
    spec: dict = {"selector": {"matchLabels": match_labels}}
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": str(next(_serial))}, "spec": spec}
