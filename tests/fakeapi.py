"""A scripted stand-in for the API server's list and watch endpoints, for unit tests
of the watch client. The real API server is exercised by the end-to-end tests."""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer
from kubernetes_asyncio import client

from app.kube import Kube


class FakeApi:
    def __init__(self):
        self.items: dict[str, list[dict]] = {}
        self.resource_version = "100"
        self.watch_scripts: dict[str, list[list[tuple]]] = {}
        self.requests: list[tuple[str, dict]] = []
        self.list_failures: dict[str, list[int]] = {}
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.handle)
        self.server = TestServer(app)

    async def __aenter__(self) -> "FakeApi":
        await self.server.start_server()
        return self

    async def __aexit__(self, *exc):
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
