"""A mutating webhook that admits every pod unpatched and does nothing else, on
spot-extender's own stack: aiohttp on uvloop, its TLS context (ReloadingTLS). The floor
of what spot-extender's webhook can cost on this stack (bench_burst case pn).

`python -m tests.perf.noop_webhook --port N --cert F --key F`."""

from __future__ import annotations

import argparse

import orjson
from aiohttp import web

from spot_extender.cli import event_loop
from spot_extender.serving.admission import allowed
from spot_extender.serving.tls import ReloadingTLS


async def mutate(request: web.Request) -> web.Response:
    uid = ""
    try:
        uid = orjson.loads(await request.read())["request"]["uid"]
    except (ValueError, KeyError, TypeError):
        pass
    return web.Response(body=allowed(uid), content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_post("/mutate", mutate)
    app.router.add_get("/healthz", healthz)
    tls = ReloadingTLS(args.cert, args.key, None)
    web.run_app(app, host="127.0.0.1", port=args.port, ssl_context=tls.context, access_log=None, print=None,
                loop=event_loop())


if __name__ == "__main__":
    main()
