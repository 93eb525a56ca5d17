"""The real extender app over a synthetic index, for the latency benchmark and the HTTP fuzz run.

Run as a child process so its RSS is the extender's alone. The index is listed in, page
by page through the real Reflector, from objects the size the API server sends
(tests/perf/synthetic.py). Before serving it times the controller's passes over the same
index (dry run: no API calls) and prints one JSON line, `loaded {...}` (list-and-sync
and controller timings), then `ready`. With --churn-route it also serves
`POST /bench/churn?seconds=N`: that long, pod watch events go into the index through the
Reflector's own loop as fast as one core absorbs them, between the calls it answers; the
answer counts them. `&unsliced=1` runs that loop as it was before issue 30."""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import sys
import time

import orjson
from aiohttp import web

from spot_extender.api.kinds import BY_NAME
from spot_extender.assembly import build
from spot_extender.cli import event_loop
from spot_extender.cluster.index import POD
from spot_extender.cluster.reflector import Reflector
from spot_extender.controller import Controller
from spot_extender.core.settings import Settings
from spot_extender.core.supervisor import Supervisor
from spot_extender.serving.server import build_app
from tests.helpers import objects as o
from tests.perf.realistic import full_pod
from tests.perf.synthetic import list_into, node_names
from tests.perf.unsliced import absorb_as_before

CHURN_PODS = 1000  # pods added, updated and deleted in turn, of existing workloads
CHURN_BATCH = 50  # events in one read chunk of a busy pod watch (64 KiB of 1-2 KiB events and more)


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


def churn_lines(nodes: int, workloads: int) -> list[tuple[str, bytes]]:
    """Watch event lines for CHURN_PODS pods of existing workloads: each ADDED Pending, then
    MODIFIED bound and Ready, then DELETED. Encoded once; decoded on every use, as a watch does."""
    names = node_names(nodes)
    lines = []
    for i in range(CHURN_PODS):
        app = f"app-{i % workloads:05d}"
        pending = full_pod(o.pod(f"{app}-1-churn{i}", owner=("ReplicaSet", f"{app}-1"), uid=f"churn-{i}",
                                 labels={"app": app}), i)
        bound = full_pod(o.pod(f"{app}-1-churn{i}", owner=("ReplicaSet", f"{app}-1"), uid=f"churn-{i}",
                               labels={"app": app}, node_name=names[i % len(names)]), i)
        for kind, obj in (("ADDED", pending), ("MODIFIED", bound), ("DELETED", bound)):
            lines.append((kind, orjson.dumps({"type": kind, "object": obj})))
    return lines


def churn_route(reflector: Reflector, lines: list[tuple[str, bytes]]):
    async def churn(request: web.Request) -> web.Response:
        seconds = float(request.query.get("seconds", "5"))
        # ?unsliced=1: the watch loop as it was before issue 30, the "before" arm of one run
        absorb = absorb_as_before if request.query.get("unsliced") else Reflector.absorb
        by_type = dict.fromkeys(("ADDED", "MODIFIED", "DELETED"), 0)
        feed = itertools.cycle(lines)
        started = time.perf_counter()
        deadline = started + seconds

        async def stream():
            # A saturated watch: the events of one read chunk are buffered already, so none
            # of them suspends; the next read does, once the buffer is drained (as aiohttp's
            # readany does). Between, only the reflector's own slices hand the loop over.
            while time.perf_counter() < deadline:
                for kind, line in itertools.islice(feed, CHURN_BATCH):
                    event = orjson.loads(line)
                    by_type[kind] += 1
                    yield event["type"], event["object"]
                await asyncio.sleep(0)

        await absorb(reflector, stream())
        elapsed = time.perf_counter() - started
        events = sum(by_type.values())
        return web.json_response({"events": events, "seconds": round(elapsed, 3),
                                  "events_per_second": round(events / elapsed), "by_type": by_type})
    return churn


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=50_000)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workloads", type=int, default=0, help="Deployments the pods belong to (0: pods / 20)")
    parser.add_argument("--max-body-bytes", type=int, default=Settings.max_body_bytes)
    parser.add_argument("--churn-route", action="store_true", help="serve POST /bench/churn")
    args = parser.parse_args()
    workloads = args.workloads or max(args.pods // 20, 1)
    settings = Settings(host="127.0.0.1", port=args.port, log_level="warning", dry_run=True,
                        max_body_bytes=args.max_body_bytes)
    parts = build(settings)
    loop = event_loop()  # the loop `serve` runs on
    loaded = loop.run_until_complete(list_into(parts.index, settings, parts.metrics, args.nodes, args.pods,
                                               max(args.pods // workloads, 1)))
    gc.freeze()  # as `serve` does once the initial lists are in
    controller = Controller(None, parts.index, parts.floors, settings, parts.metrics)
    loaded["controller"] = loop.run_until_complete(time_controller(controller))
    print("loaded " + json.dumps(loaded), flush=True)
    app = build_app(parts.extender, parts.webhook, parts.index, parts.status, parts.fleet, Supervisor(parts.metrics), parts.metrics,
                    settings,
                    answering=parts.answering)
    if args.churn_route:
        reflector = Reflector(None, BY_NAME[POD], parts.index, settings, parts.metrics, parts.answering)
        app.router.add_post("/bench/churn", churn_route(reflector, churn_lines(args.nodes, workloads)))
    print("ready", flush=True)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    sys.exit(main())
