"""Kubernetes objects for end-to-end tests and the demo, and reading back placements."""

from __future__ import annotations

from dataclasses import dataclass

from tests.cluster.api import Api, ApiError
from tests.helpers.waiting import wait_for

CAPACITY_LABEL = "node.kubernetes.io/capacity"
PATHS = {
    "Node": "/api/v1/nodes",
    "Namespace": "/api/v1/namespaces",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "StatefulSet": "/apis/apps/v1/namespaces/{ns}/statefulsets",
    "PodDisruptionBudget": "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
    "Pod": "/api/v1/namespaces/{ns}/pods",
}


def collection(kind: str, namespace: str = "") -> str:
    return PATHS[kind].format(ns=namespace)


def create(api: Api, obj: dict) -> dict:
    return api.post(collection(obj["kind"], obj["metadata"].get("namespace", "")), obj)


def fake_node(name: str, capacity: str, zone: str, instance_type: str = "m5.large",
              cpu: str = "8", memory: str = "32Gi", pods: str = "110") -> dict:
    """A Node KWOK manages: it heartbeats it and runs whatever binds to it."""
    resources = {"cpu": cpu, "memory": memory, "pods": pods}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "type": "kwok",
                CAPACITY_LABEL: capacity,
                "topology.kubernetes.io/zone": zone,
                "node.kubernetes.io/instance-type": instance_type,
            },
        },
        "spec": {},
        "status": {"allocatable": resources, "capacity": resources},
    }


def _pod_template(app: str, cpu: str) -> dict:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {
            "containers": [{"name": "app", "image": "registry.invalid/app:1",
                            "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}],
            "terminationGracePeriodSeconds": 0,
        },
    }


def deployment(name: str, namespace: str, replicas: int, cpu: str = "100m", annotations: dict | None = None) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": _pod_template(name, cpu),
        },
    }


def statefulset(name: str, namespace: str, replicas: int, cpu: str = "100m", annotations: dict | None = None) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"app": name}},
            "template": _pod_template(name, cpu),
        },
    }


def pdb(name: str, namespace: str, app: str, min_available=None, max_unavailable=None) -> dict:
    spec: dict = {"selector": {"matchLabels": {"app": app}}}
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def namespace(api: Api, name: str) -> str:
    create(api, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    wait_for(lambda: api.exists(f"/api/v1/namespaces/{name}/serviceaccounts/default"), 30,
             what=f"service account in {name}")
    return name


@dataclass(frozen=True)
class Placement:
    pod: str
    node: str  # "" while pending
    capacity: str  # spot, on-demand, "" for pending or a node that is gone
    pool: str  # instance-type/zone
    ready: bool
    terminating: bool


def node_facts(api: Api) -> dict[str, dict]:
    return {n["metadata"]["name"]: n for n in api.get("/api/v1/nodes")["items"]}


def placements(api: Api, namespace: str, app: str, nodes: dict[str, dict] | None = None) -> list[Placement]:
    """Where the app's pods are, as the API server sees it. A pod on a node that no
    longer exists counts as not ready: nothing there serves traffic."""
    nodes = node_facts(api) if nodes is None else nodes
    pods = api.get(f"/api/v1/namespaces/{namespace}/pods", labelSelector=f"app={app}")["items"]
    out = []
    for pod in pods:
        node_name = pod["spec"].get("nodeName", "")
        node = nodes.get(node_name)
        labels = node["metadata"]["labels"] if node else {}
        ready = node is not None and is_ready(pod)
        out.append(Placement(
            pod=pod["metadata"]["name"],
            node=node_name,
            capacity=labels.get(CAPACITY_LABEL, ""),
            pool=f"{labels.get('node.kubernetes.io/instance-type', '')}/{labels.get('topology.kubernetes.io/zone', '')}",
            ready=ready,
            terminating="deletionTimestamp" in pod["metadata"],
        ))
    return sorted(out, key=lambda p: p.pod)


def live(placements_: list[Placement]) -> list[Placement]:
    return [p for p in placements_ if not p.terminating]


def wait_ready(api: Api, namespace: str, app: str, count: int, timeout: float = 60) -> list[Placement]:
    """Until exactly `count` live pods are Ready on existing nodes and none is pending."""
    def done():
        current = live(placements(api, namespace, app))
        if len(current) == count and all(p.ready for p in current):
            return current
        return None

    return wait_for(done, timeout, what=f"{count} ready replicas of {namespace}/{app}")


def is_ready(obj: dict) -> bool:
    """A Pod's or a Node's Ready condition is True."""
    return any(c["type"] == "Ready" and c["status"] == "True" for c in obj.get("status", {}).get("conditions", []))


def delete_namespace(api: Api, name: str, timeout: float) -> None:
    """Delete a namespace and wait until the namespace controller has removed everything in it."""
    delete(api, "Namespace", name)
    wait_for(lambda: not api.exists(f"/api/v1/namespaces/{name}"), timeout, interval=1,
             what=f"namespace {name} deleted")


def delete(api: Api, kind: str, name: str, namespace: str = "") -> None:
    try:
        api.delete(f"{collection(kind, namespace)}/{name}")
    except ApiError as exc:
        if exc.status != 404:
            raise


def node_schedulable(node: dict) -> bool:
    ready = is_ready(node)
    blocking = [t for t in node.get("spec", {}).get("taints", []) if t.get("effect") in ("NoSchedule", "NoExecute")]
    return ready and not blocking and not node.get("spec", {}).get("unschedulable")


def add_nodes(api: Api, nodes: list[dict], timeout: float = 60) -> None:
    """Create nodes and wait until KWOK reports them Ready and nothing taints them."""
    for node in nodes:
        create(api, node)
    names = {n["metadata"]["name"] for n in nodes}

    def all_ready():
        facts = node_facts(api)
        return all(name in facts and node_schedulable(facts[name]) for name in names)

    wait_for(all_ready, timeout, what=f"{len(names)} nodes Ready")
