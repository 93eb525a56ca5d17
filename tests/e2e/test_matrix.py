"""The support matrix: five providers' node conventions x three modes, on the session's
control plane (docs/platforms.md is written from its results).

Each case creates the same four workloads in a namespace of its own and checks, reading
the API server only: exactly k replicas on on-demand and the rest on spot, nothing
Pending; no eviction in the 30 s after settling; every workload at or above its floor
of Ready replicas while every spot node vanishes at once.

Cases that share a node convention and a kube-scheduler configuration run as one phase,
side by side: extender only (namespace without the webhook label) and both (with it)
while kube-scheduler calls the extender, then webhook only (with the label) with
kube-scheduler as it ships. The session's KWOK nodes are relabelled and retainted
between conventions and put back as they were at the end.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import pytest

from tests.e2e.conftest import restore_nodes
from tests.helpers import kube
from tests.helpers import objects as o
from tests.helpers.fleet import ON_DEMAND_NODES, SPOT_NODES
from tests.helpers.kube import Placement
from tests.helpers.metrics import scrape_sum
from tests.helpers.rollouts import ROLLOUTS, create_rollout, install_rollout_crd
from tests.helpers.sampling import WatchedReady
from tests.helpers.waiting import wait_for
from tests.helpers.webhook import webhook_configuration

SETTLE_TIMEOUT = 60
QUIET_WINDOW = 30
RECOVERY_TIMEOUT = 90
WEBHOOK_SELECTED = {"spot-extender.io/e2e-matrix": "webhook"}  # namespaces the matrix's webhook mutates
FLOOR_ANNOTATION = "spot-extender.io/on-demand-floor"


def no_schedule(key: str, value: str) -> dict:
    return {"key": key, "value": value, "effect": "NoSchedule"}


@dataclass(frozen=True)
class Convention:
    name: str
    spot_labels: dict
    on_demand_labels: dict
    spot_taint: dict | None = None  # what the provider (or its users) put on every spot node

    def labels(self, capacity: str) -> dict:
        return self.spot_labels if capacity == "spot" else self.on_demand_labels

    def taints(self, capacity: str) -> list[dict]:
        return [self.spot_taint] if capacity == "spot" and self.spot_taint else []


CONVENTIONS = (
    Convention("capacity-label", {o.CAPACITY_LABEL: "spot"}, {o.CAPACITY_LABEL: "on-demand"}),
    Convention("karpenter", {o.KARPENTER_CAPACITY_LABEL: "spot"}, {o.KARPENTER_CAPACITY_LABEL: "on-demand"},
               no_schedule(o.KARPENTER_CAPACITY_LABEL, "spot")),
    Convention("eks", {"eks.amazonaws.com/capacityType": "SPOT"}, {"eks.amazonaws.com/capacityType": "ON_DEMAND"}),
    Convention("gke", {"cloud.google.com/gke-spot": "true"}, {"cloud.google.com/gke-provisioning": "standard"},
               no_schedule("cloud.google.com/gke-spot", "true")),
    Convention("aks", {"kubernetes.azure.com/scalesetpriority": "spot"},
               {"kubernetes.azure.com/scalesetpriority": "regular"},
               no_schedule("kubernetes.azure.com/scalesetpriority", "spot")),
)
CAPACITY_KEYS = sorted({key for c in CONVENTIONS for key in (*c.spot_labels, *c.on_demand_labels)})

EXTENDER_ONLY, BOTH, WEBHOOK_ONLY = "extender-only", "both", "webhook-only"
SCHEDULER_CALLS_EXTENDER = {EXTENDER_ONLY: True, BOTH: True, WEBHOOK_ONLY: False}
WEBHOOK_MUTATES = {EXTENDER_ONLY: False, BOTH: True, WEBHOOK_ONLY: True}

# Cases that cannot keep "k on on-demand, the rest on spot", by design: a pod without a
# toleration never reaches a tainted spot node (kube-scheduler's own taint filter drops
# it before the extender is asked), and only the webhook adds one. Every replica runs on
# on-demand instead, which is what these cases assert.
BY_DESIGN = {
    (c.name, EXTENDER_ONLY): f"spot nodes are tainted {c.spot_taint['key']}={c.spot_taint['value']}:NoSchedule "
                             "and the templates carry no toleration: every replica runs on on-demand"
    for c in CONVENTIONS if c.spot_taint
}


@dataclass(frozen=True)
class Workload:
    app: str
    replicas: int
    floor: int
    floor_pods: tuple = ()  # the pods the webhook must make floor pods, where that is fixed


WORKLOADS = (
    Workload("web", 6, 2),  # a Deployment, its floor by annotation
    Workload("solo", 1, 1),  # k is clamped to R: a single replica runs on on-demand everywhere
    Workload("db", 4, 2, ("db-3", "db-4")),  # a StatefulSet from ordinal 3, k from its PDB; its first k ordinals
    Workload("canary", 3, 1),  # an Argo Rollout, the default floor
)
APPS = [w.app for w in WORKLOADS]


def create_workloads(api, ns: str) -> None:
    kube.create(api, o.deployment("web", 6, namespace=ns, annotations={FLOOR_ANNOTATION: "2"}))
    kube.create(api, o.deployment("solo", 1, namespace=ns))
    kube.create(api, o.pdb("db", {"app": "db"}, min_available=2, namespace=ns))
    db = o.statefulset("db", 4, namespace=ns)
    db["spec"]["ordinals"] = {"start": 3}
    kube.create(api, db)
    create_rollout(api, "canary", ns, 3)


def phases() -> list[tuple[Convention, tuple[str, ...]]]:
    """Per convention, the extender phase and the webhook-only phase, alternating which comes
    first so that kube-scheduler restarts only when the convention changes."""
    extender, alone = (EXTENDER_ONLY, BOTH), (WEBHOOK_ONLY,)
    return [(c, modes) for i, c in enumerate(CONVENTIONS) for modes in ((extender, alone) if i % 2 == 0
                                                                       else (alone, extender))]


CASES = [(c, mode) for c, modes in phases() for mode in modes]


def expected_on_demand(workload: Workload, convention: Convention, mode: str) -> int:
    return workload.replicas if (convention.name, mode) in BY_DESIGN else workload.floor


def placement_problems(placed: list[Placement], workload: Workload, convention: Convention, mode: str) -> list[str]:
    """What differs from the case's expectation; empty once the workload is as it should be."""
    want = expected_on_demand(workload, convention, mode)
    live = kube.live(placed)
    problems = []
    if len(live) != workload.replicas or not all(p.ready for p in live):
        problems.append(f"{sum(p.ready for p in live)}/{workload.replicas} ready, "
                        f"{sum(not p.node for p in live)} pending")
    on_demand = [p for p in live if p.capacity == "on-demand"]
    spot = [p for p in live if p.capacity == "spot"]
    if (len(on_demand), len(spot)) != (want, workload.replicas - want):
        problems.append(f"{len(on_demand)} on on-demand and {len(spot)} on spot, want {want} and "
                        f"{workload.replicas - want}")
    roles = Counter(p.role for p in live)
    if WEBHOOK_MUTATES[mode]:
        if roles != Counter({"floor": workload.floor, "spot": workload.replicas - workload.floor}):
            problems.append(f"roles {dict(roles)}, want {workload.floor} floor")
        if any(p.capacity != "on-demand" for p in live if p.role == "floor"):
            problems.append("a floor pod off on-demand")
        floor_pods = tuple(sorted(p.pod for p in live if p.role == "floor"))
        if workload.floor_pods and floor_pods != workload.floor_pods:
            problems.append(f"floor pods {floor_pods}, want {workload.floor_pods}")
    elif roles != Counter({"": len(live)}):
        problems.append(f"roles {dict(roles)} in a namespace the webhook does not select")
    return problems


def describe(placed: list[Placement]) -> list[str]:
    return [f"{p.pod} {p.node or 'Pending'} {p.capacity or '-'} role={p.role or '-'} ready={p.ready}"
            + (" terminating" if p.terminating else "") for p in placed]


@dataclass
class Observed:
    """One case, as the API server and /metrics showed it during its phase."""

    namespace: str
    placed: dict[str, list[Placement]] = field(default_factory=dict)  # at settling, or when the wait gave up
    settled_after: float | None = None  # seconds from creation; None: never as expected
    quiet_evictions: float = 0.0  # in the phase's quiet window, every namespace of the phase
    replaced_in_quiet: list[str] = field(default_factory=list)  # this namespace's pods gone in that window
    min_ready: dict[str, int | None] = field(default_factory=dict)  # through the reclaim
    recovered_after: float | None = None  # seconds from the reclaim to every replica Ready again
    log: list[str] = field(default_factory=list)  # the extender's lines naming the namespace or an eviction


def node_taints(node: dict) -> list[tuple]:
    return sorted((t["key"], t.get("value", ""), t["effect"]) for t in node["spec"].get("taints") or [])


class Matrix:
    """Runs a phase when its first case asks for it and keeps every case's observations."""

    def __init__(self, env):
        self.env = env
        self.api = env.api
        self.started = time.monotonic()
        self.results: dict[tuple[str, str], Observed | Exception] = {}
        self.namespaces: list[str] = []  # every one made: emptied as its phase ends, deleted in the background
        self.node_specs = {name: (capacity, zone, kind) for capacity, nodes in (("spot", SPOT_NODES),
                                                                                ("on-demand", ON_DEMAND_NODES))
                           for name, zone, kind in nodes}

    def say(self, text: str) -> None:
        print(f"[matrix {time.monotonic() - self.started:5.0f}s] {text}", flush=True)

    def observe(self, convention: Convention, mode: str) -> Observed:
        key = (convention.name, mode)
        if key not in self.results:
            modes = next(modes for c, modes in phases() if c == convention and mode in modes)
            made_before = len(self.namespaces)
            try:
                self.results.update(self.run_phase(convention, modes))
            except Exception as exc:  # the sibling case of the phase reports it too, without a rerun
                self.results.update({(convention.name, m): exc for m in modes})
                for ns in self.namespaces[made_before:]:  # nothing left for the next phase to count
                    self.clear(ns)
                raise
        result = self.results[key]
        if isinstance(result, Exception):
            pytest.fail(f"the phase of {key} failed in another case: {result!r}")
        return result

    # Nodes

    def apply(self, convention: Convention) -> None:
        """Every session node in this convention alone: spot nodes a reclaim deleted come back in it."""
        existing = kube.node_facts(self.api)
        for name, (capacity, zone, kind) in self.node_specs.items():
            labels, taints = convention.labels(capacity), convention.taints(capacity)
            if name in existing:
                self.api.merge_patch(f"/api/v1/nodes/{name}", {
                    "metadata": {"labels": {**dict.fromkeys(CAPACITY_KEYS), **labels}},
                    "spec": {"taints": taints or None}})
            else:
                node = o.fake_node(name, capacity, zone, kind)
                del node["metadata"]["labels"][o.CAPACITY_LABEL]
                node["metadata"]["labels"].update(labels)
                node["spec"]["taints"] = taints
                kube.create(self.api, node)
        self.wait_nodes({name: (convention.labels(capacity), convention.taints(capacity))
                         for name, (capacity, _, _) in self.node_specs.items()})

    def wait_nodes(self, wanted: dict[str, tuple[dict, list[dict]]]) -> None:
        """Until each node is Ready with exactly these capacity labels and taints (a new node's
        not-ready taint gone)."""
        def as_wanted():
            nodes = kube.node_facts(self.api)
            return all(
                name in nodes and kube.is_ready(nodes[name])
                and {k: v for k, v in nodes[name]["metadata"]["labels"].items() if k in CAPACITY_KEYS} == labels
                and node_taints(nodes[name]) == node_taints({"spec": {"taints": taints}})
                for name, (labels, taints) in wanted.items())

        wait_for(as_wanted, 60, interval=0.3, what="the session's nodes relabelled and Ready")

    def vanish_spot_nodes(self) -> None:
        """Every spot instance gone at once: the Nodes first, then the pods bound to them."""
        for name, _, _ in SPOT_NODES:
            kube.delete(self.api, "Node", name)
        for name, _, _ in SPOT_NODES:
            for pod in self.api.get("/api/v1/pods", fieldSelector=f"spec.nodeName={name}")["items"]:
                kube.delete(self.api, "Pod", pod["metadata"]["name"], pod["metadata"]["namespace"])

    # Phases

    def scheduler(self, calls_extender: bool) -> None:
        if self.env.cluster.use_extender != calls_extender:
            self.env.cluster.start_scheduler(use_extender=calls_extender)

    def namespace(self, convention: Convention, mode: str) -> str:
        name = kube.namespace(self.api, f"mx-{convention.name}-{mode}-{uuid.uuid4().hex[:5]}")
        self.namespaces.append(name)
        if WEBHOOK_MUTATES[mode]:
            self.api.merge_patch(f"/api/v1/namespaces/{name}", {"metadata": {"labels": WEBHOOK_SELECTED}})
        return name

    def pods(self, ns: str) -> dict[str, list[Placement]]:
        nodes = kube.node_facts(self.api)
        return {app: kube.placements(self.api, ns, app, nodes) for app in APPS}

    def evictions(self) -> float:
        return scrape_sum(self.env.extender, "spot_extender_evictions_total")

    def clear(self, ns: str) -> None:
        """The namespace's workloads and pods gone at once, the namespace itself in the background
        (the namespace controller takes seconds): the workloads orphan their pods, so nothing
        recreates them, and the pods go with no grace."""
        for workloads in ("/apis/apps/v1/namespaces/{ns}/deployments", ROLLOUTS,
                          "/apis/apps/v1/namespaces/{ns}/statefulsets", "/apis/apps/v1/namespaces/{ns}/replicasets"):
            self.api.delete(workloads.format(ns=ns), propagationPolicy="Orphan")
        self.api.delete(kube.collection("Pod", ns), gracePeriodSeconds="0")
        kube.delete(self.api, "Namespace", ns)

    def wait_gone(self, namespaces: list[str]) -> None:
        wait_for(lambda: not any(self.api.exists(f"/api/v1/namespaces/{ns}") for ns in namespaces), 120,
                 interval=0.5, what=f"namespaces {namespaces} deleted")

    def run_phase(self, convention: Convention, modes: tuple[str, ...]) -> dict[tuple[str, str], Observed]:
        started = time.monotonic()
        earlier = list(self.namespaces)
        self.apply(convention)
        self.scheduler(SCHEDULER_CALLS_EXTENDER[modes[0]])
        log_from = self.env.extender.component.log.stat().st_size
        seen = {mode: Observed(self.namespace(convention, mode)) for mode in modes}
        created = time.monotonic()
        for observed in seen.values():
            create_workloads(self.api, observed.namespace)
        # The eviction counter is global: nothing of an earlier phase may be left to evict.
        wait_for(lambda: not any(self.api.get(kube.collection("Pod", ns))["items"] for ns in earlier), 60,
                 interval=0.5, what=f"no pods left in {earlier}")

        # Settling: every namespace of the phase as its case expects, or what it was at the end.
        waiting = set(modes)
        while waiting and time.monotonic() - created < SETTLE_TIMEOUT:
            for mode in sorted(waiting):
                observed = seen[mode]
                observed.placed = self.pods(observed.namespace)
                if not any(placement_problems(observed.placed[w.app], w, convention, mode) for w in WORKLOADS):
                    observed.settled_after = round(time.monotonic() - created, 1)
                    waiting.discard(mode)
            if waiting:
                time.sleep(0.5)
        before = self.evictions()
        uids = {mode: self.pod_uids(seen[mode].namespace) for mode in modes}
        self.say(f"{convention.name} {'+'.join(modes)}: settled {[seen[m].settled_after for m in modes]}")

        # The quiet window.
        time.sleep(QUIET_WINDOW)  # a window in which nothing may happen: there is no condition to wait for
        for mode in modes:
            seen[mode].replaced_in_quiet = sorted(name for _, name in uids[mode] - self.pod_uids(seen[mode].namespace))
        quiet_evictions = self.evictions() - before
        self.say(f"{convention.name} {'+'.join(modes)}: {quiet_evictions:.0f} evictions in {QUIET_WINDOW}s quiet")

        # Every spot node reclaimed at once.
        watchers = {mode: WatchedReady(self.api, seen[mode].namespace, APPS).start() for mode in modes}
        reclaimed = time.monotonic()
        try:
            self.vanish_spot_nodes()
            self.wait_recovered(seen, reclaimed)
        finally:
            for watcher in watchers.values():
                watcher.stop()
        for mode, observed in seen.items():
            observed.quiet_evictions = quiet_evictions
            observed.min_ready = dict(watchers[mode].minimum)
            if watchers[mode].errors:
                raise RuntimeError(f"watching {observed.namespace} failed: {watchers[mode].errors[:3]}")
        self.say(f"{convention.name} {'+'.join(modes)}: min ready through the reclaim "
                 f"{[seen[m].min_ready for m in modes]}, recovered {[seen[m].recovered_after for m in modes]}")

        for observed in seen.values():
            self.clear(observed.namespace)
        log = self.env.extender.component.log.read_bytes()[log_from:].decode(errors="replace").splitlines()
        for observed in seen.values():
            observed.log = [line for line in log if observed.namespace in line or "evict" in line.lower()][-40:]
        self.say(f"{convention.name} {'+'.join(modes)}: phase took {time.monotonic() - started:.0f}s")
        return {(convention.name, mode): observed for mode, observed in seen.items()}

    def pod_uids(self, ns: str) -> set[tuple[str, str]]:
        return {(p["metadata"]["uid"], p["metadata"]["name"])
                for p in self.api.get(f"/api/v1/namespaces/{ns}/pods")["items"]}

    def wait_recovered(self, seen: dict[str, Observed], since: float) -> None:
        """Until every workload of every namespace has all its replicas Ready again."""
        waiting = set(seen)
        while waiting and time.monotonic() - since < RECOVERY_TIMEOUT:
            for mode in sorted(waiting):
                pods = self.pods(seen[mode].namespace)
                if all(len(live := kube.live(pods[w.app])) == w.replicas and all(p.ready for p in live)
                       for w in WORKLOADS):
                    seen[mode].recovered_after = round(time.monotonic() - since, 1)
                    waiting.discard(mode)
            time.sleep(0.5)


@pytest.fixture(scope="module")
def matrix(env):
    restore_nodes(env)  # the standard fleet, whatever an earlier test left
    original = kube.node_facts(env.api)
    assert set(original) == {n for n, _, _ in SPOT_NODES + ON_DEMAND_NODES}, sorted(original)
    config = webhook_configuration(env.extender.url, env.ca_file, "spot-extender-matrix", WEBHOOK_SELECTED)
    kube.create(env.api, config)
    runner = Matrix(env)
    try:
        install_rollout_crd(env.api)
        wait_for_rollouts_indexed(env, runner)
        yield runner
    finally:
        kube.delete(env.api, "MutatingWebhookConfiguration", config["metadata"]["name"])
        runner.scheduler(True)
        for ns in runner.namespaces:
            kube.delete(env.api, "Namespace", ns)
        put_back(env, runner, original)
        runner.wait_gone(runner.namespaces)
        runner.say("nodes, scheduler and webhook as they were")


def wait_for_rollouts_indexed(env, runner: Matrix) -> None:
    """The extender looks for the Rollout kind every --optional-kind-recheck: a Rollout of
    the first phase must not arrive before it is watched (synchronisation only: the cases
    read the API server)."""
    ns = kube.namespace(env.api, f"mx-probe-{uuid.uuid4().hex[:5]}")
    runner.namespaces.append(ns)
    create_rollout(env.api, "probe", ns, 0)
    wait_for(lambda: any((w["kind"], w["namespace"]) == ("Rollout", ns)
                         for w in json.loads(env.extender.get("/debug/workloads"))["workloads"]),
             30, what="the extender watching Rollouts")
    kube.delete(env.api, "Namespace", ns)


def put_back(env, runner: Matrix, original: dict[str, dict]) -> None:
    """The session nodes' labels and taints as they were before the module."""
    existing = kube.node_facts(env.api)
    for name, node in original.items():
        labels, taints = node["metadata"]["labels"], node["spec"].get("taints")
        if name in existing:
            stale = {key: None for key in existing[name]["metadata"]["labels"] if key not in labels}
            env.api.merge_patch(f"/api/v1/nodes/{name}", {"metadata": {"labels": {**stale, **labels}},
                                                          "spec": {"taints": taints or None}})
        else:
            capacity, zone, kind = runner.node_specs[name]
            fresh = o.fake_node(name, capacity, zone, kind)
            fresh["metadata"]["labels"] = labels
            fresh["spec"]["taints"] = taints or []
            kube.create(env.api, fresh)
    runner.wait_nodes({name: ({k: v for k, v in node["metadata"]["labels"].items() if k in CAPACITY_KEYS},
                              node["spec"].get("taints") or []) for name, node in original.items()})


@pytest.mark.parametrize(("convention", "mode"), CASES, ids=[f"{c.name}-{mode}" for c, mode in CASES])
def test_floors_on_demand_rest_on_spot_quiet_and_kept_through_a_full_spot_reclaim(matrix, convention, mode):
    seen = matrix.observe(convention, mode)
    design = BY_DESIGN.get((convention.name, mode))
    context = "\n".join([f"case {convention.name} x {mode} in {seen.namespace}"
                         + (f" (by design: {design})" if design else ""),
                         *(f"  {app}: {line}" for app, placed in seen.placed.items() for line in describe(placed)),
                         "extender log:", *seen.log])
    problems = {w.app: found for w in WORKLOADS
                if (found := placement_problems(seen.placed[w.app], w, convention, mode))}
    assert not problems, f"{problems} {SETTLE_TIMEOUT}s after creation\n{context}"
    assert seen.quiet_evictions == 0, (
        f"{seen.quiet_evictions:.0f} evictions in the {QUIET_WINDOW}s after settling (whole phase); "
        f"pods of this case gone meanwhile: {seen.replaced_in_quiet}\n{context}")
    assert seen.recovered_after is not None, f"not every replica Ready {RECOVERY_TIMEOUT}s after the reclaim\n{context}"
    # Nothing on spot survives, so the replicas on on-demand are what keeps serving.
    kept = {w.app: seen.min_ready[w.app] for w in WORKLOADS}
    lost = [w.app for w in WORKLOADS if kept[w.app] is None or kept[w.app] >= w.replicas > expected_on_demand(
        w, convention, mode)]
    assert not lost, f"the watch never saw {lost} lose their spot replicas: {kept}\n{context}"
    assert all(kept[w.app] >= expected_on_demand(w, convention, mode) for w in WORKLOADS), (
        f"fewest Ready through the reclaim {kept}\n{context}")
