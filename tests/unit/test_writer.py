"""The Writer (app/controller/writer.py) under the loops: evictions retried while a PDB
refuses, the pod's uid as precondition (a replaced pod counts as gone, not retried), a
server that hangs up logged, counted and retried, and dry-run writing nothing (no
eviction, Event or patch; the same test has the drain loop switched off)."""

import asyncio
import logging

from spot_extender.cluster.index import NODE, POD
from tests.fakeapi import FakeApi
from tests.helpers import objects as f
from tests.helpers.controller import RecordingKube, ReplacedKube, _uid, deploy, drain, setup
from tests.helpers.metrics import registry_value as sample


async def test_drain_retries_while_a_pdb_refuses():
    controller, index = setup(kube=RecordingKube(refuse=2))
    deploy(index, "web", ["s1"])
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", unschedulable=True))
    await asyncio.wait_for(drain(controller), 10)
    assert controller.kube.evicted == ["default/web-1-0"]
    assert sample(controller.metrics, "spot_extender_evictions_total", cause="reclaim", result="blocked") == 2


async def test_an_eviction_names_the_pods_uid_and_a_replaced_pod_counts_as_gone_not_retried():
    controller, index = setup(kube=ReplacedKube())
    deploy(index, "web", ["s1"])
    uid = _uid(index, "web-1-0")
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", unschedulable=True))
    await asyncio.wait_for(drain(controller), 10)
    assert controller.kube.attempts == [("web-1-0", uid)]
    assert sample(controller.metrics, "spot_extender_evictions_total", cause="reclaim", result="gone") == 1


async def test_drain_can_be_switched_off_and_dry_run_evicts_nothing():
    for enabled in (True, False):
        controller, index = setup(drain=enabled)
        deploy(index, "web", ["s1"], annotations={"spot-extender.io/placement": "spot"})  # no floor to repair
        index.apply(NODE, "MODIFIED", f.node("s1", "spot", unschedulable=True))
        running = asyncio.create_task(controller.run())
        await asyncio.sleep(0.3)
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        assert controller.kube.evicted == (["default/web-1-0"] if enabled else [])
    dry, index = setup(dry_run=True)
    deploy(index, "web", ["s1"])
    index.apply(NODE, "MODIFIED", f.node("s1", "spot", unschedulable=True))
    await drain(dry)
    await dry.rebalance.once()
    await dry.deletion_cost.once()
    assert dry.kube.evicted == [] and dry.kube.events == [] and dry.kube.annotated == {}
    assert sample(dry.metrics, "spot_extender_evictions_total", cause="reclaim", result="dry-run") == 1


async def test_a_server_that_hangs_up_mid_eviction_is_logged_counted_and_retried(caplog):
    async with FakeApi() as api:
        api.eviction_script = ["disconnect"]
        kube = api.kube()
        controller, index = setup(kube=kube)
        deploy(index, "web", ["s1"])
        index.apply(NODE, "MODIFIED", f.node("s1", "spot", unschedulable=True))
        with caplog.at_level(logging.WARNING, logger="spot_extender"):
            await controller.drain.once()
            evicting = list(controller.drain.evicting.values())
            for _ in range(100):  # the first try hangs up, the retry after a backoff goes through
                if api.evictions:
                    break
                await asyncio.sleep(0.05)
            # The drain holds the pod until the watch shows it leaving, as the API server would.
            pod = next(iter(index.pods()))
            index.apply(POD, "MODIFIED", f.pod(pod.name, owner=("ReplicaSet", "web-1"), node_name="s1",
                                              uid=pod.uid, deleting=True))
            await asyncio.wait_for(asyncio.gather(*evicting, return_exceptions=True), 5)
        await kube.close()
    assert api.evictions == ["default/web-1-0"]
    failed = [r for r in caplog.records if r.getMessage() == "eviction failed"]
    assert failed and "ServerDisconnectedError" in failed[0].error
    assert sample(controller.metrics, "spot_extender_evictions_total", cause="reclaim", result="error") == 1
    assert sample(controller.metrics, "spot_extender_evictions_total", cause="reclaim", result="evicted") == 1
    assert all(not t.cancelled() and t.exception() is None for t in evicting)
