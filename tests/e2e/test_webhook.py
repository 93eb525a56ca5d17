"""The admission webhook with kube-apiserver calling it over HTTPS (a client certificate
each way, the test CA in caBundle): roles in pod specs, with kube-scheduler configured
without the extender (webhook only, the managed-cluster case) and with it (both).

The MutatingWebhookConfiguration is k8s/webhook-configuration's, pointed at the local process
by URL, and selecting only the namespaces of these tests: the rest of the suite runs in
extender-only mode beside it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter

import pytest

from tests.cluster.controlplane import ExtenderProcess
from tests.e2e.conftest import FLOOR_PENDING_TIMEOUT
from tests.helpers import kube
from tests.helpers import objects as o
from tests.helpers.faultproxy import STALL, FaultProxy
from tests.helpers.fleet import ON_DEMAND_NODES, SPOT_NODES, assert_spread, taint_spot
from tests.helpers.ports import free_port
from tests.helpers.sampling import ReadySampler
from tests.helpers.waiting import wait_for
from tests.helpers.webhook import point_webhook, webhook_configuration

SELECTED = {"spot-extender.io/e2e-webhook": "on"}


@pytest.fixture(scope="module")
def webhook(env):
    config = webhook_configuration(env.extender.url, env.ca_file, "spot-extender-e2e", SELECTED)
    kube.create(env.api, config)
    try:
        yield config
    finally:
        kube.delete(env.api, "MutatingWebhookConfiguration", config["metadata"]["name"])


@contextlib.contextmanager
def kube_scheduler_alone(env):
    """kube-scheduler restarted without the extender, as on a managed control plane; back after."""
    env.cluster.start_scheduler(use_extender=False)
    try:
        yield
    finally:
        env.cluster.start_scheduler(use_extender=True)


@pytest.fixture
def webhook_only(env, webhook):
    with kube_scheduler_alone(env):
        yield


@pytest.fixture(params=["webhook-only", "both"])
def mode(request, env, webhook):
    """kube-scheduler without the extender (webhook only), or calling it as well (both)."""
    with kube_scheduler_alone(env) if request.param == "webhook-only" else contextlib.nullcontext():
        yield request.param


def live_until(env, ns: str, app: str, check, timeout: float, what: str) -> list:
    """The app's live pods, once check(pods) holds."""
    return wait_for(lambda: (lambda pods: check(pods) and pods)(kube.live(kube.placements(env.api, ns, app))),
                    timeout, interval=0.5, what=what)


def select(env, ns) -> None:
    env.api.merge_patch(f"/api/v1/namespaces/{ns}", {"metadata": {"labels": SELECTED}})


def roles(placed) -> Counter:
    return Counter(p.role for p in placed)


def test_roles_in_the_spec_keep_floors_on_demand_and_the_rest_on_spot(env, ns, mode):
    select(env, ns)
    admitted_before = env.metric("spot_extender_admissions_total", {"outcome": "floor"})
    kube.create(env.api, o.deployment("web", 10, namespace=ns))
    kube.create(env.api, o.deployment("solo", 1, namespace=ns))
    kube.create(env.api, o.pdb("db", {"app": "db"}, min_available=2, namespace=ns))
    kube.create(env.api, o.statefulset("db", 4, namespace=ns))
    for app, replicas, k in (("web", 10, 1), ("solo", 1, 1), ("db", 4, 2)):
        placed = kube.wait_ready(env.api, ns, app, replicas, timeout=120)
        print(f"{mode} {app}: {sorted((p.role, p.capacity, p.pool) for p in placed)}")
        assert roles(placed) == Counter({"floor": k, "spot": replicas - k}), (app, placed)
        assert all(p.capacity == "on-demand" for p in placed if p.role == "floor"), (app, placed)
        assert all(p.capacity == "spot" for p in placed if p.role == "spot"), (app, placed)
    spot = [p for p in kube.placements(env.api, ns, "web") if p.role == "spot"]
    spot_zones = Counter(p.pool.split("/")[1] for p in spot)
    assert set(spot_zones) == {"zone-a", "zone-b"}, spot_zones
    if mode == "webhook-only":  # the pods' own spread over zones and instance types
        assert max(spot_zones.values()) - min(spot_zones.values()) <= 1, spot_zones
    else:  # the extender's finer spread over nodes and pools (zone-a holds two spot pools)
        assert_spread(spot)
    assert env.metric("spot_extender_admissions_total", {"outcome": "floor"}) >= admitted_before + 4
    pod = next(p for p in env.api.get(f"/api/v1/namespaces/{ns}/pods", labelSelector="app=web")["items"]
               if p["metadata"]["labels"].get(o.ROLE_LABEL) == "floor")
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert {"key": o.CAPACITY_LABEL, "operator": "NotIn", "values": ["spot"]} in terms["nodeSelectorTerms"][0][
        "matchExpressions"]


def test_unselected_namespaces_and_opted_out_pods_are_created_as_they_are(env, ns, webhook):
    kube.create(env.api, o.deployment("plain", 2, namespace=ns))  # this namespace is not selected
    assert roles(kube.wait_ready(env.api, ns, "plain", 2)) == Counter({"": 2})
    select(env, ns)
    opted_out = o.deployment("own", 2, namespace=ns)
    opted_out["spec"]["template"]["metadata"]["labels"]["spot-extender.io/webhook"] = "off"
    kube.create(env.api, opted_out)
    assert roles(kube.wait_ready(env.api, ns, "own", 2)) == Counter({"": 2})


def test_only_a_caller_with_a_client_certificate_reaches_the_webhook(env, ns, webhook):
    import ssl
    import urllib.error
    import urllib.request

    anonymous = ssl.create_default_context(cafile=str(env.ca_file))
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(env.extender.url + "/mutate", data=b"{}"), timeout=5,
                               context=anonymous)
    assert refused.value.code == 403
    select(env, ns)  # ... while kube-apiserver, presenting its own, is answered
    before = env.metric("spot_extender_admission_duration_seconds_count")
    kube.create(env.api, o.deployment("solo", 1, namespace=ns))
    placed = kube.wait_ready(env.api, ns, "solo", 1)
    assert [(p.role, p.capacity) for p in placed] == [("floor", "on-demand")]
    assert env.metric("spot_extender_admission_duration_seconds_count") > before


def test_pods_made_while_the_webhook_is_down_are_created_and_floors_restored_after(env, ns, webhook_only):
    select(env, ns)  # kube-scheduler alone, the managed-cluster case: nothing else places floors
    env.extender.stop()
    try:
        # failurePolicy Ignore: created without roles, and placed by kube-scheduler alone
        # onto spot, where this deployment prefers to be.
        preferring_spot = o.deployment("web", 4, namespace=ns)
        preferring_spot["spec"]["template"]["spec"]["affinity"] = {"nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "preference": {"matchExpressions": [
                {"key": o.CAPACITY_LABEL, "operator": "In", "values": ["spot"]}]}}]}}
        kube.create(env.api, preferring_spot)
        placed = kube.wait_ready(env.api, ns, "web", 4, timeout=60)
        assert roles(placed) == Counter({"": 4}) and kube.on_demand(placed) == 0, placed
    finally:
        env.extender.start(wait_ready=False)
    env.extender.wait_ready()
    # The leader repairs the floor: it evicts a spot replica, and the webhook admits the
    # replacement as a floor pod, which goes to on-demand by its own affinity.
    placed = live_until(env, ns, "web", lambda p: kube.on_demand(p) == 1 and len(p) == 4 and all(x.ready for x in p),
                        120, "the floor restored")
    assert [p.role for p in placed if p.capacity == "on-demand"] == ["floor"], placed


def test_surplus_floor_pods_from_a_burst_are_corrected_to_exactly_k(env, ns, webhook):
    select(env, ns)
    # The worst case of many replicas behind one Service, made certain: a replica whose
    # watches are stalled (a half-open proxy to the API server) sees neither the new
    # StatefulSet nor any of its pods, so it admits every one as a floor pod, the safe
    # answer for a pod whose owner it has not seen.
    proxy = FaultProxy("127.0.0.1", env.cluster.apiserver_port).start()
    try:
        token = next(line.split("token:")[1].strip() for line in env.kubeconfig.read_text().splitlines()
                     if "token:" in line)
        proxied = env.cluster.write_kubeconfig(env.cluster.workdir / "stalled.kubeconfig", token,
                                               server=f"https://127.0.0.1:{proxy.port}")
        stale = ExtenderProcess(env.cluster, *env.flags, "--webhook-owner-wait=50ms", kubeconfig=proxied,
                                ca_file=env.ca_file, client_cert=env.client_cert, name="spot-extender-stalled",
                                port=free_port()).start()
        proxy.set_mode(STALL)
        point_webhook(env.api, webhook, stale.url)
        try:
            kube.create(env.api, o.statefulset("db", 8, namespace=ns))
            placed = kube.wait_ready(env.api, ns, "db", 8, timeout=120)
        finally:
            point_webhook(env.api, webhook, env.extender.url)
            stale.stop()
    finally:
        proxy.stop()
    burst = roles(placed)["floor"]
    print(f"the burst got {burst} floor pods for a floor of 1")
    assert burst > 1, "the burst was meant to over-admit floor pods"
    assert all(p.capacity == "on-demand" for p in placed if p.role == "floor")
    # The leader replaces the surplus one at a time, each replacement admitted as a spot pod.
    def corrected():
        now = kube.live(kube.placements(env.api, ns, "db"))
        done = len(now) == 8 and all(p.ready for p in now) and roles(now) == Counter({"floor": 1, "spot": 7})
        return done and now

    settled = wait_for(corrected, 240, interval=1, what="exactly one floor pod")
    assert [p.capacity for p in settled if p.role == "floor"] == ["on-demand"]
    assert all(p.capacity == "spot" for p in settled if p.role == "spot"), settled


def fill_on_demand(env, ns) -> None:
    """Bare pods bound to every on-demand node, asking for all its CPU."""
    for name, _, _ in ON_DEMAND_NODES:
        kube.create(env.api, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"hog-{name}", "namespace": ns,
                                                            "labels": {"app": "hog"}},
            "spec": {"nodeName": name, "containers": [
                {"name": "hog", "image": "registry.invalid/hog:1", "resources": {"requests": {"cpu": "7900m"}}}]},
        })
    kube.wait_ready(env.api, ns, "hog", len(ON_DEMAND_NODES))


def test_on_demand_full_keeps_the_floor_pod_pending_until_a_node_is_added(env, ns, webhook_only):
    select(env, ns)
    fill_on_demand(env, ns)
    kube.create(env.api, o.deployment("web", 3, namespace=ns, cpu="200m"))
    # The floor pod waits for on-demand rather than landing on spot: what an autoscaler acts on.
    live_until(env, ns, "web", lambda p: len(p) == 3 and sum(x.ready for x in p) == 2, 60,
               "two spot pods ready, the floor pod pending")
    time.sleep(3)
    pending = [p for p in kube.live(kube.placements(env.api, ns, "web")) if not p.node]
    assert [p.role for p in pending] == ["floor"], pending
    kube.add_nodes(env.api, [o.fake_node("od-new", "on-demand", "zone-b")])  # an autoscaler's answer
    try:
        placed = kube.wait_ready(env.api, ns, "web", 3, timeout=FLOOR_PENDING_TIMEOUT)
        assert [(p.role, p.node) for p in placed if p.role == "floor"] == [("floor", "od-new")], placed
        assert env.metric("spot_extender_floor_pending_fallbacks_total") == 0
    finally:
        kube.delete(env.api, "Node", "od-new")


def test_on_demand_full_for_too_long_falls_back_to_spot_and_the_floor_comes_back_later(env, ns, webhook_only):
    select(env, ns)
    fill_on_demand(env, ns)
    before = env.metric("spot_extender_floor_pending_fallbacks_total")
    kube.create(env.api, o.deployment("web", 3, namespace=ns, cpu="200m"))
    # No node comes: after --floor-pending-timeout the floor pod is replaced by a spot pod.
    placed = kube.wait_ready(env.api, ns, "web", 3, timeout=FLOOR_PENDING_TIMEOUT + 60)
    assert roles(placed) == Counter({"spot": 3}) and kube.on_demand(placed) == 0, placed
    assert env.metric("spot_extender_floor_pending_fallbacks_total") == before + 1
    state = next(w for w in json.loads(env.extender.get("/debug/workloads"))["workloads"]
                 if w["namespace"] == ns and w["name"] == "web")
    assert state["floorFallback"] and state["floorRolePods"] == 0, state
    for name, _, _ in ON_DEMAND_NODES:  # on-demand has room again
        kube.delete(env.api, "Pod", f"hog-{name}", ns)
    # The fallback ends and the floor is repaired: a spot pod replaced by a floor pod.
    settled = live_until(env, ns, "web", lambda p: len(p) == 3 and all(x.ready for x in p)
                         and roles(p) == Counter({"floor": 1, "spot": 2}), 120, "the floor restored")
    assert [p.capacity for p in settled if p.role == "floor"] == ["on-demand"], settled


def test_spot_reclaimed_at_once_keeps_every_floor_and_replacements_stay_spot_pods(env, ns, webhook_only):
    select(env, ns)
    apps = {"web": (6, 1), "db": (4, 2)}  # app: (replicas, floor)
    kube.create(env.api, o.deployment("web", 6, namespace=ns))
    kube.create(env.api, o.pdb("db", {"app": "db"}, min_available=2, namespace=ns))
    kube.create(env.api, o.statefulset("db", 4, namespace=ns))
    before = {}
    for app, (replicas, floor) in apps.items():
        placed = kube.wait_ready(env.api, ns, app, replicas, timeout=120)
        assert roles(placed) == Counter({"floor": floor, "spot": replicas - floor}), placed
        before[app] = {p.pod for p in placed}
    sampler = ReadySampler(env.api, ns, list(apps), interval=0.25).start()
    try:
        time.sleep(1)
        taint_spot(env.api, o.RECLAIM_TAINT)  # a reclaim with no notice, then the nodes go
        time.sleep(2)
        for name, _, _ in SPOT_NODES:
            kube.vanish_node(env.api, name)

        def recovered():
            placed = {app: kube.live(kube.placements(env.api, ns, app)) for app in apps}
            return all(len(p) == apps[app][0] and all(x.ready for x in p) for app, p in placed.items()) and placed

        placed = wait_for(recovered, 180, interval=1, what="every replica back")
    finally:
        sampler.stop()
    print(f"minimum ready through the reclaim {sampler.minimum} in {sampler.count} samples")
    assert not sampler.errors and sampler.count > 10, sampler.errors[:3]
    for app, (replicas, floor) in apps.items():
        assert sampler.minimum[app] >= floor, (app, sampler.minimum)
        # StatefulSet pods keep their names: a replacement is a pod of spot role there.
        replacements = [p for p in placed[app] if p.pod not in before[app] or app == "db" and p.role == "spot"]
        assert replacements and all(p.role == "spot" for p in replacements), (app, placed[app])
        assert roles(placed[app]) == Counter({"floor": floor, "spot": replicas - floor}), placed[app]
        assert all(p.capacity == "on-demand" for p in placed[app])  # no spot left to run on
