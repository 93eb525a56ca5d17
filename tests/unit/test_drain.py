"""Drain (app/controller/drain.py): which pods on going-away spot nodes it evicts, each only
once, paced to the notice in waves that slide as replacements turn Ready and keep within the
PDBs, workloads taken in turn, and no drain while most nodes are NotReady at once. Against a
recording stand-in for Kube; the real API server is exercised by tests/e2e/test_controller.py."""

import asyncio

from spot_extender.cluster.index import NODE, PDB, POD
from spot_extender.controller import Controller
from spot_extender.controller import writer as writer_module
from spot_extender.core.settings import Settings
from tests.helpers import objects as f
from tests.helpers.controller import ITN, RecordingKube, deploy, drain, evictions_done, paced, setup
from tests.helpers.metrics import registry_value as sample


async def test_drain_evicts_managed_pods_on_going_away_spot_nodes_only():
    controller, index = setup()
    deploy(index, "web", ["s1", "s1", "o1"])
    deploy(index, "sys", ["s1"], namespace="kube-system")
    deploy(index, "mine", ["s1"], annotations={"spot-extender.io/rebalance": "false"})
    index.apply(POD, "ADDED", f.pod("ds-1", owner=("DaemonSet", "ds"), node_name="s1"))
    mirror = f.pod("static-1", node_name="s1", owner=("ReplicaSet", "x"))
    mirror["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "abc"}
    index.apply(POD, "ADDED", mirror)
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[{"key": "karpenter.sh/disrupted"}]))  # no notice: at once
    index.apply(NODE, "MODIFIED", f.node("o1", "on-demand", unschedulable=True))  # on-demand: not drained
    await drain(controller)
    assert sorted(controller.kube.evicted) == ["default/web-1-0", "default/web-1-1"]
    assert {e["reason"] for e in controller.kube.events} == {"EvictedReclaim"}
    assert sample(controller.metrics, "spot_extender_evictions_total", cause="reclaim", result="evicted") == 2


async def test_an_evicted_pod_is_not_evicted_again_before_the_watch_shows_it_leaving():
    controller, index = setup(kube=RecordingKube(watch_lags=True))
    deploy(index, "web", ["s1"])
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", unschedulable=True))
    await controller.drain.once()
    await asyncio.sleep(0.1)  # evicted, but the watch has not delivered the deletion yet
    await controller.drain.once()
    assert controller.kube.evicted == ["default/web-1-0"]
    pod = next(iter(index.pods()))
    raw = f.pod(pod.name, owner=("ReplicaSet", "web-1"), node_name="s1", uid=pod.uid, deleting=True)
    index.apply(POD, "MODIFIED", raw)
    await evictions_done(controller)
    await controller.drain.once()
    assert controller.kube.evicted == ["default/web-1-0"]


def not_ready(name, capacity):
    return f.node(name, capacity, ready=False)


async def test_most_nodes_not_ready_at_once_is_no_reason_to_drain():
    # An API server outage leaves every heartbeat stale: the nodes turn NotReady together,
    # one watch event after another.
    controller, index = setup()
    clock = [0.0]
    controller.drain.clock = lambda: clock[0]
    deploy(index, "web", ["s1", "s2"], annotations={"spot-extender.io/placement": "spot"})
    index.apply(NODE, "MODIFIED", not_ready("s1", "spot"))
    await drain(controller)  # the first of them, seen alone: within the grace, nothing yet
    clock[0] += 1
    for name, capacity in (("s2", "spot"), ("o1", "on-demand")):
        index.apply(NODE, "MODIFIED", not_ready(name, capacity))
        await drain(controller)
    clock[0] += 60
    await drain(controller)  # 3 of 4 not Ready, however long: held
    assert controller.kube.evicted == []
    # One spot node NotReady on its own, past the grace, is going away: it is drained.
    for name, capacity in (("s2", "spot"), ("o1", "on-demand")):
        index.apply(NODE, "MODIFIED", f.node(name, capacity))
    await drain(controller)
    assert controller.kube.evicted == ["default/web-1-0"]


async def test_a_drain_with_notice_keeps_a_window_of_replicas_down_that_slides_as_replacements_turn_ready():
    controller, index, clock = paced(["o1"] + ["s1"] * 6)
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))  # 120 s notice: evict by 120 - 30 - 5
    assert index.deadline("s1") == 1120.0
    await drain(controller)  # 85 s and 30 s start-ups: 3 waves fit, so 2 of the 6 down at a time
    assert controller.kube.evicted == ["default/web-1-1", "default/web-1-2"]
    clock[0] += 5
    await drain(controller)  # their replacements are not Ready: nothing more
    assert len(controller.kube.evicted) == 2
    index.apply(POD, "ADDED", f.pod("web-1-r1", owner=("ReplicaSet", "web-1"), node_name="o2", labels={"app": "web"}))
    await drain(controller)  # one is: one more goes, without waiting for the other
    assert controller.kube.evicted == ["default/web-1-1", "default/web-1-2", "default/web-1-3"]
    assert sample(controller.metrics, "spot_extender_drain_waves_total", trigger="paced") == 2
    # No other replacement comes, and time runs out: the rest go at once, by 1085.
    clock[0] = 1085.0
    await drain(controller)
    assert sorted(controller.kube.evicted) == [f"default/web-1-{i}" for i in range(1, 7)]
    assert sample(controller.metrics, "spot_extender_drain_waves_total", trigger="due") == 1
    assert all(e["reason"] == "EvictedReclaim" for e in controller.kube.events)


async def test_a_replica_the_watch_shows_ready_after_the_drain_began_counts_as_up_from_then_on():
    # A replica not Ready at the first pass is not down for the drain (it may crash-loop);
    # once it turns Ready, a replica evicted since must count as down, or two go at once.
    controller, index, _ = paced(["o1", "o2"] + ["s1"] * 3)  # 85 s, 30 s start-ups: 1 at a time
    late = next(p for p in index.pods() if p.name == "web-1-0")

    def web_1_0(ready):
        index.apply(POD, "MODIFIED", f.pod("web-1-0", owner=("ReplicaSet", "web-1"), node_name="o1",
                                          uid=late.uid, labels={"app": "web"}, ready=ready))

    web_1_0(ready=False)
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))
    await drain(controller)
    assert controller.kube.evicted == ["default/web-1-2"]
    web_1_0(ready=True)  # 4 of 5 Ready, the most seen was 5: one is down
    await drain(controller)
    assert controller.kube.evicted == ["default/web-1-2"]
    index.apply(POD, "ADDED", f.pod("web-1-r1", owner=("ReplicaSet", "web-1"), node_name="o2", labels={"app": "web"}))
    await drain(controller)  # replaced: the next goes
    assert controller.kube.evicted == ["default/web-1-2", "default/web-1-3"]


async def test_a_new_leader_keeps_the_notice_as_first_seen():
    controller, index = setup()
    clock = [1000.0]
    index.clock = controller.drain.clock = lambda: clock[0]
    deploy(index, "web", ["o1", "s1", "s1"])
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))
    clock[0] = 1080.0  # the old leader evicted nothing (it died); its successor has 5 s left, not 85
    successor = Controller(controller.kube, index, controller.rebalance.floors, Settings(), controller.metrics)
    successor.drain.clock = lambda: clock[0]
    await drain(successor)  # less than one start-up left: one wave, everything
    assert sorted(controller.kube.evicted) == ["default/web-1-1", "default/web-1-2"]


async def test_a_paced_wave_keeps_within_the_pdb_and_a_refusal_retries_once_it_allows(monkeypatch):
    monkeypatch.setattr(writer_module, "RETRY_INITIAL", 60.0)  # plain backoff: a minute or more
    controller, index, clock = paced(["o1"] + ["s1"] * 6, kube=RecordingKube(refuse=1))  # 85 s, 30 s: waves of 2

    def pdb_allows(count):
        pdb = f.pdb("web", {"app": "web"}, max_unavailable=1)
        pdb["status"] = {"disruptionsAllowed": count}
        index.apply(PDB, "MODIFIED", pdb)

    pdb_allows(1)
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", taints=[ITN]))
    await controller.drain.once()  # a wave of 1, as the PDB allows; the API refuses it once
    pdb_allows(0)
    await asyncio.sleep(1.0)
    assert controller.kube.evicted == []
    pdb_allows(1)  # the PDB allows again: retried now, not a minute later
    await asyncio.wait_for(evictions_done(controller), 5)
    assert controller.kube.evicted == ["default/web-1-1"]


async def test_a_drain_at_once_takes_workloads_in_turn():
    # Evictions queue behind --eviction-concurrency: taking them workload by workload in
    # turn spreads the loss instead of emptying one workload first.
    controller, index = setup()
    deploy(index, "web", ["s1", "s1", "s1"])
    deploy(index, "api", ["s1", "s1", "s1"])
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", unschedulable=True))
    await drain(controller)
    owners = [name.split("/")[1].split("-")[0] for name in controller.kube.evicted]
    assert owners in (["web", "api"] * 3, ["api", "web"] * 3), owners
