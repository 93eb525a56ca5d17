"""The API layer against a scripted API server: paths, bodies, the watch stream format,
and every failure arriving as an ApiError."""

import aiohttp
import pytest

from spot_extender.api import (
    ConfigError,
    Gone,
    Kube,
    ObjectRef,
    Resource,
    StatusError,
    TransportError,
    WatchIdle,
    objects,
)
from spot_extender.api.kinds import BY_NAME
from tests.fakeapi import FakeApi
from tests.helpers.ports import free_port

NODES = Resource("", "v1", "nodes")
PODS = Resource("", "v1", "pods")


async def collect(kube, resource, idle_timeout=5):
    return [e async for e in kube.watch(resource, "1", 60, connect_timeout=5, idle_timeout=idle_timeout)]


@pytest.mark.parametrize(
    "resource, args, path",
    [
        (NODES, (), "/api/v1/nodes"),
        (PODS, ("ns", "p", "eviction"), "/api/v1/namespaces/ns/pods/p/eviction"),
        (Resource("apps", "v1", "deployments"), (), "/apis/apps/v1/deployments"),
        (Resource("coordination.k8s.io", "v1", "leases"), ("kube-system", "l"),
         "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l"),
        (Resource("argoproj.io", "v1alpha1", "rollouts"), ("ns",), "/apis/argoproj.io/v1alpha1/namespaces/ns/rollouts"),
    ],
)
def test_paths(resource, args, path):
    assert resource.path(*args) == path


def test_an_event_names_the_real_api_version_of_what_it_is_about():
    rollout = BY_NAME["Rollout"].resource.api_version
    body = objects.event(ObjectRef(rollout, "Rollout", "ns", "web"), "Normal", "SkippedFloorRepair", "x" * 5000)
    assert body["involvedObject"] == {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "namespace": "ns",
                                      "name": "web"}
    assert len(body["message"]) == objects.EVENT_MESSAGE_LIMIT
    assert body["metadata"] == {"generateName": "web.", "namespace": "ns"}


async def test_list_pages_through_continue_tokens():
    async with FakeApi() as api:
        api.items["/api/v1/nodes"] = [{"metadata": {"name": f"n{i}"}} for i in range(5)]
        kube = api.kube()
        items, version = [], None
        async for page, version in kube.pages(NODES, page_size=2, timeout=5):
            items += page
        await kube.close()
    assert [i["metadata"]["name"] for i in items] == ["n0", "n1", "n2", "n3", "n4"]
    assert version == "100"
    assert [q.get("continue") for _, q in api.requests] == [None, "2", "4"]


async def test_pages_come_one_at_a_time_with_the_version_on_the_last():
    async with FakeApi() as api:
        api.items["/api/v1/nodes"] = [{"metadata": {"name": f"n{i}"}} for i in range(5)]
        kube = api.kube()
        pages = []
        async for items, version in kube.pages(NODES, page_size=2, timeout=5):
            pages.append(([i["metadata"]["name"] for i in items], version, len(api.requests)))
        await kube.close()
    # each page is handed over before the next is asked for
    assert pages == [(["n0", "n1"], None, 1), (["n2", "n3"], None, 2), (["n4"], "100", 3)]


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
        events = await collect(kube, NODES)
        await kube.close()
    assert [t for t, _ in events] == ["ADDED", "BOOKMARK", "MODIFIED"]
    assert events[0][1]["metadata"]["name"] == "a"
    assert len(events[2][1]["metadata"]["annotations"]["x"]) == 400_000
    watch = next(q for _, q in api.requests if q.get("watch"))
    assert (watch["resourceVersion"], watch["allowWatchBookmarks"], watch["timeoutSeconds"]) == ("1", "true", "60")


async def test_error_statuses_and_error_events_raise_and_410_is_gone():
    async with FakeApi() as api:
        api.script_watch("/api/v1/pods", ("status", 410))
        api.script_watch("/api/v1/pods", ("status", 403))
        api.script_watch("/api/v1/pods", ("event", "ERROR", {"code": 410, "message": "too old resource version"}))
        api.script_watch("/api/v1/pods", ("event", "ERROR", {"code": 500, "message": "boom"}))
        api.list_failures["/api/v1/nodes"] = [500]
        kube = api.kube()
        with pytest.raises(Gone):
            await collect(kube, PODS)
        with pytest.raises(StatusError, match="403"):
            await collect(kube, PODS)
        with pytest.raises(Gone, match="too old"):
            await collect(kube, PODS)
        with pytest.raises(StatusError, match="500: boom"):
            await collect(kube, PODS)
        with pytest.raises(StatusError, match="500: injected") as caught:
            async for _ in kube.pages(NODES, 10, timeout=5):
                pass
        assert caught.value.status == 500
        await kube.close()


async def test_idle_stream_is_watch_idle():
    async with FakeApi() as api:
        api.script_watch("/api/v1/nodes", ("sleep", 5))
        kube = api.kube()
        with pytest.raises(WatchIdle):
            await collect(kube, NODES, idle_timeout=0.3)
        await kube.close()


async def test_undecodable_watch_lines_are_transport_errors():
    async with FakeApi() as api:
        api.script_watch("/api/v1/nodes", ("raw", b"not json\n"))
        kube = api.kube()
        with pytest.raises(TransportError, match="not JSON"):
            await collect(kube, NODES)
        await kube.close()


async def test_a_server_that_hangs_up_is_a_transport_error():
    async with FakeApi() as api:
        api.eviction_script = ["disconnect", 429, 201]
        kube = api.kube()
        with pytest.raises(TransportError) as caught:
            await kube.evict("ns", "p", timeout=5)
        assert isinstance(caught.value.__cause__, aiohttp.ServerDisconnectedError)
        assert caught.value.status is None
        with pytest.raises(StatusError) as refused:
            await kube.evict("ns", "p", timeout=5)
        assert refused.value.status == 429
        await kube.evict("ns", "p", timeout=5)
        await kube.close()
    assert api.evictions == ["ns/p"]


async def test_an_eviction_carries_the_pods_uid_as_a_precondition():
    async with FakeApi() as api:
        kube = api.kube()
        await kube.evict("ns", "db-2", timeout=5, uid="uid-of-the-old-db-2")
        await kube.close()
    assert api.eviction_uids == ["uid-of-the-old-db-2"]


async def test_nothing_listening_is_a_transport_error():
    from kubernetes_asyncio import client

    kube = Kube(client.ApiClient(client.Configuration(host=f"http://127.0.0.1:{free_port()}")))
    with pytest.raises(TransportError):
        await kube.get_lease("ns", "l", timeout=2)
    await kube.close()


@pytest.mark.parametrize("content, cause", [
    (None, "no such file"),
    ("", "the file is empty"),
    ("apiVersion: v1\n", "not a kubeconfig (no list of contexts)"),
    ("contexts: [{name: a}]\n", "no current-context, and no --context given"),
    ("contexts: [{name: a}]\ncurrent-context: b\n", "no context named 'b' (it has a)"),
    ("{[", "not YAML at line 1, column 3: "),
])
def test_a_kubeconfig_that_cannot_work_is_named_with_its_cause(tmp_path, content, cause, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    path = tmp_path / "kubeconfig"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as raised:
        Kube(None, str(path)).check_config()
    assert str(raised.value).startswith(f"kubeconfig {path}: {cause}"), raised.value
    assert "\n" not in str(raised.value)  # one line, as every error the CLI prints


def test_a_kubeconfig_with_its_context_passes(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    path = tmp_path / "kubeconfig"
    path.write_text("contexts: [{name: a}, {name: b}]\ncurrent-context: a\n")
    Kube(None, str(path)).check_config()
    Kube(None, str(path), "b").check_config()
