import pytest

from spot_extender.kube import Gone, KubeError
from tests.fakeapi import FakeApi


async def collect(kube, path, **params):
    return [e async for e in kube.watch(path, params, connect_timeout=5, idle_timeout=5)]


async def test_watch_splits_lines_across_chunks_and_huge_objects():
    big = {"metadata": {"name": "big", "annotations": {"x": "y" * 400_000}}}
    async with FakeApi() as api:
        api.script_watch(
            "/api/v1/nodes",
            ("raw", b'{"type":"ADDED","object":{"metadata":{"na'),
            ("raw", b'me":"a"}}}\n{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"7"}}}\n\n'),
            ("event", "MODIFIED", big),
        )
        kube = api.kube()
        events = await collect(kube, "/api/v1/nodes")
        await kube.close()
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK", "MODIFIED"]
    assert events[0]["object"]["metadata"]["name"] == "a"
    assert len(events[2]["object"]["metadata"]["annotations"]["x"]) == 400_000


async def test_non_2xx_raises_and_410_is_gone():
    async with FakeApi() as api:
        api.script_watch("/api/v1/pods", ("status", 410))
        api.script_watch("/api/v1/pods", ("status", 403))
        api.list_failures["/api/v1/nodes"] = [500]
        kube = api.kube()
        with pytest.raises(Gone):
            await collect(kube, "/api/v1/pods")
        with pytest.raises(KubeError, match="403"):
            await collect(kube, "/api/v1/pods")
        with pytest.raises(KubeError, match="500: injected"):
            await kube.get_json("/api/v1/nodes", {}, timeout=5)
        await kube.close()


async def test_idle_stream_times_out():
    async with FakeApi() as api:
        api.script_watch("/api/v1/nodes", ("sleep", 5))
        kube = api.kube()
        with pytest.raises(TimeoutError):
            [e async for e in kube.watch("/api/v1/nodes", {}, connect_timeout=5, idle_timeout=0.3)]
        await kube.close()
