"""Shapes whose floor cannot be met as set must never churn: each is watched for a minute
after it settles, with no eviction and no floor fallback, and the floor it cannot meet is
reported (/debug/workloads, a metric), not chased.

All five run at once, each in its own namespace with the webhook on and kube-scheduler
calling the extender (both modes), so the minute of watching is shared:
- GPUs only spot nodes have (dedicated GPU spot nodes are added for it);
- a StatefulSet whose claims are bound to volumes in a zone with spot nodes only;
- pods held by a scheduling gate;
- a pod relabelled out of its ReplicaSet;
- a host port on a pool with one on-demand node and a floor of 2.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.conftest import FLOOR_PENDING_TIMEOUT
from tests.helpers import kube
from tests.helpers import objects as o
from tests.helpers.metrics import samples
from tests.helpers.waiting import wait_for
from tests.helpers.webhook import webhook_configuration, webhook_mutates

SELECTED = {"spot-extender.io/e2e-churn": "on"}
QUIET = 60  # seconds watched after settling
GPU = {"nvidia.com/gpu": "1"}
ZONE_C = "zone-c"  # spot only
PORTS_POOL = {"spot-extender.io/e2e-pool": "ports"}

# Nodes of their own, removed at the end: the session's nodes are left as they were.
EXTRA_NODES = [
    ("gpu-spot-1", "spot", "zone-a", {"nvidia.com/gpu": "4"}, {}),
    ("gpu-spot-2", "spot", "zone-b", {"nvidia.com/gpu": "4"}, {}),
    ("spot-c-1", "spot", ZONE_C, {}, {}),
    ("ports-od-1", "on-demand", "zone-a", {}, PORTS_POOL),
    ("ports-spot-1", "spot", "zone-a", {}, PORTS_POOL),
    ("ports-spot-2", "spot", "zone-b", {}, PORTS_POOL),
]


def extra_node(name, capacity, zone, resources, labels) -> dict:
    node = o.fake_node(name, capacity, zone)
    for field in ("allocatable", "capacity"):
        node["status"][field].update(resources)
    node["metadata"]["labels"].update(labels)
    if labels:  # a pool of its own: nothing else lands there
        node["spec"]["taints"] = [{"key": "spot-extender.io/e2e-pool", "value": "ports", "effect": "NoSchedule"}]
    return node


@pytest.fixture(scope="module")
def shapes_env(env):
    config = webhook_configuration(env.extender.url, env.ca_file, "spot-extender-e2e-churn", SELECTED)
    kube.create(env.api, config)
    nodes = [extra_node(*spec) for spec in EXTRA_NODES]
    try:
        for node in nodes:
            kube.create(env.api, node)
        names = {name for name, *_ in EXTRA_NODES}
        wait_for(lambda: (lambda facts: names <= set(facts) and all(kube.is_ready(facts[n]) for n in names))(
            kube.node_facts(env.api)), 60, what="the extra nodes Ready")
        yield env
    finally:
        kube.delete(env.api, "MutatingWebhookConfiguration", config["metadata"]["name"])
        for name, *_ in EXTRA_NODES:
            kube.vanish_node(env.api, name)


def namespace(env, name: str) -> str:
    """Created with the webhook's label at once: kube-apiserver matches webhooks against its
    cache of namespaces, which may hold one labelled later without the label for a while."""
    kube.create(env.api, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": SELECTED}})
    wait_for(lambda: env.api.exists(f"/api/v1/namespaces/{name}/serviceaccounts/default"), 30,
             what=f"service account in {name}")
    return name


def with_template(deployment: dict, **spec) -> dict:
    deployment["spec"]["template"]["spec"].update(spec)
    return deployment


def gpu_training(ns: str) -> dict:
    gpu = {"requests": {"cpu": "100m", "memory": "64Mi", **GPU}, "limits": GPU}
    return with_template(o.deployment("train", 2, namespace=ns), containers=[
        {"name": "app", "image": "registry.invalid/train:1", "resources": gpu}])


def zonal_volumes(env, ns: str) -> None:
    """A StatefulSet of 2 (PDB minAvailable 1: k = 1) whose claims are bound, before its pods
    exist, to volumes that attach in zone-c only."""
    for ordinal in (0, 1):
        env.api.post("/api/v1/persistentvolumes", {
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": f"{ns}-data-{ordinal}"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "",
                     "hostPath": {"path": f"/tmp/{ns}-{ordinal}"},
                     "claimRef": {"namespace": ns, "name": f"data-db-{ordinal}"},
                     "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                         {"key": "topology.kubernetes.io/zone", "operator": "In", "values": [ZONE_C]}]}]}}}})
        env.api.post(f"/api/v1/namespaces/{ns}/persistentvolumeclaims", {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": f"data-db-{ordinal}"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "", "volumeName": f"{ns}-data-{ordinal}",
                     "resources": {"requests": {"storage": "1Gi"}}}})
    wait_for(lambda: all(c["status"].get("phase") == "Bound" for c in env.api.get(
        f"/api/v1/namespaces/{ns}/persistentvolumeclaims")["items"]), 60, what="the claims bound")
    db = o.statefulset("db", 2, namespace=ns)
    db["spec"]["volumeClaimTemplates"] = [{"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "storageClassName": "", "resources": {"requests": {"storage": "1Gi"}}}}]
    kube.create(env.api, db)
    kube.create(env.api, o.pdb("db", {"app": "db"}, min_available=1, namespace=ns))


def host_port_pool(ns: str) -> dict:
    """Three replicas, floor 2, each taking host port 8080: the pool's one on-demand node holds one."""
    deployment = o.deployment("agent", 3, namespace=ns, annotations={"spot-extender.io/on-demand-floor": "2"})
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["ports"] = [{"containerPort": 8080, "hostPort": 8080}]
    return with_template(deployment, nodeSelector=dict(PORTS_POOL), tolerations=[
        {"key": "spot-extender.io/e2e-pool", "operator": "Equal", "value": "ports", "effect": "NoSchedule"}])


def views(env) -> dict[tuple[str, str], dict]:
    return {(w["namespace"], w["name"]): w for w in json.loads(env.extender.get("/debug/workloads"))["workloads"]}


def churn(env) -> tuple[float, float]:
    """(eviction attempts of every cause and result, floor fallbacks) so far."""
    text = env.extender.get("/metrics")
    return (sum(s.value for s in samples(text, "spot_extender_evictions_total")),
            sum(s.value for s in samples(text, "spot_extender_floor_pending_fallbacks_total")))


def test_floors_that_cannot_be_met_are_reported_and_never_chased(shapes_env):
    env = shapes_env
    started = time.monotonic()
    ns = {shape: namespace(env, f"churn-{shape}-{int(time.time()) % 100000}")
          for shape in ("gpu", "volume", "gate", "relabel", "ports")}
    wait_for(lambda: webhook_mutates(env.api, ns["gate"]), 30, what="kube-apiserver calling the new webhook")
    kube.create(env.api, gpu_training(ns["gpu"]))
    zonal_volumes(env, ns["volume"])
    kube.create(env.api, with_template(o.deployment("gated", 2, namespace=ns["gate"]),
                                       schedulingGates=[{"name": "example.com/not-yet"}]))
    kube.create(env.api, o.deployment("web", 3, namespace=ns["relabel"]))
    kube.create(env.api, host_port_pool(ns["ports"]))
    try:
        kube.wait_ready(env.api, ns["gpu"], "train", 2, timeout=90)
        kube.wait_ready(env.api, ns["volume"], "db", 2, timeout=90)
        kube.wait_ready(env.api, ns["relabel"], "web", 3, timeout=90)
        # One replica is taken out of its ReplicaSet for debugging: the ReplicaSet replaces it.
        first = kube.placements(env.api, ns["relabel"], "web")[0].pod
        env.api.merge_patch(f"/api/v1/namespaces/{ns['relabel']}/pods/{first}",
                            {"metadata": {"labels": {"app": "debug"}}})
        kube.wait_ready(env.api, ns["relabel"], "web", 3, timeout=90)
        # The second floor pod of the host-port pool finds the port taken on the one on-demand
        # node: after --floor-pending-timeout it falls back to spot, once.
        kube.wait_ready(env.api, ns["ports"], "agent", 3, timeout=FLOOR_PENDING_TIMEOUT + 90)
        gated = wait_for(lambda: (lambda pods: len(pods) == 2 and pods)(
            kube.live(kube.placements(env.api, ns["gate"], "gated"))), 60, what="the gated pods created")
        assert all(not p.node for p in gated)
        # Settled: every controller decision these shapes lead to has been taken.
        wait_for(lambda: views(env).get((ns["ports"], "agent"), {}).get("floorFallback"), 60,
                 what="the host-port pool's floor fallback marked")
        time.sleep(FLOOR_PENDING_TIMEOUT + 5)  # the gated pods' floor timeout passes inside the settling
        print(f"settled after {time.monotonic() - started:.0f}s; watching {QUIET}s", flush=True)
        before = churn(env)
        time.sleep(QUIET)
        after = churn(env)
        assert after == before, f"evictions and fallbacks during the quiet minute: {before} -> {after}"

        state = views(env)
        gpu = state[(ns["gpu"], "train")]
        assert gpu["floor"] == 0 and "nvidia.com/gpu" in gpu["floorClamp"], gpu
        assert kube.on_demand(kube.placements(env.api, ns["gpu"], "train")) == 0
        volume = state[(ns["volume"], "db")]
        assert (volume["floor"], volume["onDemand"], volume["floorMet"]) == (1, 0, False), volume
        assert volume["controller"]["lastSkip"] == "its volumes cannot be attached on any on-demand node"
        gate = state[(ns["gate"], "gated")]
        assert not gate["floorMet"] and gate["floorRolePods"] == 1, gate
        relabel = state[(ns["relabel"], "web")]
        assert relabel["onDemand"] + relabel["spot"] == 3 and relabel["floorMet"], relabel
        ports = state[(ns["ports"], "agent")]
        assert (ports["floor"], ports["onDemand"], ports["floorMet"]) == (2, 1, False), ports
        assert env.metric("spot_extender_workloads_floor_clamped") >= 1
        assert env.metric("spot_extender_workloads_below_floor") >= 2  # the volume-pinned set and the port pool
        print(f"done in {time.monotonic() - started:.0f}s", flush=True)
    finally:
        for name in ns.values():
            kube.delete(env.api, "Namespace", name)
        for name in ns.values():
            wait_for(lambda name=name: not env.api.exists(f"/api/v1/namespaces/{name}"), 120,
                     what=f"namespace {name} deleted")
        for ordinal in (0, 1):
            try:
                env.api.delete(f"/api/v1/persistentvolumes/{ns['volume']}-data-{ordinal}")
            except Exception:  # noqa: BLE001 - already gone
                pass
