"""What Controller (app/controller/run.py) itself does: it starts once the index is synced
and every watch connected, wakes its loops early on index changes, and answers state_of
only while it runs. Each loop has a file of its own (test_drain.py, test_rebalance.py,
test_fallback.py, test_deletion_cost.py, test_writer.py); the real API server is exercised
by tests/e2e/test_controller.py."""

import asyncio

from spot_extender.assembly import build
from spot_extender.cluster.index import KIND_NAMES, NODE, PDB, POD
from spot_extender.controller import Controller
from spot_extender.core.settings import Settings
from tests.helpers import objects as f
from tests.helpers.controller import RecordingKube, deploy, setup
from tests.helpers.waiting import eventually


async def test_a_new_leader_waits_until_every_watch_is_connected():
    controller, index = setup()
    deploy(index, "web", ["s1"], annotations={"spot-extender.io/placement": "spot"})
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", unschedulable=True))
    index.freshness.down(POD)  # the Pod watch has not reconnected yet
    running = asyncio.create_task(controller.run())
    await asyncio.sleep(0.3)
    assert controller.kube.evicted == []  # nothing done from a stale view
    index.freshness.up(POD)
    for _ in range(100):
        if controller.kube.evicted:
            break
        await asyncio.sleep(0.02)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert controller.kube.evicted == ["default/web-1-0"]


async def stopped(running: asyncio.Task) -> None:
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)


async def test_state_of_answers_only_while_the_controller_runs():
    controller, index = setup()
    deploy(index, "web", ["o1", "o2"])
    key = next(w.key for w in index.top_level_workloads())
    assert controller.state_of(key) is None  # not started: not the leader here
    running = asyncio.create_task(controller.run())
    await eventually(lambda: controller.state_of(key) is not None)
    assert controller.state_of(key) == controller.rebalance.state_of(key)
    await stopped(running)
    assert controller.state_of(key) is None and not controller.running


async def test_the_controller_waits_until_every_kind_has_been_listed_once():
    settings = Settings(move_cooldown=0)
    parts = build(settings)
    index = parts.index
    kube = RecordingKube()
    kube.index = index
    controller = Controller(kube, index, parts.floors, settings, parts.metrics)
    for kind in KIND_NAMES:
        if kind != PDB:  # the PodDisruptionBudgets are not listed yet: one could forbid any eviction
            index.replace(kind, [])
    for name, cls in (("s1", "spot"), ("o1", "on-demand")):
        index.apply(NODE, "ADDED", f.node(name, cls))
    deploy(index, "web", ["s1"], annotations={"spot-extender.io/placement": "spot"})
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", unschedulable=True))
    running = asyncio.create_task(controller.run())
    await asyncio.sleep(0.3)
    assert not controller.running and kube.evicted == []  # nothing done from a half-listed cluster
    index.replace(PDB, [])
    await eventually(lambda: kube.evicted)
    await stopped(running)
    assert kube.evicted == ["default/web-1-0"]


async def test_an_index_change_wakes_a_loop_before_its_period_is_up():
    controller, index = setup()
    controller.drain.period = 3600.0  # only a change can bring its next pass within the test
    passes = []
    once = controller.drain.once

    async def counted():
        passes.append(asyncio.get_running_loop().time())
        await once()

    controller.drain.once = counted
    deploy(index, "web", ["s1"], annotations={"spot-extender.io/placement": "spot"})
    running = asyncio.create_task(controller.run())
    await eventually(lambda: passes)
    await asyncio.sleep(0.3)  # well past the drain's gap: it waits for its period or a change
    assert len(passes) == 1 and controller.kube.evicted == []
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", unschedulable=True))
    await eventually(lambda: controller.kube.evicted)
    await stopped(running)
    assert len(passes) >= 2 and controller.kube.evicted == ["default/web-1-0"]


async def test_each_term_as_leader_starts_with_fresh_loops():
    controller, index = setup()
    deploy(index, "web", ["o1", "o2"])
    running = asyncio.create_task(controller.run())
    await eventually(lambda: controller.running)
    first = controller.rebalance
    key = next(w.key for w in index.top_level_workloads())
    first.reported_skips[key] = "a skip from the last term"
    await stopped(running)
    running = asyncio.create_task(controller.run())  # leadership won again, after another replica led
    await eventually(lambda: controller.running)
    assert controller.rebalance is not first and key not in controller.rebalance.reported_skips
    assert controller.rebalance in controller.loops and first not in controller.loops
    await stopped(running)
