import asyncio

from spot_extender.cluster.admitted import Admitted
from spot_extender.cluster.index import KIND_NAMES, NODE, PDB, POD, Index
from spot_extender.cluster.inflight import InFlight
from spot_extender.cluster.nodes import NodeClassifier, Pool
from spot_extender.cluster.records import GroupKey, WorkloadKey
from spot_extender.core.settings import Settings
from spot_extender.core.vocabulary import ADMISSION_ANNOTATION, Capacity, Role
from tests.helpers import objects as f

RS = GroupKey("ReplicaSet", "default", "web-1")
OWNER = ("ReplicaSet", "web-1")


def make_index(**settings) -> Index:
    index = Index(NodeClassifier(Settings(**settings)), InFlight(30))
    index.replace(NODE, [f.node("s1", "spot"), f.node("s2", "spot", zone="zone-b"), f.node("o1", "on-demand")])
    return index


def deadlines(index) -> dict[str, float]:
    return {name: index.deadline(name) for name in index.going_away()}


def counts(index, group=RS):
    c = index.counts(group)
    return (c.on_demand, c.spot, dict(c.per_node)) if c else (0, 0, {})


def test_pending_then_bound_then_deleted():
    index = make_index()
    raw = f.pod("web-1-a", owner=OWNER, uid="u1")
    index.apply(POD, "ADDED", raw)
    assert counts(index) == (0, 0, {})
    raw["spec"]["nodeName"] = "o1"
    index.apply(POD, "MODIFIED", raw)
    assert counts(index) == (1, 0, {"o1": 1})
    index.apply(POD, "MODIFIED", raw)  # a repeated event changes nothing
    assert counts(index) == (1, 0, {"o1": 1})
    index.apply(POD, "DELETED", raw)
    assert counts(index) == (0, 0, {})
    assert index.counts(RS) is None  # an emptied group is not kept


def test_terminating_pods_stop_counting():
    index = make_index()
    index.apply(POD, "ADDED", f.pod("a", owner=OWNER, uid="u1", node_name="o1"))
    index.apply(POD, "MODIFIED", f.pod("a", owner=OWNER, uid="u1", node_name="o1", deleting=True))
    assert counts(index) == (0, 0, {})
    assert index.pod("u1") is not None  # still known until it is gone


def test_pools_and_classes():
    index = make_index()
    for i, node in enumerate(["s1", "s1", "s2", "o1"]):
        index.apply(POD, "ADDED", f.pod(f"p{i}", owner=OWNER, uid=f"u{i}", node_name=node))
    c = index.counts(RS)
    assert (c.on_demand, c.spot) == (1, 3)
    assert dict(c.per_pool) == {
        Pool(Capacity.SPOT, "m5.large", "zone-a"): 2,
        Pool(Capacity.SPOT, "m5.large", "zone-b"): 1,
        Pool(Capacity.ON_DEMAND, "m5.large", "zone-a"): 1,
    }


def test_node_label_change_moves_counts():
    index = make_index()
    index.apply(POD, "ADDED", f.pod("a", owner=OWNER, uid="u1", node_name="s1"))
    assert counts(index)[:2] == (0, 1)
    index.apply(NODE, "MODIFIED", f.node("s1", "on-demand"))
    assert counts(index)[:2] == (1, 0)
    assert "s1" in index.on_demand_nodes()


def test_pod_seen_before_its_node_counts_once_node_arrives():
    index = make_index()
    index.apply(POD, "ADDED", f.pod("a", owner=OWNER, uid="u1", node_name="late"))
    assert counts(index) == (0, 0, {})
    index.apply(NODE, "ADDED", f.node("late", "on-demand"))
    assert counts(index) == (1, 0, {"late": 1})


def test_pods_on_a_deleted_node_stop_counting():
    index = make_index()
    index.apply(POD, "ADDED", f.pod("a", owner=OWNER, uid="u1", node_name="s1"))
    index.apply(NODE, "DELETED", f.node("s1"))
    assert counts(index) == (0, 0, {})
    assert "s1" not in index.pools()


def test_going_away_tracking():
    index = make_index()
    index.apply(NODE, "MODIFIED", f.node("s1", taints=[{"key": "karpenter.sh/disrupted"}]))
    assert dict(index.going_away()) == {"s1": "node has taint karpenter.sh/disrupted"}
    index.apply(NODE, "MODIFIED", f.node("s1"))
    assert dict(index.going_away()) == {}


def test_binding_clears_inflight():
    index = make_index()
    index.inflight.hold_on_demand("u1", RS)
    index.apply(POD, "ADDED", f.pod("a", owner=OWNER, uid="u1"))
    assert index.inflight.on_demand(RS) == 1
    index.apply(POD, "MODIFIED", f.pod("a", owner=OWNER, uid="u1", node_name="o1"))
    assert index.inflight.on_demand(RS) == 0


def test_relist_drops_what_disappeared():
    index = make_index()
    index.apply(POD, "ADDED", f.pod("a", owner=OWNER, uid="u1", node_name="o1"))
    index.apply(POD, "ADDED", f.pod("b", owner=OWNER, uid="u2", node_name="s1"))
    index.replace(POD, [f.pod("b", owner=OWNER, uid="u2", node_name="s1")])
    assert {p.uid for p in index.pods()} == {"u2"}
    assert counts(index) == (0, 1, {"s1": 1})
    index.replace(NODE, [f.node("o1", "on-demand")])
    assert set(index.node_names()) == {"o1"}
    assert counts(index) == (0, 0, {})


def test_a_relist_in_pages_keeps_what_it_has_not_reached_and_drops_the_rest_at_the_end():
    index = make_index()
    for uid, node in (("u1", "o1"), ("u2", "s1"), ("u3", "s2")):
        index.apply(POD, "ADDED", f.pod(uid, owner=OWNER, uid=uid, node_name=node))
    listed: set = set()
    index.put_listed(POD, [f.pod("u2", owner=OWNER, uid="u2", node_name="s2"), f.pod("u4", owner=OWNER, uid="u4")],
                     listed)
    # mid-list: the page is applied, the rest as it was
    assert {p.uid for p in index.pods()} == {"u1", "u2", "u3", "u4"} and index.pod("u2").node == "s2"
    index.put_listed(POD, [f.pod("u3", owner=OWNER, uid="u3", node_name="s2")], listed)
    index.end_list(POD, listed)
    assert {p.uid for p in index.pods()} == {"u2", "u3", "u4"}
    assert counts(index) == (0, 2, {"s2": 2})


def test_workload_resolution_and_scaling():
    index = make_index()
    index.apply("Deployment", "ADDED", f.deployment("web", 3))
    index.apply("ReplicaSet", "ADDED", f.replicaset("web-1", "web", revision=1))
    assert index.workload_of(RS).key == WorkloadKey("Deployment", "default", "web")
    index.apply("Deployment", "MODIFIED", f.deployment("web", 7))
    assert index.workload_of(RS).replicas == 7
    index.apply("ReplicaSet", "ADDED", f.replicaset("solo", None))
    assert index.workload_of(GroupKey("ReplicaSet", "default", "solo")).kind == "ReplicaSet"
    index.apply("StatefulSet", "ADDED", f.statefulset("db", 3))
    assert index.workload_of(GroupKey("StatefulSet", "default", "db")).replicas == 3
    assert index.workload_of(GroupKey("ReplicaSet", "default", "unseen")) is None


def test_current_group_is_newest_revision():
    index = make_index()
    deployment = f.deployment("web", 3)
    index.apply("Deployment", "ADDED", deployment)
    index.apply("ReplicaSet", "ADDED", f.replicaset("web-1", "web", revision=1))
    index.apply("ReplicaSet", "ADDED", f.replicaset("web-2", "web", revision=2))
    record = index.workload(WorkloadKey("Deployment", "default", "web"))
    assert index.current_group(record).name == "web-2"
    index.apply("ReplicaSet", "DELETED", f.replicaset("web-2", "web"))
    assert index.current_group(record).name == "web-1"
    top = {(w.kind, w.name) for w in index.top_level_workloads()}
    assert top == {("Deployment", "web")}


def test_pdb_lookup():
    index = make_index()
    index.apply(PDB, "ADDED", f.pdb("web-pdb", {"app": "web"}, min_available=2))
    assert [p.name for p in index.pdbs_selecting("default", {"app": "web"})] == ["web-pdb"]
    assert index.pdbs_selecting("other", {"app": "web"}) == []
    index.apply(PDB, "DELETED", f.pdb("web-pdb", {"app": "web"}))
    assert index.sizes()[PDB] == 0


def test_ready_only_after_every_kind_synced():
    index = make_index()
    assert not index.ready
    for kind in KIND_NAMES:
        index.replace(kind, [])
    assert index.ready


def test_sizes():
    index = make_index()
    index.apply(POD, "ADDED", f.pod("a", uid="u1"))
    sizes = index.sizes()
    assert sizes[NODE] == 3 and sizes[POD] == 1


def test_requested_resources_per_node_and_pods_per_group():
    index = make_index()
    seen = []
    index.subscribe(seen.append)
    big = f.pod("a", owner=OWNER, uid="u1", node_name="s1")
    big["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "500m", "memory": "1Gi"}}
    index.apply(POD, "ADDED", big)
    index.apply(POD, "ADDED", f.pod("b", owner=OWNER, uid="u2"))  # pending: no node usage
    assert index.requested("s1") == (500, 2**30)
    assert {p.uid for p in index.pods_of(RS)} == {"u1", "u2"}
    index.apply(POD, "MODIFIED", {**big, "metadata": {**big["metadata"], "deletionTimestamp": "x"}})
    assert index.requested("s1") == (0, 0)  # terminating pods no longer hold room
    index.apply(POD, "DELETED", big)
    index.apply(POD, "DELETED", f.pod("b", owner=OWNER, uid="u2"))
    assert not index.pods_of(RS)
    assert seen == [POD] * 5  # one call per event


def test_a_pod_its_replicaset_releases_leaves_the_group():
    # kubectl label pod web-1-a app- : the ReplicaSet drops its ownerReference, the pod lives on.
    index = make_index()
    index.apply(POD, "ADDED", f.pod("web-1-a", owner=OWNER, uid="u1", node_name="s1"))
    index.apply(POD, "ADDED", f.pod("web-1-b", owner=OWNER, uid="u2", node_name="s1"))
    released = f.pod("web-1-a", uid="u1", node_name="s1", labels={"debug": "me"})
    index.apply(POD, "MODIFIED", released)
    assert {p.uid for p in index.pods_of(RS)} == {"u2"}
    assert counts(index) == (0, 1, {"s1": 1})
    index.apply(POD, "MODIFIED", f.pod("web-1-a", owner=OWNER, uid="u1", node_name="s1"))  # adopted again
    assert {p.uid for p in index.pods_of(RS)} == {"u1", "u2"}
    index.apply(POD, "DELETED", released)
    assert {p.uid for p in index.pods_of(RS)} == {"u2"}


def test_allocatable_and_pdb_status():
    index = make_index()
    assert (index.node("s1").cpu, index.node("s1").memory) == (4000, 16 * 2**30)
    raw = f.pdb("p", {"app": "web"}, min_available=1)
    raw["status"] = {"disruptionsAllowed": 0}
    index.apply(PDB, "ADDED", raw)
    assert [p.disruptions_allowed for p in index.pdbs_selecting("default", {"app": "web"})] == [0]


async def test_wait_synced_returns_once_every_kind_was_listed():
    index = Index(NodeClassifier(Settings()), InFlight(30))
    waiter = asyncio.create_task(index.wait_synced())
    for kind in KIND_NAMES[:-1]:
        index.replace(kind, [])
        await asyncio.sleep(0)
        assert not waiter.done() and not index.ready
    index.replace(KIND_NAMES[-1], [])
    await asyncio.wait_for(waiter, 1)
    assert index.ready


def test_churn_leaves_nothing_behind():
    # A soak creates and deletes nodes, workloads and pods by the thousand: once they
    # are gone, every table of the index is as it was before.
    clock = [0.0]
    index = Index(NodeClassifier(Settings()), InFlight(30), admitted=Admitted(10.0, lambda: clock[0]))
    for kind in KIND_NAMES:
        index.replace(kind, [])
    index.apply(NODE, "ADDED", f.node("od-1", Capacity.ON_DEMAND))

    def sizes():
        # Every dict and set of every table (a leak check reads the private tables).
        tables = {"index": index, "nodes": index._nodes, "pods": index._pods, "tally": index._pods.tally,
                  "workloads": index._workloads, "volumes": index._volumes}
        return {f"{table}.{name}": len(value) for table, obj in tables.items()
                for name, value in vars(obj).items() if isinstance(value, (dict, set)) and name != "_feeds"} | {
            "inflight": len(index.inflight), "admitted": len(index.admitted)}

    before = sizes()
    itn = {"key": "aws-node-termination-handler/spot-itn", "effect": "NoSchedule"}
    for r in range(50):
        nodes = [f.node(f"spot-{r}-{j}", Capacity.SPOT, taints=[itn] if r % 2 else None) for j in range(3)]
        for node in nodes:
            index.apply(NODE, "ADDED", node)
        deployment, rs = f.deployment(f"app-{r}", 4), f.replicaset(f"app-{r}-1", f"app-{r}", 4)
        index.apply("Deployment", "ADDED", deployment)
        index.apply("ReplicaSet", "ADDED", rs)
        pods = [f.pod(f"app-{r}-1-{j}", owner=("ReplicaSet", f"app-{r}-1"), node_name=f"spot-{r}-{j % 3}",
                      labels={"app": f"app-{r}"}, role=Role.FLOOR if j == 0 else Role.SPOT) for j in range(4)]
        for j, pod in enumerate(pods):
            group = GroupKey("ReplicaSet", "default", f"app-{r}-1")
            index.admitted.record(f"admission-{r}-{j}", group, Role.FLOOR, room=4)
            if j % 2:  # half are seen under the admission's uid, the rest expire
                pod["metadata"]["annotations"] = {ADMISSION_ANNOTATION: f"admission-{r}-{j}"}
            else:
                pod["metadata"]["annotations"] = {ADMISSION_ANNOTATION: f"another-admission-{r}-{j}"}
            index.apply(POD, "ADDED", pod)
            index.inflight.expect(pod["metadata"]["uid"], GroupKey("ReplicaSet", "default", f"app-{r}-1"),
                                  "od-1", Pool(Capacity.ON_DEMAND))
        for obj, kind in [(p, POD) for p in pods] + [(rs, "ReplicaSet"), (deployment, "Deployment")] + [
                (n, NODE) for n in nodes]:
            index.apply(kind, "DELETED", obj)
    clock[0] += 10.0  # the admissions never seen expire
    assert sizes() == before


def test_role_counts_cover_live_labelled_pods_bound_or_not_and_unseen_admissions():
    index = make_index()
    clock = [0.0]
    index.admitted = Admitted(10.0, lambda: clock[0])
    web = {"app": "web"}
    index.apply(POD, "ADDED", f.pod("web-1-a", owner=OWNER, uid="a", labels=web, role=Role.FLOOR))  # pending
    index.apply(POD, "ADDED", f.pod("web-1-b", owner=OWNER, uid="b", node_name="o1", labels=web, role=Role.FLOOR))
    index.apply(POD, "ADDED", f.pod("web-1-c", owner=OWNER, uid="c", node_name="s1", labels=web, role=Role.SPOT))
    index.apply(POD, "ADDED", f.pod("web-1-d", owner=OWNER, uid="d", labels=web, role="boss"))
    index.apply(POD, "ADDED", f.pod("web-1-e", owner=OWNER, uid="e", node_name="o1", labels=web, role=Role.FLOOR,
                                    deleting=True))
    assert (index.role_pods(RS, Role.FLOOR), index.role_pods(RS, Role.SPOT)) == (2, 1)
    index.admitted.record("req-1", RS, Role.FLOOR, room=10)
    assert index.role_pods(RS, Role.FLOOR) == 3
    seen = f.pod("web-1-f", owner=OWNER, uid="f", labels=web, role=Role.FLOOR)
    seen["metadata"]["annotations"] = {ADMISSION_ANNOTATION: "req-1"}
    index.apply(POD, "ADDED", seen)
    assert index.role_pods(RS, Role.FLOOR) == 3  # the same pod, now counted by the watch
    index.apply(POD, "MODIFIED", f.pod("web-1-b", owner=OWNER, uid="b", node_name="o1", labels=web, role=Role.FLOOR,
                                       deleting=True))
    index.apply(POD, "DELETED", f.pod("web-1-a", owner=OWNER, uid="a", labels=web, role=Role.FLOOR))
    assert index.role_pods(RS, Role.FLOOR) == 1
    index.admitted.record("req-2", RS, Role.SPOT, room=10)
    clock[0] = 10.0
    assert index.role_pods(RS, Role.SPOT) == 1  # an admission never seen expires
