"""spot-extender's verbs and webhook on one of several HTTP stacks, for bench_http_stack.

The same parts (the real Extender and Webhook over a synthetic index listed through the
real Reflector) and the same handler work behind each stack:

  aiohttp   the app spot-extender ships (serving/server.py: build_app), on uvloop
  raw       an asyncio Protocol of our own on uvloop, parsing with httptools (the parser
            uvicorn uses), answering keep-alive HTTP/1.1 with Content-Length bodies
  uvicorn   uvicorn (httptools, uvloop) calling a bare ASGI callable
  granian   granian embedded in the process's own event loop (HTTP and TLS in Rust
            threads), calling a bare RSGI callable

Each serves POST /filter, /prioritize, /mutate, and /noop (an empty answer: the stack's
own cost). Prints `ready` once it serves."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import httptools
import uvicorn
from aiohttp import web
from granian.constants import SSLProtocols

from spot_extender.assembly import build
from spot_extender.cli import event_loop
from spot_extender.core.settings import Settings
from spot_extender.core.supervisor import Supervisor
from spot_extender.serving import wire
from spot_extender.serving.server import build_app
from tests.perf.synthetic import list_into

EMPTY = b"{}"


def answers(parts) -> dict[bytes, object]:
    """Path -> async (body -> answer bytes): the work every stack's handler does."""
    extender, webhook, metrics = parts.extender, parts.webhook, parts.metrics

    def verb(name, answer):
        latency = metrics.request_seconds.labels(name)

        async def handle(body: bytes) -> bytes:
            started = time.perf_counter()
            try:
                args = wire.parse_args(body)
            except wire.BadRequest:
                return b'{"error":"bad request"}'
            result = answer(args)
            if asyncio.iscoroutine(result):
                result = await result
            latency.observe(time.perf_counter() - started)
            return result

        return handle

    async def noop(body: bytes) -> bytes:
        return EMPTY

    return {b"/filter": verb("filter", extender.filter_confirmed), b"/prioritize": verb("prioritize", extender.prioritize),
            b"/mutate": webhook.review, b"/noop": noop}


class RawProtocol(asyncio.Protocol):
    """Keep-alive HTTP/1.1 for POSTs with a body: enough for kube-scheduler's calls."""

    def __init__(self, routes: dict[bytes, object]):
        self.routes = routes
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        body, self.body = b"".join(self.body), []
        handler = self.routes.get(self.url)
        if handler is None:
            self.transport.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            return
        asyncio.get_running_loop().create_task(self.answer(handler, body))

    async def answer(self, handler, body: bytes) -> None:
        result = await handler(body)
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(result), result))


def asgi(routes: dict[bytes, object]):
    async def app(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        handler = routes.get(scope["path"].encode())
        result = await handler(b"".join(chunks)) if handler else b""
        await send({"type": "http.response.start", "status": 200 if handler else 404,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(result)).encode())]})
        await send({"type": "http.response.body", "body": result})

    return app


def rsgi(routes: dict[bytes, object]):
    async def app(scope, protocol) -> None:
        body = await protocol()
        handler = routes.get(scope.path.encode())
        result = await handler(body) if handler else b""
        protocol.response_bytes(200 if handler else 404, [("content-type", "application/json")], result)

    return app


async def serve_granian(app, port: int, cert: str | None = None, key: str | None = None) -> None:
    """granian in this event loop; HTTP/2 offered over TLS (ALPN), as Go servers do."""
    from granian.constants import HTTPModes, Interfaces
    from granian.server.embed import Server

    tls = {"ssl_cert": Path(cert), "ssl_key": Path(key), "ssl_protocol_min": SSLProtocols.tls12} if cert else {}
    server = Server(app, address="127.0.0.1", port=port, interface=Interfaces.RSGI, http=HTTPModes.auto,
                    log_enabled=False, **tls)
    await server.serve()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stack", choices=("aiohttp", "raw", "uvicorn", "granian"), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--pods", type=int, default=5000)
    args = parser.parse_args()
    settings = Settings(host="127.0.0.1", port=args.port, log_level="warning", dry_run=True)
    parts = build(settings)
    loop = event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(list_into(parts.index, settings, parts.metrics, args.nodes, args.pods, 20))
    routes = answers(parts)
    if args.stack == "aiohttp":
        app = build_app(parts.extender, parts.webhook, parts.index, parts.status, parts.fleet,
                        Supervisor(parts.metrics), parts.metrics, settings, answering=parts.answering)

        async def noop(request: web.Request) -> web.Response:
            await request.read()
            return web.Response(body=EMPTY, content_type="application/json")

        app.router.add_post("/noop", noop)
        print("ready", flush=True)
        web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, loop=loop)
    elif args.stack == "raw":
        server = loop.run_until_complete(loop.create_server(lambda: RawProtocol(routes), "127.0.0.1", args.port))
        print("ready", flush=True)
        loop.run_until_complete(server.serve_forever())
    elif args.stack == "granian":
        print("ready", flush=True)
        loop.run_until_complete(serve_granian(rsgi(routes), args.port))
    else:
        config = uvicorn.Config(asgi(routes), host="127.0.0.1",
                                port=args.port, loop="none", http="httptools", lifespan="off", access_log=False,
                                log_level="warning")
        server = uvicorn.Server(config)
        print("ready", flush=True)
        loop.run_until_complete(server.serve())


if __name__ == "__main__":
    main()
