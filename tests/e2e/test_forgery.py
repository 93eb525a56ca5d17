"""A hostile pod in the cluster network cannot move a floor (issue 26, item 1).

The session extender requires client certificates, so it would refuse forged calls with
403. On a managed cluster kube-apiserver presents none, so this test starts a second
spot-extender without --tls-client-ca-file and has kube-scheduler and the webhook of this
test's namespace call it. Threads of the test, presenting no certificate, flood its
/filter, /prioritize and /mutate with calls copying the real owners: the ReplicaSets' and
the StatefulSet's names and uids as the API has them, their template labels and revision
hash, and a new random pod uid each time. While the flood runs, three workloads scale up
from zero: a Deployment with a floor of 3 placed by the extender alone (opted out of the
webhook), one with a floor of 3 placed by the webhook's roles, and a StatefulSet whose
PodDisruptionBudget makes its floor 2. Then:
- none ever has fewer than k replicas on on-demand once all are placed, and each ends
  with exactly k: forged state only makes its group err toward floor pods, and the
  controller (in whichever process leads) moves the surplus back to spot;
- the process's memory stays flat;
- the forged calls are counted in spot_extender_unverified_total.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import random
import socket
import ssl
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import orjson

from tests.cluster.controlplane import ExtenderProcess
from tests.helpers import kube
from tests.helpers import objects as o
from tests.helpers.fleet import ON_DEMAND_NODES, SPOT_NODES
from tests.helpers.metrics import samples
from tests.helpers.ports import free_port
from tests.helpers.waiting import wait_for
from tests.helpers.webhook import webhook_configuration, webhook_mutates

SELECTED = {"spot-extender.io/e2e-forgery": "on"}
NODE_NAMES = [name for name, _, _ in SPOT_NODES + ON_DEMAND_NODES]  # on-demand among them: the filter holds
FLOOR_3 = {"spot-extender.io/on-demand-floor": "3"}
# (app, kind, replicas after the scale-up, k, placed by the webhook's roles)
WORKLOADS = [("web", "Deployment", 6, 3, False), ("api", "Deployment", 6, 3, True), ("db", "StatefulSet", 4, 2, True)]
FLOOD_THREADS = 2  # each waits for its answer, so kube-scheduler's and kube-apiserver's calls still get through
# Forged pods a second, each sent to /filter, /prioritize and /mutate: thousands over the test,
# and CPU left for a control plane on a small machine.
FORGED_PER_SECOND = 100
WARM_UP = 5.0  # seconds of flood before the memory baseline: first-call allocations are not growth
RSS_GROWTH_MIB = 40  # generous, for allocator noise: the entry counts (STATE_BOUND) are the exact check
STATE_BOUND = 64  # InFlight and Admitted entries: what the owners' room allows, real pods' included, doubled
SETTLE_TIMEOUT = 180  # surplus floor pods are moved back one at a time, each after its rebalance pass


@dataclass(frozen=True)
class Owner:
    """What a forger can copy of a real owner: its kind, name, uid and pod template labels."""

    kind: str
    name: str
    uid: str
    labels: dict
    pod_names: tuple[str, ...] = ()  # a StatefulSet's pods have names known in advance

    def pod(self, namespace: str, rng: random.Random) -> dict:
        name = rng.choice(self.pod_names) if self.pod_names else f"{self.name}-{rng.randrange(36 ** 5):05x}"
        labels = dict(self.labels)
        if self.kind == "StatefulSet":
            labels["statefulset.kubernetes.io/pod-name"] = name
        return {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": name, "namespace": namespace, "uid": str(uuid.uuid4()), "labels": labels,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": self.kind, "name": self.name, "uid": self.uid,
                                     "controller": True, "blockOwnerDeletion": True}],
            },
            "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1",
                                     "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]},
        }


def review(pod: dict) -> dict:
    """An AdmissionReview as kube-apiserver sends one for a pod's create."""
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": str(uuid.uuid4()), "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "operation": "CREATE",
        "namespace": pod["metadata"]["namespace"], "object": pod, "dryRun": False}}


class Flood:
    """Threads posting forged calls to one process, each as fast as it is answered, until stopped."""

    def __init__(self, port: int, context: ssl.SSLContext, owners: list[Owner], namespace: str):
        self.port, self.context, self.owners, self.namespace = port, context, owners, namespace
        self.stopping = threading.Event()
        self.statuses: Counter = Counter()  # (path, HTTP status or error) -> calls
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(seed,), daemon=True) for seed in range(FLOOD_THREADS)]

    def __enter__(self) -> "Flood":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        for thread in self._threads:
            thread.join(15)

    @property
    def sent(self) -> int:
        with self._lock:
            return sum(self.statuses.values())

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        connection = None
        interval, due = FLOOD_THREADS / FORGED_PER_SECOND, time.monotonic()
        while not self.stopping.wait(max(0.0, due - time.monotonic())):
            due = max(due + interval, time.monotonic() - 1.0)  # behind by a second at most: no catch-up burst
            pod = rng.choice(self.owners).pod(self.namespace, rng)
            args = orjson.dumps({"Pod": pod, "NodeNames": NODE_NAMES})
            for path, body in (("/filter", args), ("/prioritize", args), ("/mutate", orjson.dumps(review(pod)))):
                try:
                    if connection is None:
                        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context,
                                                                 timeout=10)
                        connection.connect()  # headers and body go in two writes: no Nagle delay between them
                        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    connection.request("POST", path, body, {"Content-Type": "application/json"})
                    response = connection.getresponse()
                    response.read()
                    outcome = response.status
                except (OSError, http.client.HTTPException) as exc:
                    outcome = type(exc).__name__
                    if connection is not None:
                        connection.close()
                    connection = None
                    time.sleep(0.1)
                with self._lock:
                    self.statuses[(path, outcome)] += 1
        if connection is not None:
            connection.close()


def index_objects(process: ExtenderProcess) -> dict[str, float]:
    """spot_extender_index_objects by kind, from the process's /metrics."""
    return {s.labels["kind"]: s.value for s in samples(process.get("/metrics"), "spot_extender_index_objects")}


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith("VmRSS:"))
    return int(kib) / 1024


def unverified(process: ExtenderProcess) -> Counter:
    """spot_extender_unverified_total by (what, reason), from the process's /metrics."""
    return Counter({(s.labels["what"], s.labels["reason"]): s.value
                    for s in samples(process.get("/metrics"), "spot_extender_unverified_total")})


def owners(env, ns: str, workloads=WORKLOADS) -> list[Owner]:
    """The real owners as the API has them, once the controllers have made the ReplicaSets and
    the StatefulSet has a revision: what a forger in the cluster can copy."""
    def revision_known():
        sts = env.api.get(f"/apis/apps/v1/namespaces/{ns}/statefulsets/db")
        return sts if sts.get("status", {}).get("updateRevision") else None

    found = []
    for app, kind, replicas, _, _ in workloads:
        if kind == "Deployment":
            rs = wait_for(lambda: env.api.get(f"/apis/apps/v1/namespaces/{ns}/replicasets",
                                              labelSelector=f"app={app}")["items"], 30, what=f"the ReplicaSet of {app}")[0]
            found.append(Owner("ReplicaSet", rs["metadata"]["name"], rs["metadata"]["uid"],
                               rs["spec"]["template"]["metadata"]["labels"]))
        else:
            sts = wait_for(revision_known, 30, what="the StatefulSet's revision")
            labels = {**sts["spec"]["template"]["metadata"]["labels"],
                      "controller-revision-hash": sts["status"]["updateRevision"]}
            found.append(Owner("StatefulSet", app, sts["metadata"]["uid"], labels,
                               tuple(f"{app}-{i}" for i in range(replicas))))
    return found


def open_extender(env, port: int) -> ExtenderProcess:
    """An extender like the session's but with no client CA: it answers whoever reaches its port."""
    flags = [flag for flag in env.flags if not flag.startswith("--tls-client-ca-file=")]
    return ExtenderProcess(env.cluster, *flags, kubeconfig=env.kubeconfig, ca_file=env.ca_file,
                           name="spot-extender-open", port=port).start()


def placed_as_meant(env, ns: str, app: str, replicas: int, k: int, roles: bool, short: list) -> bool:
    """All replicas Ready with exactly k on on-demand (with roles: k floor pods, each on
    on-demand, the rest on spot). Whenever all are bound, fewer than k on on-demand goes into `short`."""
    pods = kube.live(kube.placements(env.api, ns, app))
    if len(pods) >= replicas and all(p.node for p in pods) and kube.on_demand(pods) < k:
        short.append((app, pods))
    if len(pods) != replicas or not all(p.ready for p in pods) or kube.on_demand(pods) != k:
        return False
    if roles:
        return (Counter(p.role for p in pods) == Counter({"floor": k, "spot": replicas - k})
                and all((p.capacity == "on-demand") == (p.role == "floor") for p in pods))
    return True


def test_forged_calls_from_the_cluster_network_cannot_move_a_floor(env, ns):
    port = free_port()
    extender = open_extender(env, port)
    config = webhook_configuration(extender.url, env.ca_file, "spot-extender-e2e-forgery", SELECTED)
    scheduler_options = env.cluster.extender
    try:
        kube.create(env.api, config)
        env.api.merge_patch(f"/api/v1/namespaces/{ns}", {"metadata": {"labels": SELECTED}})
        wait_for(lambda: webhook_mutates(env.api, ns), 30, interval=0.5, what="kube-apiserver calling the new webhook")
        env.cluster.start_scheduler(dataclasses.replace(scheduler_options, port=port))
        # Everything at zero replicas first: the owners exist for the forger to copy.
        web = o.deployment("web", 0, namespace=ns, annotations=FLOOR_3)
        web["spec"]["template"]["metadata"]["labels"]["spot-extender.io/webhook"] = "off"  # the extender alone
        kube.create(env.api, web)
        kube.create(env.api, o.deployment("api", 0, namespace=ns, annotations=FLOOR_3))
        kube.create(env.api, o.pdb("db", {"app": "db"}, min_available=2, namespace=ns))
        kube.create(env.api, o.statefulset("db", 0, namespace=ns))
        copied = owners(env, ns)
        wait_for(lambda: {w["name"] for w in json.loads(extender.get("/debug/workloads"))["workloads"]
                          if w["namespace"] == ns} >= {"web", "api", "db"}, 30, what="the open extender's index")
        pid = extender.component.process.pid
        anonymous = ssl.create_default_context(cafile=str(env.ca_file))  # checks the server; presents nothing
        short: list = []
        with Flood(port, anonymous, copied, ns) as flood:
            time.sleep(WARM_UP)
            baseline, peak, state = rss_mib(pid), 0.0, Counter()
            for app, kind, replicas, _, _ in WORKLOADS:
                env.api.merge_patch(f"{kube.collection(kind, ns)}/{app}", {"spec": {"replicas": replicas}})

            def settled() -> bool:
                nonlocal peak
                peak = max(peak, rss_mib(pid))
                sizes = index_objects(extender)
                for kind in ("InFlight", "Admitted"):
                    state[kind] = max(state[kind], sizes.get(kind, 0))
                return all([placed_as_meant(env, ns, app, replicas, k, roles, short)
                            for app, _, replicas, k, roles in WORKLOADS])

            started = time.monotonic()
            wait_for(settled, SETTLE_TIMEOUT, interval=1, what="every workload with exactly k on on-demand")
            print(f"settled in {time.monotonic() - started:.0f}s under {flood.sent} forged calls; "
                  f"RSS {baseline:.0f} -> {peak:.0f} MiB, entries at most {dict(state)}")
        assert not short, f"fewer than k on on-demand while all were placed: {short[:3]}"
        # Forged calls were answered (no certificate asked for), and plenty of them.
        answered = sum(n for (_, status), n in flood.statuses.items() if status == 200)
        assert answered >= 300 and answered >= 0.95 * flood.sent, flood.statuses
        # Memory flat: what forged calls leave is bounded by the owners' room, whatever their number.
        assert state["InFlight"] <= STATE_BOUND and state["Admitted"] <= STATE_BOUND, state
        assert peak - baseline < RSS_GROWTH_MIB, (baseline, peak)
        counted = unverified(extender)
        print(f"unverified: {dict(counted)}")
        assert sum(n for (what, _), n in counted.items() if what == "inflight") > 0, counted
        assert sum(n for (what, _), n in counted.items() if what == "admission") > 0, counted
    finally:
        env.cluster.start_scheduler(scheduler_options)
        kube.delete(env.api, "MutatingWebhookConfiguration", config["metadata"]["name"])
        extender.stop()


def test_admissions_no_pod_follows_cannot_make_the_first_real_pods_spot(env, ns):
    """The case that needs no forgery, with forgery on top: a ResourceQuota holds back a
    0 -> 6 scale-up of a workload whose floor is 3, so every create kube-apiserver denies
    after mutating admission leaves an admission no pod follows, and a forger adds reviews
    copying the owner. When the quota goes, the first real pods must be floor pods: the
    unconfirmed admissions count for nothing once the watch does not show their pods."""
    port = free_port()
    extender = open_extender(env, port)
    config = webhook_configuration(extender.url, env.ca_file, "spot-extender-e2e-quota", SELECTED)
    quota = f"/api/v1/namespaces/{ns}/resourcequotas"
    try:
        kube.create(env.api, config)
        env.api.merge_patch(f"/api/v1/namespaces/{ns}", {"metadata": {"labels": SELECTED}})
        wait_for(lambda: webhook_mutates(env.api, ns), 30, interval=0.5, what="kube-apiserver calling the new webhook")
        kube.create(env.api, o.deployment("api", 0, namespace=ns, annotations=FLOOR_3))
        (owner,) = owners(env, ns, [("api", "Deployment", 6, 3, True)])
        env.api.post(quota, {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "hold"},
                             "spec": {"hard": {"pods": "0"}}})
        wait_for(lambda: env.api.get(f"{quota}/hold").get("status", {}).get("hard"), 30, what="the quota's status")
        env.api.merge_patch(f"{kube.collection('Deployment', ns)}/api", {"spec": {"replicas": 6}})
        anonymous = ssl.create_default_context(cafile=str(env.ca_file))
        for i in range(3):  # a forger's reviews, copying owner, uid and revision: within the owner's room
            connection = http.client.HTTPSConnection("127.0.0.1", port, context=anonymous, timeout=10)
            connection.request("POST", "/mutate", orjson.dumps(review(owner.pod(ns, random.Random(i)))),
                               {"Content-Type": "application/json"})
            assert connection.getresponse().status == 200
            connection.close()
        denied = lambda: any("exceeded quota" in (e.get("message") or "")  # noqa: E731
                             for e in env.api.get(f"/api/v1/namespaces/{ns}/events")["items"])
        wait_for(denied, 30, what="the ReplicaSet's creates denied by the quota")
        env.api.delete(f"{quota}/hold")
        six = wait_for(lambda: (lambda pods: pods if len(pods) == 6 else None)(
            kube.live(kube.placements(env.api, ns, "api"))), 120, interval=0.2, what="6 pods once the quota went")
        roles = Counter(p.role for p in six)
        print(f"roles when all 6 pods existed: {dict(roles)}; unverified: {dict(unverified(extender))}")
        assert roles["floor"] >= 3, f"a real pod took a floor pod's place: {roles}"
        short: list = []
        wait_for(lambda: placed_as_meant(env, ns, "api", 6, 3, True, short), SETTLE_TIMEOUT, interval=1,
                 what="exactly 3 floor pods on on-demand, the rest on spot")
        assert not short, short[:3]
        counted = unverified(extender)
        assert counted[("admission", "unconfirmed")] + counted[("admission", "no-room")] > 0, counted
    finally:
        kube.delete(env.api, "MutatingWebhookConfiguration", config["metadata"]["name"])
        extender.stop()
