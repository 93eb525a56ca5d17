"""A scripted stand-in for the API server's list and watch endpoints, for unit tests
of the watch client, stored Leases with real optimistic concurrency for the leader
elector, and scripted answers to evictions and Events. The real API server is
exercised by the end-to-end tests."""

from __future__ import annotations

import asyncio
from typing import Callable

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer
from kubernetes_asyncio import client

from spot_extender.api import Kube


class FakeApi:
    def __init__(self):
        self.items: dict[str, list[dict]] = {}
        self.resource_version = "100"
        self.watch_scripts: dict[str, list[list[tuple]]] = {}
        self.requests: list[tuple[str, dict]] = []
        self.list_failures: dict[str, list[int]] = {}
        # Leases: stored objects keyed by (namespace, name), every write bumps resourceVersion.
        self.leases: dict[tuple[str, str], dict] = {}
        self.lease_requests: list[tuple[float, str, str, dict | None]] = []  # (loop time, method, path, body)
        self.lease_failures: list[int] = []  # statuses answered to the next lease requests
        self.lease_hang = False  # lease requests wait until this is cleared or the server closes
        self.lease_delay = 0.0  # seconds every lease request takes to answer
        # Runs just before a write (given its method); kept until it returns True.
        self.before_lease_write: Callable[[str], bool] | None = None
        self._lease_rv = 1000
        # Evictions: answers to the next ones ("disconnect" drops the connection unanswered);
        # once the script runs out, 201.
        self.eviction_script: list[int | str] = []
        self.evictions: list[str] = []  # namespace/name of every eviction answered 201
        self.eviction_uids: list[str] = []  # the uid precondition each of them carried, "" for none
        self.events: list[dict] = []
        self._closing = asyncio.Event()
        app = web.Application()
        app.router.add_post("/api/v1/namespaces/{ns}/pods/{name}/eviction", self.evict)
        app.router.add_post("/api/v1/namespaces/{ns}/events", self.event)
        leases = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"
        app.router.add_post(leases, self.lease_create)
        app.router.add_get(leases + "/{name}", self.lease_get)
        app.router.add_put(leases + "/{name}", self.lease_update)
        app.router.add_get("/{tail:.*}", self.handle)
        self.server = TestServer(app)

    async def __aenter__(self) -> "FakeApi":
        await self.server.start_server()
        return self

    async def __aexit__(self, *exc):
        self._closing.set()
        await self.server.close()

    def kube(self) -> Kube:
        configuration = client.Configuration(host=str(self.server.make_url("")).rstrip("/"))
        return Kube(client.ApiClient(configuration))

    def script_watch(self, path: str, *actions: tuple) -> None:
        """One watch session: ("event", type, obj), ("raw", bytes), ("status", code), ("sleep", s), ("end",)."""
        self.watch_scripts.setdefault(path, []).append(list(actions))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        query = dict(request.query)
        self.requests.append((path, query))
        if query.get("watch") == "true":
            return await self.watch(request, path)
        failures = self.list_failures.get(path)
        if failures:
            return web.json_response({"message": "injected"}, status=failures.pop(0))
        items = self.items.get(path, [])
        start = int(query.get("continue") or 0)
        limit = int(query.get("limit") or len(items) or 1)
        page = items[start : start + limit]
        meta = {"resourceVersion": self.resource_version}
        if start + limit < len(items):
            meta["continue"] = str(start + limit)
        return web.json_response({"items": page, "metadata": meta})

    async def watch(self, request: web.Request, path: str) -> web.StreamResponse:
        scripts = self.watch_scripts.get(path)
        actions = scripts.pop(0) if scripts else [("sleep", 3600)]
        if actions and actions[0][0] == "status":
            return web.json_response({"message": "injected"}, status=actions[0][1])
        response = web.StreamResponse()
        await response.prepare(request)
        for action in actions:
            if action[0] == "event":
                await response.write(orjson.dumps({"type": action[1], "object": action[2]}) + b"\n")
            elif action[0] == "raw":
                await response.write(action[1])
            elif action[0] == "sleep":
                await asyncio.sleep(action[1])
            elif action[0] == "end":
                break
        await response.write_eof()
        return response

    # ---- Evictions and Events -----------------------------------------------------------

    async def evict(self, request: web.Request) -> web.Response:
        answer = self.eviction_script.pop(0) if self.eviction_script else 201
        if answer == "disconnect":
            request.transport.close()  # the client sees the server hang up: ServerDisconnectedError
            await asyncio.sleep(1)
            return web.Response(status=500)
        if answer != 201:
            return _status(answer, "injected")
        body = await request.json()
        self.eviction_uids.append(((body.get("deleteOptions") or {}).get("preconditions") or {}).get("uid", ""))
        self.evictions.append(f"{request.match_info['ns']}/{request.match_info['name']}")
        return web.json_response({"kind": "Status", "status": "Success"}, status=201)

    async def event(self, request: web.Request) -> web.Response:
        self.events.append(await request.json())
        return web.json_response({}, status=201)

    # ---- Leases ------------------------------------------------------------------------

    def lease(self, namespace: str, name: str) -> dict | None:
        return self.leases.get((namespace, name))

    def put_lease(self, namespace: str, name: str, spec: dict) -> dict:
        """Store a lease as another writer would (a new resourceVersion)."""
        lease = {"metadata": {"name": name, "namespace": namespace}, "spec": spec}
        return self._store(namespace, name, lease)

    def _store(self, namespace: str, name: str, lease: dict) -> dict:
        self._lease_rv += 1
        stored = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            **lease,
            "metadata": {
                **lease["metadata"], "namespace": namespace, "name": name, "resourceVersion": str(self._lease_rv)
            },
            # The real server drops nulls (omitempty), so a released holder is absent.
            "spec": {k: v for k, v in (lease.get("spec") or {}).items() if v is not None},
        }
        self.leases[(namespace, name)] = stored
        return stored

    async def _lease_preamble(self, request: web.Request) -> tuple[dict | None, web.Response | None]:
        body = await request.json() if request.can_read_body else None
        loop_time = asyncio.get_running_loop().time()
        self.lease_requests.append((loop_time, request.method, request.path, body))
        await asyncio.sleep(self.lease_delay)
        while self.lease_hang and not self._closing.is_set():
            await asyncio.sleep(0.01)
        if self.lease_failures:
            return body, _status(self.lease_failures.pop(0), "injected")
        if body is not None and request.method in ("POST", "PUT"):
            if self.before_lease_write and self.before_lease_write(request.method):
                self.before_lease_write = None
            duration = (body.get("spec") or {}).get("leaseDurationSeconds")
            if duration is not None and (type(duration) is not int or duration <= 0):
                return body, _status(422, f"leaseDurationSeconds must be a positive integer, got {duration!r}")
        return body, None

    async def lease_get(self, request: web.Request) -> web.Response:
        _, failure = await self._lease_preamble(request)
        if failure:
            return failure
        lease = self.lease(request.match_info["ns"], request.match_info["name"])
        return web.json_response(lease) if lease else _status(404, "not found")

    async def lease_create(self, request: web.Request) -> web.Response:
        body, failure = await self._lease_preamble(request)
        if failure:
            return failure
        ns, name = request.match_info["ns"], body["metadata"]["name"]
        if self.lease(ns, name):
            return _status(409, "already exists")
        return web.json_response(self._store(ns, name, body), status=201)

    async def lease_update(self, request: web.Request) -> web.Response:
        body, failure = await self._lease_preamble(request)
        if failure:
            return failure
        ns, name = request.match_info["ns"], request.match_info["name"]
        current = self.lease(ns, name)
        if current is None:
            return _status(404, "not found")
        sent_rv = (body.get("metadata") or {}).get("resourceVersion")
        if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
            return _status(409, "the object has been modified")
        return web.json_response(self._store(ns, name, body))


def _status(code: int, message: str) -> web.Response:
    return web.json_response({"kind": "Status", "code": code, "message": message}, status=code)
