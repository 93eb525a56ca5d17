import orjson
import pytest

from spot_extender.assembly import build
from spot_extender.cluster.distrust import DISTRUST_SECONDS
from spot_extender.cluster.index import KIND_NAMES, NODE, PDB, POD
from spot_extender.cluster.inflight import CONFIRM_SECONDS
from spot_extender.core.settings import Settings
from spot_extender.serving.extender import Extender
from spot_extender.serving.status import Status
from spot_extender.serving.wire import parse_args
from tests.helpers import objects as f
from tests.helpers.metrics import registry_value as sample

SPOT_NODES = [("s1", "zone-a"), ("s2", "zone-a"), ("s3", "zone-b"), ("s4", "zone-b")]
OD_NODES = [("o1", "zone-a"), ("o2", "zone-b")]
NAMES = [n for n, _ in SPOT_NODES + OD_NODES]
ZONE = dict(SPOT_NODES + OD_NODES)


def raw_node(name):
    return f.node(name, "spot" if name.startswith("s") else "on-demand", zone=ZONE.get(name, "zone-a"))


def cluster(**settings) -> Extender:
    parts = build(Settings(**settings))
    for kind in KIND_NAMES:
        parts.index.replace(kind, [])
    for name in NAMES:
        parts.index.apply(NODE, "ADDED", raw_node(name))
    return parts.extender


def add_deployment(ext, name, replicas, revision=1, annotations=None):
    ext.index.apply("Deployment", "ADDED", f.deployment(name, replicas, annotations=annotations))
    ext.index.apply("ReplicaSet", "ADDED", f.replicaset(f"{name}-{revision}", name, replicas, revision))


def request(pod, names=NAMES, full=False, ext=None):
    if full:
        nodes = [raw_node(n) for n in names]
        return parse_args(orjson.dumps({"Pod": pod, "Nodes": {"items": nodes}}))
    return parse_args(orjson.dumps({"Pod": pod, "NodeNames": names}))


def filter_(ext, pod, **kw):
    return orjson.loads(ext.filter(request(pod, **kw)))


def prioritize(ext, pod, **kw):
    return {h["Host"]: h["Score"] for h in orjson.loads(ext.prioritize(request(pod, **kw)))}


def schedule(ext, pod, names=NAMES, full=False):
    """What kube-scheduler does with our answers: the best-scored node that passed."""
    result = filter_(ext, pod, names=names, full=full)
    passed = result["NodeNames"] if not full else [n["metadata"]["name"] for n in result["Nodes"]["items"]]
    if not passed:
        return None
    scores = prioritize(ext, pod, names=passed, full=full)
    return max(passed, key=lambda n: (scores[n], -passed.index(n)))


def bind(ext, pod, node):
    pod["spec"]["nodeName"] = node
    ext.index.apply(POD, "MODIFIED", pod)


def burst(ext, deployment, replicas, rs=None, full=False):
    """Create and schedule replicas at once, with bindings showing up only afterwards."""
    rs = rs or f"{deployment}-1"
    pods = [f.pod(f"{rs}-{i}", owner=("ReplicaSet", rs), labels={"app": deployment}) for i in range(replicas)]
    for p in pods:
        ext.index.apply(POD, "ADDED", p)
    placed = [(p, schedule(ext, p, full=full)) for p in pods]
    for p, node in placed:
        bind(ext, p, node)
    return [node for _, node in placed]


def on_demand(nodes):
    return sum(1 for n in nodes if n.startswith("o"))


@pytest.mark.parametrize("full", [False, True], ids=["NodeNames", "Nodes"])
def test_burst_of_ten_keeps_exactly_the_floor_on_demand(full):
    ext = cluster()
    add_deployment(ext, "web", 10)
    nodes = burst(ext, "web", 10, full=full)
    assert on_demand(nodes) == 1
    assert None not in nodes
    # Bindings only show up after all ten decisions, yet spot replicas spread evenly:
    # 9 over 4 spot nodes is at most 3 a node, and at most 5 per zone's pool.
    spot = [n for n in nodes if n.startswith("s")]
    assert max(spot.count(n) for n, _ in SPOT_NODES) == 3
    assert max(sum(1 for n in spot if ZONE[n] == z) for z in ("zone-a", "zone-b")) == 5


def test_without_expectations_a_burst_would_pile_up():
    # Guards the spread check above: with expectations gone at once, a burst stacks.
    ext = cluster(inflight_ttl=1e-9)
    add_deployment(ext, "web", 10, annotations={"spot-extender.io/placement": "spot"})
    spot = burst(ext, "web", 10)
    assert max(spot.count(n) for n, _ in SPOT_NODES) == 10


def test_without_inflight_tracking_a_burst_would_overshoot():
    # Guards the test above: with a TTL that expires at once, the burst goes on-demand.
    ext = cluster(inflight_ttl=1e-9)
    add_deployment(ext, "web", 10)
    assert on_demand(burst(ext, "web", 10)) == 10


def test_spot_replicas_spread_over_nodes_and_pools_once_bound():
    ext = cluster()
    add_deployment(ext, "web", 9)
    nodes = []
    for i in range(9):  # one at a time, each binding seen before the next
        p = f.pod(f"web-1-{i}", owner=("ReplicaSet", "web-1"), labels={"app": "web"})
        ext.index.apply(POD, "ADDED", p)
        node = schedule(ext, p)
        bind(ext, p, node)
        nodes.append(node)
    spot = [n for n in nodes if n.startswith("s")]
    assert on_demand(nodes) == 1 and len(spot) == 8
    assert max(spot.count(n) for n, _ in SPOT_NODES) == 2  # 8 over 4 spot nodes
    zone_a = sum(1 for n in spot if n in ("s1", "s2"))
    assert zone_a == 4


def test_single_replica_goes_on_demand():
    ext = cluster()
    add_deployment(ext, "solo", 1)
    assert burst(ext, "solo", 1)[0].startswith("o")


def test_statefulset_single_replica_on_demand():
    ext = cluster()
    ext.index.apply("StatefulSet", "ADDED", f.statefulset("db", 1))
    p = f.pod("db-0", owner=("StatefulSet", "db"), labels={"app": "db"})
    assert schedule(ext, p).startswith("o")


def test_pdb_min_available_sets_floor():
    ext = cluster()
    add_deployment(ext, "api", 5)
    ext.index.apply(PDB, "ADDED", f.pdb("api", {"app": "api"}, min_available=2))
    assert on_demand(burst(ext, "api", 5)) == 2


def test_placement_annotations():
    ext = cluster()
    add_deployment(ext, "batch", 4, annotations={"spot-extender.io/placement": "spot"})
    add_deployment(ext, "core", 3, annotations={"spot-extender.io/placement": "on-demand"})
    add_deployment(ext, "mid", 10, annotations={"spot-extender.io/on-demand-floor": "30%"})
    assert on_demand(burst(ext, "batch", 4)) == 0
    assert on_demand(burst(ext, "core", 3)) == 3
    assert on_demand(burst(ext, "mid", 10)) == 3


def test_rolling_update_counts_within_the_new_revision():
    ext = cluster()
    add_deployment(ext, "web", 4)
    assert on_demand(burst(ext, "web", 4)) == 1
    # A new revision: its first pod must go on-demand although revision 1 still has one there.
    ext.index.apply("ReplicaSet", "ADDED", f.replicaset("web-2", "web", 4, revision=2))
    nodes = burst(ext, "web", 4, rs="web-2")
    assert on_demand(nodes) == 1
    states = {s.name: s for s in Status(ext.index, ext.floors, Settings()).workloads()}
    assert states["web"].counted_group == "ReplicaSet/web-2"
    assert states["web"].on_demand == 1 and states["web"].floor_met


def test_fallback_to_spot_when_no_on_demand_candidate():
    ext = cluster(floor_hold=0)
    add_deployment(ext, "web", 3)
    p = f.pod("web-1-x", owner=("ReplicaSet", "web-1"))
    result = filter_(ext, p, names=["s1", "s2"])
    assert result["NodeNames"] == ["s1", "s2"] and result["FailedNodes"] == {}
    assert sample(ext.metrics, "spot_extender_fallbacks_total") == 1
    # the fallback pod is not counted as on-demand in flight
    assert ext.index.inflight.on_demand(ext.context(p).group) == 0


def test_fallback_to_on_demand_when_spot_is_full():
    ext = cluster()
    add_deployment(ext, "web", 3)
    burst(ext, "web", 1)  # the floor is met
    p = f.pod("web-1-y", owner=("ReplicaSet", "web-1"))
    result = filter_(ext, p, names=["o1", "o2"])  # spot nodes already filtered out as full
    assert result["NodeNames"] == ["o1", "o2"]
    assert set(prioritize(ext, p, names=["o1", "o2"]).values()) <= set(range(0, 5))


def test_going_away_nodes_fail_for_managed_pods_only():
    ext = cluster()
    add_deployment(ext, "web", 3)
    ext.index.apply(NODE, "MODIFIED", f.node("s1", taints=[{"key": "aws-node-termination-handler/spot-itn"}]))
    burst(ext, "web", 1)
    managed = filter_(ext, f.pod("web-1-z", owner=("ReplicaSet", "web-1")))
    assert managed["FailedAndUnresolvableNodes"] == {"s1": "node has taint aws-node-termination-handler/spot-itn"}
    assert "s1" not in managed["NodeNames"]
    daemon = filter_(ext, f.pod("ds-x", owner=("DaemonSet", "ds")))
    assert daemon["NodeNames"] == NAMES and daemon["FailedAndUnresolvableNodes"] == {}


@pytest.mark.parametrize(
    "pod",
    [
        f.pod("ds-x", owner=("DaemonSet", "ds")),
        f.pod("job-x", owner=("Job", "j")),
        f.pod("bare"),
        f.pod("web-1-a", namespace="kube-system", owner=("ReplicaSet", "web-1")),
    ],
    ids=["daemonset", "job", "bare", "excluded-namespace"],
)
def test_unmanaged_pods_pass_untouched_with_neutral_scores(pod):
    ext = cluster()
    result = filter_(ext, pod)
    assert result["NodeNames"] == NAMES and result["FailedNodes"] == {}
    assert set(prioritize(ext, pod).values()) == {0}


@pytest.mark.parametrize("unknown_class, passes", [("on-demand", True), ("spot", False)])
def test_unknown_node_names_are_classified_not_crashed(unknown_class, passes):
    ext = cluster(unknown_class=unknown_class)
    add_deployment(ext, "web", 3)
    result = filter_(ext, f.pod("web-1-a", owner=("ReplicaSet", "web-1")), names=["ghost", "s1", "o1"])
    assert ("ghost" in result["NodeNames"]) is passes
    assert sample(ext.metrics, "spot_extender_unknown_nodes_total") == 1


def test_an_unseen_node_never_wins_the_floor_replica_on_a_tie():
    ext = cluster()
    add_deployment(ext, "web", 3)
    scores = prioritize(ext, f.pod("web-1-a", owner=("ReplicaSet", "web-1")), names=["ghost", "s1", "o1", "o2"])
    best = max(scores.values())
    assert scores["ghost"] < best and [n for n, s in scores.items() if s == best] in (["o1"], ["o2"]), scores


def test_not_synced_answers_with_protocol_error():
    ext = build(Settings()).extender
    for name in NAMES:
        ext.index.apply(NODE, "ADDED", raw_node(name))
    result = filter_(ext, f.pod("web-1-a", owner=("ReplicaSet", "web-1")))
    assert result["Error"] and result["NodeNames"] is None
    assert set(prioritize(ext, f.pod("web-1-a", owner=("ReplicaSet", "web-1"))).values()) == {0}


def test_owner_not_yet_in_index_uses_default_floor():
    ext = cluster()
    p = f.pod("new-1-a", owner=("ReplicaSet", "new-1"))
    assert ext.context(p).floor.k == 1
    assert schedule(ext, p).startswith("o")


def test_retried_pod_keeps_its_on_demand_decision():
    ext = cluster()
    add_deployment(ext, "web", 3)
    p = f.pod("web-1-a", owner=("ReplicaSet", "web-1"))
    first = filter_(ext, p)
    again = filter_(ext, p)  # the scheduler retries the same pod before any binding
    assert first["NodeNames"] == again["NodeNames"] == ["o1", "o2"]


def test_nodes_mode_matches_node_names_mode():
    a, b = cluster(), cluster()
    for ext in (a, b):
        add_deployment(ext, "web", 6)
    assert burst(a, "web", 6) == burst(b, "web", 6, full=True)


def test_lasting_problems_are_logged_once_not_per_call(caplog):
    ext = cluster()
    add_deployment(ext, "web", 3, annotations={"spot-extender.io/on-demand-floor": "lots"})
    p = f.pod("web-1-a", owner=("ReplicaSet", "web-1"))
    for _ in range(5):
        filter_(ext, p, names=["ghost", "s1", "o1"])
        prioritize(ext, p, names=["ghost", "s1", "o1"])
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("ignored workload annotation") == 1
    assert messages.count("candidate nodes not in the index, treated as unknown class") == 1
    assert sample(ext.metrics, "spot_extender_unknown_nodes_total") == 5  # still counted every time


def requesting(pod, cpu):
    pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": cpu}}
    return pod


def holding():
    """(an extender with a 90 s floor hold on its own clock, the clock, a pod below its floor)."""
    ext = cluster(floor_hold=90)
    clock = [100.0]
    ext.holds.clock = lambda: clock[0]
    add_deployment(ext, "web", 3)
    pod = f.pod("web-1-x", owner=("ReplicaSet", "web-1"))
    ext.index.apply(POD, "ADDED", pod)  # Pending, as the watch shows it before the scheduler asks
    return ext, clock, pod


def test_a_floor_pod_is_held_off_spot_while_an_on_demand_node_outside_the_sample_could_take_it():
    ext, clock, pod = holding()
    result = filter_(ext, pod, names=["s1", "s2"])  # the sample left out o1 and o2, which have room
    assert result["NodeNames"] == [] and result["FailedNodes"] == {}
    reasons = result["FailedAndUnresolvableNodes"]  # unresolvable: never a preemption for it
    assert sorted(reasons) == ["s1", "s2"] and all(r.startswith("floor hold: on-demand node o") for r in reasons.values())
    clock[0] += 30
    assert "60s more" in filter_(ext, pod, names=["s1", "s2"])["FailedAndUnresolvableNodes"]["s1"]
    assert sample(ext.metrics, "spot_extender_floor_holds_total", result="started") == 1
    assert sample(ext.metrics, "spot_extender_fallbacks_total") == 0
    assert schedule(ext, pod, names=["s2", "o1"]) == "o1"  # a retry whose sample has one: there
    assert sample(ext.metrics, "spot_extender_floor_holds_total", result="ended") == 1


def test_a_floor_hold_runs_out_and_no_hold_starts_without_an_on_demand_node_that_fits():
    ext, clock, pod = holding()
    assert filter_(ext, pod, names=["s1"])["NodeNames"] == []
    clock[0] += 90
    assert filter_(ext, pod, names=["s1"])["NodeNames"] == ["s1"]  # held long enough: spot beats Pending
    assert filter_(ext, pod, names=["s1"])["NodeNames"] == ["s1"]
    assert sample(ext.metrics, "spot_extender_floor_holds_total", result="expired") == 1
    assert sample(ext.metrics, "spot_extender_fallbacks_total") == 2
    big = requesting(f.pod("web-1-y", owner=("ReplicaSet", "web-1")), "8")  # no 4-CPU node fits it
    ext.index.apply(POD, "ADDED", big)
    assert filter_(ext, big, names=["s1"])["NodeNames"] == ["s1"]
    # Where a pod may run is read from its template in the index, not from the call.
    picky = f.deployment("picky", 3)
    picky["spec"]["template"]["spec"]["nodeSelector"] = {"topology.kubernetes.io/zone": "zone-nowhere"}
    ext.index.apply("Deployment", "ADDED", picky)
    rs = f.replicaset("picky-1", "picky", 3)
    rs["spec"]["template"]["spec"] = picky["spec"]["template"]["spec"]
    ext.index.apply("ReplicaSet", "ADDED", rs)
    picky_pod = f.pod("picky-1-z", owner=("ReplicaSet", "picky-1"), labels={"app": "picky"})
    ext.index.apply(POD, "ADDED", picky_pod)
    assert filter_(ext, picky_pod, names=["s1"])["NodeNames"] == ["s1"]
    assert sample(ext.metrics, "spot_extender_floor_holds_total", result="started") == 1


@pytest.mark.parametrize("full", [False, True], ids=["NodeNames", "Nodes"])
def test_roles_from_the_webhook_decide_over_the_counts(full):
    ext = cluster()
    add_deployment(ext, "web", 4, annotations={"spot-extender.io/on-demand-floor": "1"})
    on_od = f.pod("web-1-0", owner=("ReplicaSet", "web-1"), labels={"app": "web"})
    ext.index.apply(POD, "ADDED", on_od)
    bind(ext, on_od, "o1")  # the floor is met by count
    floor = f.pod("web-1-1", owner=("ReplicaSet", "web-1"), labels={"app": "web"}, role="floor")
    result = filter_(ext, floor, full=full)
    passed = result["NodeNames"] if not full else [n["metadata"]["name"] for n in result["Nodes"]["items"]]
    assert sorted(passed) == ["o1", "o2"] and set(result["FailedAndUnresolvableNodes"].values()) == {"floor-role pod"}
    assert schedule(ext, floor, full=full).startswith("o")
    ext2 = cluster()
    add_deployment(ext2, "web", 4)  # nothing placed: by count the next pod would go on-demand
    spot = f.pod("web-1-2", owner=("ReplicaSet", "web-1"), labels={"app": "web"}, role="spot")
    result = filter_(ext2, spot, full=full)
    assert result["FailedNodes"] == {}
    assert schedule(ext2, spot, full=full).startswith("s")
    unlabelled = f.pod("web-1-3", owner=("ReplicaSet", "web-1"), labels={"app": "web"})
    assert schedule(ext2, unlabelled, full=full).startswith("o")  # no role: by the counts, as before



# ---- Forged filter and prioritize calls (issue 26): state no watch confirmed errs toward on-demand ----

FLOOR_3 = {"spot-extender.io/on-demand-floor": "3"}


def web_pod(name, uid=None, rs="web-1", owner_uid=None, template_hash=None):
    """A pod of ReplicaSet rs as kube-scheduler sends it: its owner reference and revision label."""
    pod = f.pod(name, owner=("ReplicaSet", rs), uid=uid, labels={"app": "web", "pod-template-hash": template_hash or rs})
    if owner_uid is not None:
        pod["metadata"]["ownerReferences"][0]["uid"] = owner_uid
    return pod


def lagging_burst(ext, replicas, lag, rs="web-1"):
    """A burst whose pods the watch shows only `lag` decisions after kube-scheduler asked about
    them, Pending, and whose bindings show up only after every decision."""
    pods = [web_pod(f"{rs}-{i}", rs=rs) for i in range(replicas)]
    placed = []
    for i, p in enumerate(pods):
        placed.append((p, schedule(ext, p)))
        if i >= lag:
            ext.index.apply(POD, "ADDED", pods[i - lag])
    for p in pods[max(0, replicas - lag):]:
        ext.index.apply(POD, "ADDED", p)
    for p, node in placed:
        bind(ext, p, node)
    return [node for _, node in placed]


def forge(ext, pod):
    """What a caller without a certificate can send: a filter call with every node, then a prioritize."""
    filter_(ext, pod)
    prioritize(ext, pod)


def unverified(ext, reason):
    return sample(ext.metrics, "spot_extender_unverified_total", what="inflight", reason=reason)


def test_a_burst_the_watch_lags_behind_still_gets_exactly_the_floor():
    ext = cluster()
    add_deployment(ext, "web", 150, annotations=FLOOR_3)
    nodes = lagging_burst(ext, 150, lag=5)
    assert on_demand(nodes) == 3
    spot = [n for n in nodes if n.startswith("s")]
    assert max(spot.count(n) for n, _ in SPOT_NODES) - min(spot.count(n) for n, _ in SPOT_NODES) <= 1
    assert sample(ext.metrics, "spot_extender_unverified_total", what="inflight", reason="expired") == 0
    assert len(ext.index.inflight) == 0 and not ext.index.inflight.distrusted(ext.context(web_pod("x")).group)


@pytest.mark.parametrize("forged, reason", [
    (dict(owner_uid="not-the-replicasets-uid"), "owner-uid"),
    (dict(owner_uid=""), "owner-uid"),
    (dict(template_hash="an-old-revision"), "revision"),
])
def test_forged_holds_that_do_not_match_the_owner_are_not_kept_and_are_counted(forged, reason):
    ext = cluster()
    add_deployment(ext, "web", 6, annotations=FLOOR_3)
    for i in range(10):
        forge(ext, web_pod(f"web-1-forged-{i}", **forged))
    assert len(ext.index.inflight) == 0
    assert unverified(ext, reason) == 20  # a filter hold and a prioritize expectation each
    assert on_demand(lagging_burst(ext, 6, lag=2)) == 3


def forgery_target():
    """(an extender with web at 6 replicas and a floor of 3, its in-flight holds on a clock of
    their own, that clock, web's group)."""
    ext = cluster()
    add_deployment(ext, "web", 6, annotations=FLOOR_3)
    inflight, now = ext.index.inflight, [0.0]
    inflight.clock = lambda: now[0]
    return ext, inflight, now, ext.context(web_pod("x")).group


def test_forged_holds_copying_the_owner_exactly_are_bounded_by_its_room():
    ext, inflight, now, group = forgery_target()
    for i in range(1000):
        forge(ext, web_pod(f"web-1-forged-{i}"))
        assert len(inflight) <= 6  # R less its live pods, however many come
    # The seventh is more than the owner could have: the group counts what the watch confirmed only.
    assert inflight.distrusted(group) and inflight.on_demand(group) == 0
    assert unverified(ext, "no-room") > 1900
    assert on_demand(burst(ext, "web", 6)) == 3  # holds of pods the watch shows still count
    now[0] += CONFIRM_SECONDS
    assert len(inflight) == 0 and unverified(ext, "expired") == 6


def test_a_forged_hold_the_watch_never_confirms_makes_its_group_err_toward_on_demand():
    ext, inflight, now, group = forgery_target()
    for i in range(3):  # exactly the floor, well within the room
        forge(ext, web_pod(f"web-1-forged-{i}"))
    assert inflight.on_demand(group) == 3
    now[0] += CONFIRM_SECONDS  # no pod of those uids ever shows up
    assert inflight.on_demand(group) == 0 and inflight.distrusted(group)
    assert unverified(ext, "expired") == 3
    # Distrusted: holds of pods the watch has not shown are not kept, so a lagging burst gets
    # extra on-demand pods (which the controller moves back), never fewer than the floor.
    assert on_demand(lagging_burst(ext, 6, lag=2)) >= 3
    now[0] += DISTRUST_SECONDS
    ext.index.apply("ReplicaSet", "ADDED", f.replicaset("web-2", "web", 6, revision=2))
    assert on_demand(lagging_burst(ext, 6, lag=2, rs="web-2")) == 3  # trusted again: exact


@pytest.mark.parametrize("known, reason, burst_on_demand", [
    (dict(name="api-1-a", owner=("ReplicaSet", "api-1")), "other-group", 3),  # a real pod of another workload
    (dict(name="web-1-bound", owner=("ReplicaSet", "web-1"), node_name="o1"), "not-pending", 2),  # 1 placed
    (dict(name="web-1-going", owner=("ReplicaSet", "web-1"), deleting=True), "not-pending", 3),
])
def test_holds_for_a_pod_the_index_knows_otherwise_are_not_kept(known, reason, burst_on_demand):
    ext = cluster()
    add_deployment(ext, "web", 6, annotations=FLOOR_3)
    add_deployment(ext, "api", 6)
    real = f.pod(**known, labels={"app": "x"})
    ext.index.apply(POD, "ADDED", real)
    for _ in range(3):
        forge(ext, web_pod("web-1-forged", uid=real["metadata"]["uid"]))
    assert len(ext.index.inflight) == 0 and unverified(ext, reason) == 6
    assert on_demand(burst(ext, "web", 6)) == burst_on_demand


def test_a_flood_of_made_up_pods_and_owners_leaves_no_state():
    ext = cluster(floor_hold=90)
    add_deployment(ext, "web", 6, annotations=FLOOR_3)
    for i in range(2000):
        pod = web_pod(f"x-{i}-a", rs=f"x-{i}")  # owners the index has never seen
        filter_(ext, pod)
        prioritize(ext, pod)
        answer = filter_(ext, web_pod(f"web-1-{i}"), names=["s1", "s2"])  # only spot: a floor hold
        assert answer["NodeNames"] == [] and "waiting for the watch" in answer["FailedAndUnresolvableNodes"]["s1"]
    assert unverified(ext, "unknown-owner") == 4000
    assert len(ext.holds) == 0 and len(ext.index.inflight) == 0


# ---- The filter waits for the watch to confirm the holds that decide a pod (extender.filter_confirmed) ----

async def filter_confirmed(ext, pod) -> list[str]:
    return orjson.loads(await ext.filter_confirmed(request(pod)))["NodeNames"]


async def test_a_lagging_burst_waits_milliseconds_for_the_watch_and_stays_exact():
    import asyncio

    ext, inflight, _, group = forgery_target()
    first = [web_pod(f"web-1-{i}") for i in range(3)]
    assert all(set(filter_(ext, p)["NodeNames"]) == {"o1", "o2"} for p in first)  # k = 3: floor pods
    # The watch shows them 20 ms later, while the fourth pod's filter waits.
    asyncio.get_running_loop().call_later(0.02, lambda: [ext.index.apply(POD, "ADDED", p) for p in first])
    assert set(await filter_confirmed(ext, web_pod("web-1-3"))) == set(NAMES)  # spot allowed: 3 on-demand
    assert not inflight.distrusted(group) and unverified(ext, "unconfirmed") == 0


async def test_holds_the_watch_never_confirms_cannot_send_the_next_real_pod_to_spot():
    ext, inflight, _, group = forgery_target()
    for i in range(3):  # exactly the floor, within the room, copying the owner: counted as on-demand
        forge(ext, web_pod(f"web-1-forged-{i}"))
    assert set(filter_(ext, web_pod("web-1-real"))["NodeNames"]) == set(NAMES)  # what the plain filter would do
    assert set(await filter_confirmed(ext, web_pod("web-1-real"))) == {"o1", "o2"}  # waited, in vain: floor
    assert inflight.distrusted(group) and unverified(ext, "unconfirmed") == 1
    assert set(await filter_confirmed(ext, web_pod("web-1-next"))) == {"o1", "o2"}  # no second wait needed
