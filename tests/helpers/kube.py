"""What tests, benchmarks and the demo do on a real API server: create and delete
objects, add KWOK nodes, and read back where pods run (never through the extender)."""

from __future__ import annotations

from dataclasses import dataclass

from tests.cluster.api import Api, ApiError
from tests.helpers.objects import CAPACITY_LABEL, KARPENTER_CAPACITY_LABEL, ROLE_LABEL
from tests.helpers.waiting import wait_for

PATHS = {
    "Node": "/api/v1/nodes",
    "Namespace": "/api/v1/namespaces",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "StatefulSet": "/apis/apps/v1/namespaces/{ns}/statefulsets",
    "PodDisruptionBudget": "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
    "Pod": "/api/v1/namespaces/{ns}/pods",
    "MutatingWebhookConfiguration": "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
}


def collection(kind: str, namespace: str = "") -> str:
    return PATHS[kind].format(ns=namespace)


def create(api: Api, obj: dict) -> dict:
    return api.post(collection(obj["kind"], obj["metadata"].get("namespace", "")), obj)


def delete(api: Api, kind: str, name: str, namespace: str = "") -> None:
    """Delete, if it is there."""
    try:
        api.delete(f"{collection(kind, namespace)}/{name}")
    except ApiError as exc:
        if exc.status != 404:
            raise


def vanish_node(api: Api, name: str) -> None:
    """The instance is gone: its Node object and every pod bound to it deleted at once."""
    delete(api, "Node", name)
    for pod in api.get("/api/v1/pods", fieldSelector=f"spec.nodeName={name}")["items"]:
        meta = pod["metadata"]
        try:
            api.delete(f"{collection('Pod', meta['namespace'])}/{meta['name']}", gracePeriodSeconds="0")
        except ApiError as exc:
            if exc.status != 404:
                raise


def namespace(api: Api, name: str) -> str:
    """Create a namespace and wait until pods can be created in it (its default ServiceAccount)."""
    create(api, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    wait_for(lambda: api.exists(f"/api/v1/namespaces/{name}/serviceaccounts/default"), 30,
             what=f"service account in {name}")
    return name


def delete_namespace(api: Api, name: str, timeout: float) -> None:
    """Delete a namespace and wait until the namespace controller has removed everything in it."""
    delete(api, "Namespace", name)
    wait_for(lambda: not api.exists(f"/api/v1/namespaces/{name}"), timeout, interval=1,
             what=f"namespace {name} deleted")


def is_ready(obj: dict) -> bool:
    """A Pod's or a Node's Ready condition is True."""
    return any(c["type"] == "Ready" and c["status"] == "True" for c in obj.get("status", {}).get("conditions", []))


def node_facts(api: Api) -> dict[str, dict]:
    """Every Node that exists, by name."""
    return {n["metadata"]["name"]: n for n in api.get("/api/v1/nodes")["items"]}


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


# The providers' capacity labels (docs/design.md, "Nodes and pools"), read where neither of the two
# above is on a node: value -> class.
PROVIDER_CAPACITY_LABELS = {
    "eks.amazonaws.com/capacityType": {"SPOT": "spot", "ON_DEMAND": "on-demand"},
    "cloud.google.com/gke-spot": {"true": "spot"},
    "cloud.google.com/gke-provisioning": {"spot": "spot", "preemptible": "spot", "standard": "on-demand"},
    "kubernetes.azure.com/scalesetpriority": {"spot": "spot", "regular": "on-demand"},
}


def capacity_of(labels: dict) -> str:
    """A node's class from its labels: Karpenter's or this project's value as it is, else
    a provider's label read as spot or on-demand; "" for none."""
    own = labels.get(KARPENTER_CAPACITY_LABEL) or labels.get(CAPACITY_LABEL)
    return own or next((classes[labels[key]] for key, classes in PROVIDER_CAPACITY_LABELS.items()
                 if labels.get(key) in classes), "")


@dataclass(frozen=True)
class Placement:
    pod: str
    node: str  # "" while pending
    capacity: str  # spot, on-demand, "" for pending or a node that is gone
    pool: str  # instance-type/zone
    ready: bool
    terminating: bool
    role: str = ""  # spot-extender.io/role as the webhook wrote it, "" for none


def placement(pod: dict, nodes: dict[str, dict]) -> Placement:
    """Where a pod is, given the nodes that exist. A pod on a node that no longer exists
    counts as not ready: nothing there serves traffic."""
    node_name = pod["spec"].get("nodeName", "")
    node = nodes.get(node_name)
    labels = node["metadata"]["labels"] if node else {}
    return Placement(
        pod=pod["metadata"]["name"],
        node=node_name,
        capacity=capacity_of(labels),
        pool=f"{labels.get('node.kubernetes.io/instance-type', '')}/{labels.get('topology.kubernetes.io/zone', '')}",
        ready=node is not None and is_ready(pod),
        terminating="deletionTimestamp" in pod["metadata"],
        role=(pod["metadata"].get("labels") or {}).get(ROLE_LABEL, ""),
    )


def placements(api: Api, namespace: str, app: str, nodes: dict[str, dict] | None = None) -> list[Placement]:
    """Where the app's pods are, as the API server sees it, by pod name."""
    nodes = node_facts(api) if nodes is None else nodes
    pods = api.get(f"/api/v1/namespaces/{namespace}/pods", labelSelector=f"app={app}")["items"]
    return sorted((placement(pod, nodes) for pod in pods), key=lambda p: p.pod)


def live(placements_: list[Placement]) -> list[Placement]:
    """The pods not being deleted."""
    return [p for p in placements_ if not p.terminating]


def on_demand(placements_: list[Placement]) -> int:
    """How many of these pods run on on-demand nodes."""
    return sum(1 for p in placements_ if p.capacity == "on-demand")


def wait_ready(api: Api, namespace: str, app: str, count: int, timeout: float = 60) -> list[Placement]:
    """Until exactly `count` live pods are Ready on existing nodes and none is pending."""
    def done():
        current = live(placements(api, namespace, app))
        if len(current) == count and all(p.ready for p in current):
            return current
        return None

    return wait_for(done, timeout, what=f"{count} ready replicas of {namespace}/{app}")
