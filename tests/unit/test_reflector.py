import asyncio

from spot_extender.cli import build
from spot_extender.index import NODE
from spot_extender.reflector import Reflector, Resource
from spot_extender.settings import Settings
from tests import factories as f
from tests.fakeapi import FakeApi

NODES = Resource(NODE, "/api/v1/nodes")
SETTINGS = Settings(list_page_size=2, watch_timeout=30, watch_idle_timeout=5, backoff_max=0.05)


async def eventually(check, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def restarts(metrics, reason):
    return metrics.watch_restarts.labels(NODE, reason)._value.get()


async def run_reflector(api):
    index, _, metrics = build(SETTINGS)
    kube = api.kube()
    reflector = Reflector(kube, NODES, index, SETTINGS, metrics)
    task = asyncio.create_task(reflector.run())
    return index, metrics, reflector, task, kube


async def stop(task, kube):
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await kube.close()


async def test_paginated_list_then_watch_events_and_bookmarks():
    async with FakeApi() as api:
        api.items[NODES.path] = [f.node(f"n{i}") for i in range(5)]
        extra = f.node("n9", "on-demand")
        extra["metadata"]["resourceVersion"] = "101"
        api.script_watch(
            NODES.path,
            ("event", "ADDED", extra),
            ("event", "DELETED", f.node("n0")),
            ("event", "BOOKMARK", {"metadata": {"resourceVersion": "150"}}),
        )
        index, metrics, reflector, task, kube = await run_reflector(api)
        await eventually(lambda: "n9" in index.nodes and "n0" not in index.nodes)
        await eventually(lambda: reflector.resource_version == "150")
        await stop(task, kube)
    lists = [q for p, q in api.requests if "watch" not in q]
    assert [q.get("continue") for q in lists] == [None, "2", "4"]  # three pages of two
    first_watch = next(q for p, q in api.requests if q.get("watch"))
    assert first_watch["resourceVersion"] == "100"
    assert first_watch["allowWatchBookmarks"] == "true"
    assert 30 <= int(first_watch["timeoutSeconds"]) <= 36
    assert NODE in index.synced


async def test_expired_resource_version_relists():
    async with FakeApi() as api:
        api.items[NODES.path] = [f.node("a")]
        api.script_watch(NODES.path, ("event", "ERROR", {"kind": "Status", "code": 410, "message": "too old"}))
        index, metrics, reflector, task, kube = await run_reflector(api)
        await eventually(lambda: restarts(metrics, "gone") == 1)
        api.items[NODES.path] = [f.node("b")]  # what changed while we were away
        await eventually(lambda: set(index.nodes) == {"b"})
        await stop(task, kube)


async def test_errors_are_counted_backed_off_and_recovered():
    async with FakeApi() as api:
        api.list_failures[NODES.path] = [500, 503]
        api.items[NODES.path] = [f.node("a")]
        api.script_watch(NODES.path, ("status", 500))
        index, metrics, reflector, task, kube = await run_reflector(api)
        await eventually(lambda: NODE in index.synced)
        await eventually(lambda: restarts(metrics, "error") >= 3)
        assert metrics.loop_errors.labels(f"watch-{NODE}")._value.get() >= 3
        assert not task.done()
        await stop(task, kube)


async def test_stream_closed_at_once_is_backed_off_not_spun():
    async with FakeApi() as api:
        api.items[NODES.path] = [f.node("a")]
        for _ in range(3):
            api.script_watch(NODES.path, ("end",))
        index, metrics, reflector, task, kube = await run_reflector(api)
        await eventually(lambda: restarts(metrics, "closed-early") == 3)
        await eventually(lambda: len([q for _, q in api.requests if q.get("watch")]) == 4)
        await asyncio.sleep(0.2)
        await stop(task, kube)
    # three closed early, the fourth stays open: no busy loop
    assert len([q for _, q in api.requests if q.get("watch")]) == 4
    assert restarts(metrics, "closed-early") == 3
