"""Command line: `spot-extender serve [flags]` (also `python -m spot_extender serve`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import secrets
import socket
import sys

import uvloop
from aiohttp import web

from . import logs, settings as settings_mod
from .controller import Controller
from .extender import Extender
from .index import KINDS, Index
from .inflight import InFlight
from .kube import Kube
from .leader import Lead, LeaderElector, run_restarting
from .metrics import Metrics
from .nodes import NodeClassifier
from .reflector import RESOURCES, Reflector
from .server import TASKS_KEY, build_app
from .settings import Settings, SettingsError
from .tls import ReloadingTLS

log = logs.get("cli")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="spot-extender",
        description="kube-scheduler extender: keeps an on-demand floor per workload, the rest on spot.",
    )
    commands = root.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="watch the cluster and serve the extender API",
        description="Watch the cluster and serve the extender API. Every flag can also be set "
        f"with an environment variable {settings_mod.ENV_PREFIX}<FLAG_NAME>.",
    )
    settings_mod.add_arguments(serve)
    return root


def build(settings: Settings) -> tuple[Index, Extender, Metrics]:
    metrics = Metrics()
    index = Index(NodeClassifier(settings), InFlight(settings.inflight_ttl))
    metrics.track_index_sizes(index.sizes, (*KINDS, "InFlight"))
    return index, Extender(index, settings, metrics), metrics


async def announce_sync(index: Index) -> None:
    while not index.ready:
        await asyncio.sleep(0.2)
    # The initial lists are long-lived: keep full GC passes (latency spikes) off them.
    gc.freeze()
    log.info("index synced", extra={"sizes": index.sizes()})


def controller_loops(
    kube: Kube, index: Index, extender: Extender, settings: Settings, metrics: Metrics, running: list[Controller]
) -> Lead:
    """What only the leader runs: draining, floor repair, return to spot, deletion costs.
    `running` holds the controller of the current leadership term, for /debug/workloads."""

    async def lead() -> None:
        controller = Controller(kube, index, extender, settings, metrics)
        running[:] = [controller]
        try:
            await controller.run()
        finally:
            running.clear()

    return lead


def lease_namespace(settings: Settings) -> str:
    return settings.lease_namespace or os.environ.get("POD_NAMESPACE") or "kube-system"


def identity(settings: Settings) -> str:
    # The random suffix keeps a restarted pod (same name) from inheriting its old lease.
    return settings.identity or f"{os.environ.get('POD_NAME') or socket.gethostname()}-{secrets.token_hex(3)}"


def serve(settings: Settings) -> None:
    index, extender, metrics = build(settings)
    electors: list[LeaderElector] = []  # filled once the API client is connected

    tls = ReloadingTLS(settings.tls_cert_file, settings.tls_key_file) if settings.tls_cert_file else None
    running: list[Controller] = []  # the controller while this replica leads

    def controller_state(key):
        return running[0].state_of(key) if running else None

    def status() -> dict:
        return {"leader": electors[0].is_leader if electors else None}

    async def watches(app: web.Application):
        kube = await Kube.connect(settings.kubeconfig, settings.context)
        reflectors = [Reflector(kube, r, index, settings, metrics) for r in RESOURCES]
        tasks = [asyncio.create_task(r.run(), name=f"watch-{r.kind}") for r in reflectors]
        lead = controller_loops(kube, index, extender, settings, metrics, running)
        if settings.leader_elect:
            elector = LeaderElector(
                kube, lease_namespace(settings), settings.lease_name, identity(settings),
                settings.lease_duration, settings.renew_deadline, settings.retry_period, metrics,
            )
            electors.append(elector)
            leader = asyncio.create_task(elector.run(lead), name="leader")
        else:
            metrics.leader.set(1)  # no election: this replica runs the loops
            leader = asyncio.create_task(run_restarting(lead, metrics, "controller"), name="controller")
        extra = []
        if tls is not None:
            extra.append(asyncio.create_task(tls.watch(settings.tls_reload_interval, metrics), name="tls-reload"))
        app[TASKS_KEY] = [*tasks, leader, *extra]  # /healthz reports any of them that stopped
        synced = asyncio.create_task(announce_sync(index))
        yield
        synced.cancel()
        for task in extra:
            task.cancel()
        # The leader goes first, while the client is still open, so its lease release goes out.
        leader.cancel()
        await asyncio.gather(leader, return_exceptions=True)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await kube.close()
        log.info("stopped")

    app = build_app(extender, metrics, settings, watches, status, controller_state)
    log.info("serving", extra={"host": settings.host, "port": settings.port, "https": tls is not None})
    # run_app turns SIGTERM and SIGINT into a graceful shutdown that runs the cleanup above.
    web.run_app(
        app,
        loop=event_loop(),
        host=settings.host,
        port=settings.port,
        ssl_context=tls.context if tls is not None else None,
        access_log=None,
        print=None,
        shutdown_timeout=10,
    )


def event_loop() -> asyncio.AbstractEventLoop:
    """uvloop: less CPU per call than the stock loop, and each call sits on kube-scheduler's
    serial scheduling cycle (docs/performance.md, section 1)."""
    return uvloop.new_event_loop()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = settings_mod.from_sources(args)
    except SettingsError as exc:
        print(f"spot-extender: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, settings.log_level)
    if args.command == "serve":
        with contextlib.suppress(KeyboardInterrupt):
            serve(settings)
    return 0
