"""The real extender app over a synthetic index, for the latency benchmark and the HTTP fuzz run.

Run as a child process so its RSS is the extender's alone. Before serving it times
the controller's passes over the same index (dry run: no API calls) and prints them
as one JSON line, `controller {...}`, then `ready`."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time

from aiohttp import web

from spot_extender.cli import build, event_loop
from spot_extender.controller import Controller
from spot_extender.server import build_app
from spot_extender.settings import Settings
from spot_extender.supervisor import Supervisor
from tests.perf.synthetic import populate


async def time_controller(controller: Controller) -> dict:
    """Wall time of each pass, and the longest the event loop went without a turn:
    what a scheduler request arriving mid-pass would wait at most."""
    stalls = [0.0]

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0)
            now = time.perf_counter()
            stalls[0] = max(stalls[0], now - last)
            last = now

    out = {}
    for name, one_pass in (("rebalance", controller.rebalance.once), ("costs", controller.deletion_cost.once)):
        stalls[0] = 0.0
        tick = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        started = time.perf_counter()
        await one_pass()
        elapsed = time.perf_counter() - started
        await asyncio.sleep(0)  # the ticker's turn, so the stretch up to the pass's end counts too
        tick.cancel()
        out[name] = {"pass_ms": round(elapsed * 1000, 1), "longest_stall_ms": round(stalls[0] * 1000, 2)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=50_000)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-body-bytes", type=int, default=Settings.max_body_bytes)
    args = parser.parse_args()
    settings = Settings(host="127.0.0.1", port=args.port, log_level="warning", dry_run=True,
                        max_body_bytes=args.max_body_bytes)
    parts = build(settings)
    populate(parts.index, args.nodes, args.pods)
    gc.freeze()  # as `serve` does once the initial lists are in
    controller = Controller(None, parts.index, parts.floors, settings, parts.metrics)
    loop = event_loop()  # the loop `serve` runs on
    print("controller " + json.dumps(loop.run_until_complete(time_controller(controller))), flush=True)
    print("ready", flush=True)
    web.run_app(
        build_app(parts.extender, parts.webhook, parts.index, parts.status, Supervisor(parts.metrics), parts.metrics, settings),
        host="127.0.0.1", port=args.port, access_log=None, print=None,
        loop=loop,
    )


if __name__ == "__main__":
    sys.exit(main())
