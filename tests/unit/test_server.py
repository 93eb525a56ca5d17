import asyncio

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from spot_extender.assembly import build
from spot_extender.cluster.index import KIND_NAMES, NODE
from spot_extender.cluster.index import POD as POD_KIND
from spot_extender.core.settings import Settings
from spot_extender.serving.scrapes import SharedScrapes
from spot_extender.serving.server import build_app
from tests.helpers import objects as f


@pytest.fixture
async def client():
    settings = Settings(max_body_bytes=4096, filter_path="/scheduler/filter", prioritize_path="/scheduler/prioritize")
    parts = build(settings)
    supervisor = parts.supervisor
    app = build_app(parts.extender, parts.webhook, parts.index, parts.status, parts.fleet, supervisor, parts.metrics,
                    settings)
    async with TestClient(TestServer(app)) as c:
        c.index, c.status, c.supervisor = parts.index, parts.status, supervisor
        yield c
        await supervisor.stop()


def sync(index):
    for kind in KIND_NAMES:
        index.replace(kind, [])
    index.apply(NODE, "ADDED", f.node("s1", "spot"))
    index.apply(NODE, "ADDED", f.node("o1", "on-demand"))


POD = {"metadata": {"name": "web-1-a", "namespace": "default", "uid": "u1",
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "controller": True}]}}


async def test_no_fleet_series_while_syncing(client):
    text = await (await client.get("/metrics")).text()
    assert "spot_extender_decisions_total" in text and "spot_extender_spot_share" not in text


async def test_readyz_waits_for_sync(client):
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert "Pod" in (await resp.json())["waiting_for"]
    sync(client.index)
    assert (await client.get("/readyz")).status == 200
    assert (await client.get("/healthz")).status == 200


async def test_filter_and_prioritize_on_configured_paths(client):
    sync(client.index)
    body = orjson.dumps({"Pod": POD, "NodeNames": ["s1", "o1"]})
    resp = await client.post("/scheduler/filter", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 200
    assert (await resp.json())["NodeNames"] == ["o1"]
    resp = await client.post("/scheduler/prioritize", data=body)
    assert await resp.json() == [{"Host": "s1", "Score": 3}, {"Host": "o1", "Score": 10}]


@pytest.mark.parametrize(
    "path, data, status, message",
    [
        ("/scheduler/filter", b"{nope", 400, "not valid JSON"),
        ("/scheduler/filter", b'{"Pod": 1, "NodeNames": []}', 400, "Pod is missing"),
        ("/scheduler/prioritize", b'{"Pod": {"metadata": {}}}', 400, "one of NodeNames or Nodes"),
        ("/scheduler/filter", b"x" * 5000, 413, "Too Large"),
    ],
)
async def test_bad_input_gets_json_4xx_and_service_stays_healthy(client, path, data, status, message):
    sync(client.index)
    resp = await client.post(path, data=data)
    assert resp.status == status
    assert message in (await resp.json())["error"]
    assert (await client.get("/healthz")).status == 200
    ok = await client.post(path, data=orjson.dumps({"Pod": POD, "NodeNames": ["o1"]}))
    assert ok.status == 200


async def test_wrong_method_and_path_are_json_errors(client):
    resp = await client.get("/scheduler/filter")
    assert resp.status == 405 and "error" in await resp.json()
    resp = await client.get("/nope")
    assert resp.status == 404 and "error" in await resp.json()


async def test_internal_failure_becomes_protocol_error(client, monkeypatch):
    sync(client.index)

    def boom(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(client.index, "counts", boom)
    body = orjson.dumps({"Pod": POD, "NodeNames": ["s1"]})
    resp = await client.post("/scheduler/filter", data=body)
    assert resp.status == 200 and (await resp.json())["Error"]
    resp = await client.post("/scheduler/prioritize", data=body)
    assert resp.status == 500
    assert (await client.get("/healthz")).status == 200


async def test_metrics_and_debug_view(client):
    sync(client.index)
    client.index.apply("Deployment", "ADDED", f.deployment("web", 3))
    client.index.apply("ReplicaSet", "ADDED", f.replicaset("web-1", "web"))
    client.index.apply(POD_KIND, "ADDED", POD)  # Pending: the watch shows it before the scheduler asks
    await client.post("/scheduler/filter", data=orjson.dumps({"Pod": POD, "NodeNames": ["s1"]}))
    await client.post("/scheduler/filter", data=b"bad")
    text = await (await client.get("/metrics")).text()
    assert 'spot_extender_request_duration_seconds_count{verb="filter"} 1.0' in text
    assert 'spot_extender_floor_holds_total{result="started"} 1.0' in text  # o1 could take it: held
    assert 'spot_extender_bad_requests_total{path="filter",status="400"} 1.0' in text
    assert 'spot_extender_index_objects{kind="Node"} 2.0' in text
    # Fleet series come from the same workload states as /debug/workloads.
    assert 'spot_extender_workload_floor_met{kind="Deployment",namespace="default",workload="web"} 0.0' in text
    assert "spot_extender_workloads 1.0" in text
    assert "spot_extender_spot_share 0.0" in text  # R - k = 2 allowed on spot, none there
    view = await (await client.get("/debug/workloads")).json()
    assert view["workloads"] == [
        {"kind": "Deployment", "namespace": "default", "name": "web", "replicas": 3, "floor": 1,
         "floorSource": "default", "floorClamp": None, "countedGroup": "ReplicaSet/web-1", "onDemand": 0, "spot": 0,
         "inFlight": 0, "floorRolePods": 0, "spotRolePods": 0, "floorFallback": None, "spotSeek": None, "floorMet": False, "controller": None,
         "surgePods": 0, "surgeReady": 0}
    ]


async def test_healthz_names_a_supervised_task_that_stopped(client):
    assert (await client.get("/healthz")).status == 200
    task = client.supervisor.start("forever", lambda: asyncio.sleep(3600))
    task.cancel()  # only cancellation ends a supervised task
    await asyncio.sleep(0)
    resp = await client.get("/healthz")
    assert resp.status == 500 and (await resp.json())["stopped"] == ["forever"]


class Elector:
    is_leader = True


async def test_debug_workloads_shows_leadership_now_and_workloads_at_most_a_second_old(client):
    clock = [100.0]
    client.status.clock = lambda: clock[0]
    # Elected, but not leading yet.
    assert await (await client.get("/debug/workloads")).json() == {"leader": False, "workloads": []}
    client.status.leadership = Elector()
    sync(client.index)
    client.index.apply("Deployment", "ADDED", f.deployment("web", 3))
    # Leadership is read fresh; the workloads come from the document of a moment ago.
    assert await (await client.get("/debug/workloads")).json() == {"leader": True, "workloads": []}
    clock[0] += 1.5
    assert [w["name"] for w in (await (await client.get("/debug/workloads")).json())["workloads"]] == ["web"]


async def test_readyz_is_not_ready_while_a_watch_is_down_past_the_idle_timeout(client):
    sync(client.index)
    clock = [1000.0]
    client.index.freshness.clock = lambda: clock[0]
    client.index.freshness.down("Node")
    clock[0] += 89  # the fixture's watch idle timeout is the default 90 s
    assert (await client.get("/readyz")).status == 200
    clock[0] += 2
    resp = await client.get("/readyz")
    assert resp.status == 503 and await resp.json() == {"status": "stale", "watches_down": ["Node"]}
    assert 'spot_extender_watch_down_seconds{kind="Node"} 91.0' in await (await client.get("/metrics")).text()
    # The verbs still answer from the last index.
    ok = await client.post("/scheduler/filter", data=orjson.dumps({"Pod": POD, "NodeNames": ["o1"]}))
    assert ok.status == 200 and (await ok.json())["NodeNames"] == ["o1"]
    client.index.freshness.up("Node")
    assert (await client.get("/readyz")).status == 200


@pytest.mark.parametrize(("flags", "per_workload"), [
    ({}, True),
    ({"tls_client_ca_file": "ca.pem"}, False),  # /debug/workloads is guarded: keep its inventory off /metrics
    ({"tls_client_ca_file": "ca.pem", "workload_metrics": "true"}, True),
    ({"workload_metrics": "false"}, False),
])
def test_workload_metrics_auto_follows_the_client_ca(flags, per_workload):
    settings = Settings.__new__(Settings)  # no files to check: only the two fields matter here
    object.__setattr__(settings, "tls_client_ca_file", flags.get("tls_client_ca_file", ""))
    object.__setattr__(settings, "workload_metrics", flags.get("workload_metrics", "auto"))
    assert settings.per_workload_metrics is per_workload


async def test_metrics_still_served_when_the_fleet_states_fail(client, monkeypatch):
    sync(client.index)

    async def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(client.status, "states", broken)
    resp = await client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert resp.status == 200
    text = await resp.text()  # aiohttp undoes the gzip
    assert 'spot_extender_loop_errors_total{loop="fleet-metrics"} 1.0' in text
    assert 'spot_extender_index_objects{kind="Node"} 2.0' in text


async def test_a_flood_of_scrapes_costs_one_encode_and_each_gets_the_answer(client, monkeypatch):
    sync(client.index)
    built = []
    states = client.status.states

    async def slow_states():
        built.append(1)
        await asyncio.sleep(0.2)  # an encode long enough for the flood to arrive while it runs
        return await states()

    monkeypatch.setattr(client.status, "states", slow_states)
    responses = await asyncio.gather(*(client.get("/metrics") for _ in range(50)))
    bodies = {await r.text() for r in responses}
    assert all(r.status == 200 for r in responses) and len(bodies) == 1
    assert len(built) == 1, f"{len(built)} encodes for one flood"
    # Another format waits its turn and is encoded once too; a later scrape of a costly
    # encode's format gets its result again (app/serving/scrapes.py).
    openmetrics = {"Accept": "application/openmetrics-text; version=1.0.0"}
    await asyncio.gather(*(client.get("/metrics", headers=openmetrics) for _ in range(10)), client.get("/metrics"))
    assert len(built) == 2


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.mark.parametrize("took, reused_for", [(0.01, 0.0), (0.2, 4.0), (2.0, 10.0)])
async def test_a_costly_encode_is_reused_for_twenty_times_what_it_took_a_cheap_one_never(took, reused_for):
    clock, encodes = Clock(), []

    async def encode():
        encodes.append(clock.now)
        clock.now += took
        return f"body {len(encodes)}".encode()

    scrapes = SharedScrapes(clock)
    assert await scrapes.get("text", encode) == b"body 1"
    clock.now += reused_for - 0.001 if reused_for else 0.0
    expected = b"body 1" if reused_for else b"body 2"
    assert await scrapes.get("text", encode) == expected
    clock.now += 0.002
    assert await scrapes.get("text", encode) == (b"body 2" if reused_for else b"body 3")
    assert await scrapes.get("other-format", encode) != b"body 1"  # per format


def test_aiohttp_runs_with_its_c_parser():
    # Its pure-Python parser is several times slower per call; a wheel without the
    # extension (or AIOHTTP_NO_EXTENSIONS set) would fall back to it silently.
    from aiohttp import http_parser

    assert http_parser.HttpRequestParser is getattr(http_parser, "HttpRequestParserC", None)
