"""A mutating webhook that admits every pod unpatched and does nothing else, on
spot-extender's own stack: aiohttp on uvloop, its TLS context (ReloadingTLS). The floor
of what spot-extender's webhook can cost on this stack (bench_burst case pn). With
--stack=granian, the same handler on granian embedded in the event loop, HTTP/2 and TLS
in Rust threads (case pg): what moving the webhook to that stack would buy.

`python -m tests.perf.noop_webhook --port N --cert F --key F [--stack=granian]`."""

from __future__ import annotations

import argparse
import asyncio

import orjson
from aiohttp import web
from prometheus_client import generate_latest

from spot_extender.cli import event_loop
from spot_extender.core.loop_lag import RecentMax, measure_lag
from spot_extender.core.metrics import Metrics
from spot_extender.serving.admission import allowed
from spot_extender.serving.tls import ReloadingTLS
from tests.perf.http_stack_server import serve_granian


async def mutate(request: web.Request) -> web.Response:
    uid = ""
    try:
        uid = orjson.loads(await request.read())["request"]["uid"]
    except (ValueError, KeyError, TypeError):
        pass
    return web.Response(body=allowed(uid), content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def granian_app(scope, protocol) -> None:
    body = await protocol()
    if scope.path != "/mutate":
        protocol.response_bytes(200, [("content-type", "text/plain")], b"ok")
        return
    uid = ""
    try:
        uid = orjson.loads(body)["request"]["uid"]
    except (ValueError, KeyError, TypeError):
        pass
    protocol.response_bytes(200, [("content-type", "application/json")], allowed(uid))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--stack", choices=("aiohttp", "granian"), default="aiohttp")
    args = parser.parse_args()
    if args.stack == "granian":
        loop = event_loop()
        loop.run_until_complete(serve_granian(granian_app, args.port, args.cert, args.key))
        return
    app = web.Application()
    app.router.add_post("/mutate", mutate)
    app.router.add_get("/healthz", healthz)
    # spot-extender's event-loop lag metric, so the burst tells the stack's lag from ours
    metrics = Metrics()
    recent = RecentMax()
    metrics.loop_lag_max.set_function(recent.value)

    async def lag(app: web.Application):
        task = asyncio.create_task(measure_lag(metrics.loop_lag.observe, recent))
        yield
        task.cancel()

    async def metrics_page(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), content_type="text/plain")

    app.cleanup_ctx.append(lag)
    app.router.add_get("/metrics", metrics_page)
    tls = ReloadingTLS(args.cert, args.key, None)
    web.run_app(app, host="127.0.0.1", port=args.port, ssl_context=tls.context, access_log=None, print=None,
                loop=event_loop())


if __name__ == "__main__":
    main()
