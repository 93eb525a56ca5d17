import asyncio
import logging
import time

from spot_extender.api.kinds import BY_NAME, KIND_NAMES, NODE, ROLLOUT
from spot_extender.assembly import build
from spot_extender.cluster.reflector import Reflector
from spot_extender.core.settings import Settings
from spot_extender.core.supervisor import supervise
from tests.fakeapi import FakeApi
from tests.helpers import objects as f
from tests.helpers.metrics import registry_value as sample
from tests.helpers.waiting import eventually

NODES = BY_NAME[NODE]
NODES_PATH = NODES.resource.path()
SETTINGS = Settings(list_page_size=2, watch_timeout=30, watch_idle_timeout=5, backoff_max=0.05,
                    optional_kind_recheck=0.2)




def restarts(metrics, reason, kind=NODE):
    return sample(metrics, "spot_extender_watch_restarts_total", kind=kind, reason=reason)


async def run_reflector(api, kind=NODES):
    """The reflector as the process runs it: under the supervisor."""
    parts = build(SETTINGS)
    kube = api.kube()
    reflector = Reflector(kube, kind, parts.index, SETTINGS, parts.metrics)
    task = asyncio.create_task(supervise(f"watch-{kind.name}", reflector.run, parts.metrics, SETTINGS.backoff_max))
    return parts.index, parts.metrics, reflector, task, kube


async def stop(task, kube):
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await kube.close()


async def test_paginated_list_then_watch_events_and_bookmarks():
    async with FakeApi() as api:
        api.items[NODES_PATH] = [f.node(f"n{i}") for i in range(5)]
        extra = f.node("n9", "on-demand")
        extra["metadata"]["resourceVersion"] = "101"
        api.script_watch(
            NODES_PATH,
            ("event", "ADDED", extra),
            ("event", "DELETED", f.node("n0")),
            ("event", "BOOKMARK", {"metadata": {"resourceVersion": "150"}}),
        )
        index, metrics, reflector, task, kube = await run_reflector(api)
        await eventually(lambda: index.node("n9") is not None and index.node("n0") is None)
        await eventually(lambda: reflector.resource_version == "150")
        await stop(task, kube)
    lists = [q for p, q in api.requests if "watch" not in q]
    assert [q.get("continue") for q in lists] == [None, "2", "4"]  # three pages of two
    first_watch = next(q for p, q in api.requests if q.get("watch"))
    assert first_watch["resourceVersion"] == "100"
    assert first_watch["allowWatchBookmarks"] == "true"
    assert 30 <= int(first_watch["timeoutSeconds"]) <= 36
    assert NODE not in index.unsynced()


async def test_expired_resource_version_relists():
    async with FakeApi() as api:
        api.items[NODES_PATH] = [f.node("a")]
        api.script_watch(NODES_PATH, ("sleep", 0.3),
                         ("event", "ERROR", {"kind": "Status", "code": 410, "message": "too old"}))
        index, metrics, reflector, task, kube = await run_reflector(api)
        await eventually(lambda: index.node("a") is not None)
        api.items[NODES_PATH] = [f.node("b")]  # what changed while we were away
        await eventually(lambda: restarts(metrics, "gone") == 1)
        await eventually(lambda: set(index.node_names()) == {"b"})
        # A 410 is routine: listed again at once, not backed off as a failure.
        assert sample(metrics, "spot_extender_loop_errors_total", loop=f"watch-{NODE}") == 0
        await stop(task, kube)


async def test_errors_are_counted_backed_off_and_recovered():
    async with FakeApi() as api:
        api.list_failures[NODES_PATH] = [500, 503]
        api.items[NODES_PATH] = [f.node("a")]
        api.script_watch(NODES_PATH, ("status", 500))
        index, metrics, reflector, task, kube = await run_reflector(api)
        await eventually(lambda: NODE not in index.unsynced())
        await eventually(lambda: restarts(metrics, "error") >= 3)
        assert sample(metrics, "spot_extender_loop_errors_total", loop=f"watch-{NODE}") >= 3
        assert not task.done()
        await stop(task, kube)


async def test_stream_closed_at_once_is_backed_off_not_spun():
    async with FakeApi() as api:
        api.items[NODES_PATH] = [f.node("a")]
        for _ in range(3):
            api.script_watch(NODES_PATH, ("end",))
        index, metrics, reflector, task, kube = await run_reflector(api)
        await eventually(lambda: restarts(metrics, "closed-early") == 3)
        await eventually(lambda: len([q for _, q in api.requests if q.get("watch")]) == 4)
        await asyncio.sleep(0.2)
        await stop(task, kube)
    # three closed early, the fourth stays open: no busy loop
    assert len([q for _, q in api.requests if q.get("watch")]) == 4
    assert restarts(metrics, "closed-early") == 3


async def test_a_second_gone_in_a_row_without_events_is_backed_off():
    async with FakeApi() as api:
        api.items[NODES_PATH] = [f.node("a")]
        for _ in range(2):
            api.script_watch(NODES_PATH, ("event", "ERROR", {"kind": "Status", "code": 410, "message": "too old"}))
        index, metrics, reflector, task, kube = await run_reflector(api)
        await eventually(lambda: restarts(metrics, "gone") == 2)
        await eventually(lambda: sample(metrics, "spot_extender_loop_errors_total", loop=f"watch-{NODE}") == 1)
        await eventually(lambda: len([q for _, q in api.requests if "watch" not in q]) == 3)  # listed again after
        await stop(task, kube)


async def test_an_optional_kind_that_is_not_served_is_skipped_once_and_found_later(caplog):
    rollouts = BY_NAME[ROLLOUT]
    path = rollouts.resource.path()
    async with FakeApi() as api:
        api.list_failures[path] = [404, 404, 404]
        with caplog.at_level(logging.INFO, logger="spot_extender"):
            index, metrics, reflector, task, kube = await run_reflector(api, rollouts)
            await eventually(lambda: ROLLOUT not in index.unsynced())
            for kind in KIND_NAMES:  # everything else listed: the absent kind holds nothing up
                if kind != ROLLOUT:
                    index.replace(kind, [])
            assert index.ready
            api.items[path] = [{"metadata": {"name": "web", "namespace": "ns"}, "spec": {"replicas": 3}}]
            await eventually(lambda: index.sizes()[ROLLOUT] == 1, timeout=5)
            await stop(task, kube)
    skipped = [r for r in caplog.records if r.getMessage() == "optional kind not served; skipped"]
    assert len(skipped) == 1 and skipped[0].kind == ROLLOUT
    assert sample(metrics, "spot_extender_loop_errors_total", loop=f"watch-{ROLLOUT}") == 0


async def test_a_required_kind_that_is_not_served_is_an_error():
    async with FakeApi() as api:
        api.list_failures[NODES_PATH] = [404]
        api.items[NODES_PATH] = [f.node("a")]
        index, metrics, reflector, task, kube = await run_reflector(api)
        await eventually(lambda: index.node("a") is not None)
        assert sample(metrics, "spot_extender_loop_errors_total", loop=f"watch-{NODE}") == 1
        await stop(task, kube)


async def test_a_failing_watch_marks_the_index_stale_until_events_flow_again():
    async with FakeApi() as api:
        api.items[NODES_PATH] = [f.node("a")]
        api.script_watch(NODES_PATH, ("status", 500))
        api.script_watch(NODES_PATH, ("status", 503))
        extra = f.node("b")
        api.script_watch(NODES_PATH, ("event", "ADDED", extra), ("sleep", 3600))
        index, metrics, reflector, task, kube = await run_reflector(api)
        await eventually(lambda: index.freshness.down_for(NODE) > 0)
        await eventually(lambda: index.node("b") is not None)
        assert index.freshness.down_for(NODE) == 0 and index.freshness.stale(0) == []
        await stop(task, kube)


async def test_the_api_server_returning_pulses_the_watches_awake():
    from spot_extender.cluster.reflector import watch_for_return

    class Flaky:
        """Unreachable for the first probes, then back."""

        def __init__(self):
            self.probes = 0

        async def reachable(self, timeout):
            self.probes += 1
            return self.probes > 3

    parts = build(SETTINGS)
    kube = Flaky()
    returned = asyncio.Event()
    woken = asyncio.create_task(returned.wait())
    probe = asyncio.create_task(watch_for_return(kube, parts.index, returned, period=0.02, timeout=2))
    await asyncio.sleep(0.2)
    assert not woken.done() and kube.probes == 0  # nothing down: no probes
    parts.index.freshness.down(NODE)
    await asyncio.wait_for(woken, 5)
    assert kube.probes == 4  # woken by the first answer after three without
    probe.cancel()
    await asyncio.gather(probe, return_exceptions=True)


async def test_a_watch_down_while_the_api_server_answers_keeps_its_backoff():
    from spot_extender.cluster.reflector import watch_for_return

    async with FakeApi() as api:  # answers every probe: the watch is down for another reason
        parts = build(SETTINGS)
        kube = api.kube()
        returned = asyncio.Event()
        woken = asyncio.create_task(returned.wait())
        parts.index.freshness.down(NODE)
        probe = asyncio.create_task(watch_for_return(kube, parts.index, returned, period=0.02, timeout=2))
        await asyncio.sleep(0.3)
        assert not woken.done()
        assert [p for p, _ in api.requests if p == "/version"]  # it did look
        for task in (probe, woken):
            task.cancel()
        await asyncio.gather(probe, woken, return_exceptions=True)
        await kube.close()


async def test_a_watch_that_opens_counts_as_up_before_any_event():
    async with FakeApi() as api:
        api.items[NODES_PATH] = [f.node("a")]
        api.script_watch(NODES_PATH, ("status", 500))
        api.script_watch(NODES_PATH, ("sleep", 3600))  # accepted, then quiet
        index, metrics, reflector, task, kube = await run_reflector(api)
        await eventually(lambda: index.freshness.down_for(NODE) > 0)
        await eventually(lambda: len([q for _, q in api.requests if q.get("watch")]) == 2)
        await eventually(lambda: index.freshness.stale(0) == [])
        await stop(task, kube)


async def test_a_busy_stream_hands_the_loop_back_between_slices():
    """Events a stream has buffered never suspend it; the reflector yields on its own, so a
    call arriving meanwhile waits about one slice, not for the whole backlog."""
    parts = build(SETTINGS)
    reflector = Reflector(None, NODES, parts.index, SETTINGS, parts.metrics)

    async def buffered_events():
        for i in range(400):
            spin_until = time.perf_counter() + 0.0002  # the work of decoding and applying a large event
            while time.perf_counter() < spin_until:
                pass
            yield "ADDED", f.node(f"n{i}")

    turns = []

    async def other_work():
        while True:
            turns.append(time.perf_counter())
            await asyncio.sleep(0)

    other = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    started = time.perf_counter()
    assert await reflector.absorb(buffered_events())
    ended = time.perf_counter()
    other.cancel()
    await asyncio.gather(other, return_exceptions=True)
    assert len(parts.index.node_names()) == 400
    during = [t for t in turns if started < t < ended]
    # 80 ms of work in slices of about a millisecond: dozens of turns for the other task
    # (none before slices existed); 10 leaves room for a slow machine's longer slices.
    assert len(during) >= 10, len(during)


async def test_while_a_call_is_answered_the_stream_yields_after_every_event():
    parts = build(SETTINGS)
    reflector = Reflector(None, NODES, parts.index, SETTINGS, parts.metrics, parts.answering)

    async def buffered_events():
        for i in range(50):  # cheap events: all of them fit in one slice
            yield "ADDED", f.node(f"n{i}")

    async def turns_while_absorbing() -> int:
        turns = 0
        done = False

        async def other_work():
            nonlocal turns
            while not done:
                turns += 1
                await asyncio.sleep(0)

        other = asyncio.create_task(other_work())
        await asyncio.sleep(0)
        before = turns
        await reflector.absorb(buffered_events())
        done = True
        await other
        return turns - before

    assert await turns_while_absorbing() < 10
    with parts.answering:
        assert await turns_while_absorbing() >= 50
    assert parts.answering.open == 0
