"""Karpenter's KWOK cloud provider against a local ControlPlane: its CRDs, a KWOKNodeClass,
NodePools and the controller itself, as one more Component whose log joins the others'.

Karpenter creates Node objects annotated kwok.x-k8s.io/node=fake, which the control
plane's KWOK then runs like every other fake node.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.cluster.controlplane import Component, ControlPlane, bin_dir, cache_dir, http_ok, kubectl
from tests.helpers.objects import KARPENTER_CAPACITY_LABEL as CAPACITY_LABEL
from tests.helpers.ports import free_port
from tests.helpers.waiting import wait_for

NODEPOOL_LABEL = "karpenter.sh/nodepool"
NODE_CLASS = {"group": "karpenter.kwok.sh", "kind": "KWOKNodeClass", "name": "default"}
NODEPOOLS = "/apis/karpenter.sh/v1/nodepools"
NODECLAIMS = "/apis/karpenter.sh/v1/nodeclaims"
# The provider's instance types come in 1..192 vCPUs; small ones make several nodes of a
# few pods each, so spreading and consolidation have something to do.
SMALL_CPUS = ("1", "2")


def crd_dir() -> Path:
    return cache_dir() / "karpenter-crds"


def karpenter_present() -> bool:
    return (bin_dir() / "karpenter-kwok").is_file() and any(crd_dir().glob("*.yaml"))


def node_pool(name: str = "default", capacity_types=("spot", "on-demand"), consolidate_after: str = "5s",
              cpus=SMALL_CPUS, budget: str = "10%") -> dict:
    """A NodePool of linux/amd64 KWOK nodes of the given capacity types, consolidating
    empty or underused nodes after `consolidate_after`."""
    requirements = [
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
        {"key": CAPACITY_LABEL, "operator": "In", "values": list(capacity_types)},
        {"key": "karpenter.kwok.sh/instance-cpu", "operator": "In", "values": list(cpus)},
    ]
    return {
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": name},
        "spec": {
            "template": {"spec": {"requirements": requirements, "nodeClassRef": dict(NODE_CLASS),
                                  "expireAfter": "Never"}},
            "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": consolidate_after,
                           "budgets": [{"nodes": budget}]},
            "limits": {"cpu": "1000"},
        },
    }


class Karpenter:
    """Install with install(), then start(); stop() with the control plane's teardown."""

    def __init__(self, cluster: ControlPlane, node_pools: list[dict] | None = None, log_level: str = "info"):
        self.cluster, self.api = cluster, cluster.api
        self.node_pools = node_pools if node_pools is not None else [node_pool()]
        self.health_port, self.metrics_port = free_port(), free_port()
        env = {
            **os.environ, "KUBECONFIG": str(cluster.kubeconfig), "SYSTEM_NAMESPACE": "kube-system",
            # Outside a cluster there is no namespace to elect a leader in; it panics without this.
            "DISABLE_LEADER_ELECTION": "true", "LOG_LEVEL": log_level,
            "METRICS_PORT": str(self.metrics_port), "HEALTH_PROBE_PORT": str(self.health_port),
        }
        self.component = Component("karpenter", [str(bin_dir() / "karpenter-kwok")],
                                   cluster.workdir / "karpenter.log", env=env)

    def install(self) -> "Karpenter":
        # Server-side: the NodePool CRD is too big for kubectl's last-applied annotation.
        applied = kubectl(self.cluster, "apply", "--server-side", "-f", str(crd_dir()))
        if applied.returncode:
            raise RuntimeError(f"applying Karpenter's CRDs failed: {applied.stderr}")
        for crd in ("nodepools.karpenter.sh", "nodeclaims.karpenter.sh", "kwoknodeclasses.karpenter.kwok.sh"):
            path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}"
            wait_for(lambda: _established(self.api.get(path)), 30, what=f"CRD {crd} established")
        self.api.post("/apis/karpenter.kwok.sh/v1alpha1/kwoknodeclasses",
                      {"apiVersion": "karpenter.kwok.sh/v1alpha1", "kind": "KWOKNodeClass",
                       "metadata": {"name": NODE_CLASS["name"]}})
        for pool in self.node_pools:
            self.api.post(NODEPOOLS, pool)
        return self

    def start(self, timeout: float = 60) -> "Karpenter":
        self.cluster.components[self.component.name] = self.component
        self.component.start()

        def healthy() -> bool:
            if not self.component.running:
                raise RuntimeError(f"karpenter exited:\n{self.component.tail()}")
            return http_ok(f"http://127.0.0.1:{self.health_port}/readyz")

        wait_for(healthy, timeout, what="karpenter /readyz")
        wait_for(lambda: all(self.pool_ready(p["metadata"]["name"]) for p in self.node_pools), timeout,
                 what="Karpenter's NodePools Ready")
        return self

    def stop(self) -> None:
        self.component.stop()

    def pool_ready(self, name: str) -> bool:
        pool = self.api.get(f"{NODEPOOLS}/{name}") or {}
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in (pool.get("status") or {}).get("conditions") or [])

    def node_claims(self) -> list[dict]:
        return self.api.get(NODECLAIMS)["items"]

    def delete_node_claims(self, capacity: str | None = None) -> list[str]:
        """Delete every NodeClaim (of one capacity type): Karpenter drains and removes the
        nodes, as on an interruption. Returns the names."""
        names = [c["metadata"]["name"] for c in self.node_claims()
                 if capacity is None or c["metadata"].get("labels", {}).get(CAPACITY_LABEL) == capacity]
        for name in names:
            self.api.delete(f"{NODECLAIMS}/{name}")
        return names

    def wipe(self, timeout: float = 180) -> None:
        """No NodeClaim and no node Karpenter made: a clean slate between scenarios."""
        self.delete_node_claims()

        def gone() -> bool:
            nodes = self.api.get("/api/v1/nodes", labelSelector=NODEPOOL_LABEL)["items"]
            return not self.node_claims() and not nodes

        wait_for(gone, timeout, interval=1, what="every Karpenter NodeClaim and node gone")

    def nodes(self) -> list[dict]:
        return self.api.get("/api/v1/nodes", labelSelector=NODEPOOL_LABEL)["items"]


def _established(crd: dict | None) -> bool:
    return bool(crd) and any(c.get("type") == "Established" and c.get("status") == "True"
                             for c in (crd.get("status") or {}).get("conditions") or [])


def capacity_counts(nodes: list[dict]) -> dict[str, int]:
    """How many of these nodes are spot and how many on-demand."""
    out: dict[str, int] = {}
    for node in nodes:
        kind = node["metadata"].get("labels", {}).get(CAPACITY_LABEL, "")
        out[kind] = out.get(kind, 0) + 1
    return out


def vcpus(node: dict) -> int:
    """A node's vCPUs, from its instance type's label (KWOK's node status says otherwise)."""
    value = node["metadata"].get("labels", {}).get("karpenter.kwok.sh/instance-cpu", "0")
    return int(value) if value.isdigit() else 0
