"""Command line: `spot-extender serve [flags]` (also `python -m spot_extender serve`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import sys
import textwrap
from typing import NoReturn

import uvloop
from aiohttp import web

from . import __version__, status_command
from .api import ConfigError
from .assembly import Parts, StartupError, build, serving_tls
from .cluster.index import Index
from .cluster.reflector import watch_for_return
from .core import logs
from .core import settings as settings_mod
from .core.loop_lag import RecentMax, measure_lag
from .core.settings import Settings, SettingsError
from .serving.server import build_app

log = logs.get("cli")

API_PROBE_PERIOD = 1.0  # while a watch is down: how often to ask whether the API server is back
USAGE = 2  # a bad flag or setting; `status` also exits 1 (a floor unmet) and 3 (cannot read)
CANNOT_START = status_command.FAILED  # serve: a kubeconfig or certificate that does not load, a port taken

# The settings `status` judges floors with, besides its own flags: classes, floors, and
# which nodes are going away (floor clamps leave those out).
STATUS_SETTINGS = frozenset({"capacity_labels", "unknown_class", "spot_tolerations", "default_floor",
                             "floor_from_max_unavailable", "excluded_namespaces", "going_away_taints",
                             "going_away_signals"})


class Formatter(argparse.HelpFormatter):
    """Help wrapped at spaces only: flag names and values like kube-system stay whole."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False, break_long_words=False)


class Parser(argparse.ArgumentParser):
    """A usage error is one line and where to look, not the whole usage."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, formatter_class=Formatter, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: {message}\ntry '{self.prog} --help'\n")


def parser() -> argparse.ArgumentParser:
    root = Parser(
        prog="spot-extender",
        description="kube-scheduler extender: keeps an on-demand floor per workload, the rest on spot.",
    )
    root.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = root.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        usage="%(prog)s [flags]",
        help="watch the cluster and serve the extender API",
        description="Watch the cluster and serve the extender API. Every flag can also be set "
        f"with an environment variable {settings_mod.ENV_PREFIX}<FLAG_NAME>. Exit code 2: a flag or "
        f"setting that cannot be used, {CANNOT_START}: it cannot start (a kubeconfig, certificate or key that "
        "does not load, or the port is taken).",
    )
    settings_mod.add_arguments(serve)
    status = commands.add_parser(
        "status",
        usage="%(prog)s [flags]",
        help="print every workload's floor and placement; exit 1 when a floor is unmet",
        description="Every Deployment, StatefulSet and Rollout: R, its floor k and why, pods by role, replicas "
        "on on-demand and on spot, whether the floor is met; then the spot share of what the floors allow and "
        "the estimated hourly cost against all on on-demand. Exit code 0: every floor met, 1: some floor "
        f"unmet, 2: a flag or setting that cannot be used, {status_command.FAILED}: the workloads could not be "
        f"read. The settings below, and {settings_mod.ENV_PREFIX}* variables, judge floors as serve does.",
    )
    status_command.add_arguments(status)
    settings_mod.add_arguments(status, only=STATUS_SETTINGS)
    root.set_defaults(commands={"serve": serve, "status": status})
    return root


def background(parts: Parts):
    """The aiohttp cleanup context that runs watches, leadership and TLS reloads."""
    settings, metrics, index, supervisor, kube, tls = (parts.settings, parts.metrics, parts.index, parts.supervisor,
                                                       parts.kube, parts.tls)

    async def run(app: web.Application):
        metrics.track_tasks(asyncio.get_running_loop())
        recent_lag = RecentMax()
        metrics.loop_lag_max.set_function(recent_lag.value)
        supervisor.start("loop-lag", lambda: measure_lag(metrics.loop_lag.observe, recent_lag))
        await kube.open()
        if parts.certificates is not None:
            # First, so the webhook has a certificate to serve as soon as possible.
            supervisor.start("certificates", parts.certificates.run)
        api_returned = asyncio.Event()
        for reflector in parts.reflectors:
            supervisor.start(f"watch-{reflector.kind}", reflector.run, wake=api_returned)
        probe_timeout = min(settings.request_timeout, API_PROBE_PERIOD * 5)
        supervisor.start("api-return", lambda: watch_for_return(kube, index, api_returned, API_PROBE_PERIOD,
                                                                probe_timeout))
        if parts.elector is not None:
            supervisor.start("leader", lambda: parts.elector.run(parts.controller.run))
        else:
            metrics.leader.set(1)  # no election: this replica runs the loops
            supervisor.start("controller", parts.controller.run)
        if tls is not None and (settings.tls_cert_file or settings.tls_client_ca_file):
            supervisor.start("tls-reload", lambda: tls.watch(settings.tls_reload_interval))
        supervisor.spawn(announce_sync(index), name="announce-sync", loop="announce-sync")
        yield
        # The leader goes first, while the client is still open, so its lease release goes out.
        await supervisor.stop(order=("leader", "controller", "tls-reload", "certificates"))
        await kube.close()
        log.info("stopped")

    return run


async def announce_sync(index: Index) -> None:
    await index.wait_synced()
    # The initial lists are long-lived: keep full GC passes (latency spikes) off them.
    gc.freeze()
    log.info("index synced", extra={"sizes": index.sizes()})


def serve(settings: Settings) -> None:
    parts = build(settings, tls=serving_tls(settings))
    try:
        parts.kube.check_config()  # before anything is served: a bad kubeconfig stops it here
    except ConfigError as exc:
        raise StartupError(str(exc)) from None  # it names the file, from a flag or $KUBECONFIG
    app = build_app(parts.extender, parts.webhook, parts.index, parts.status, parts.fleet, parts.supervisor,
                    parts.metrics, settings, background(parts), parts.answering)
    log.info("serving", extra={"host": settings.host, "port": settings.port, "https": parts.tls is not None})
    # run_app turns SIGTERM and SIGINT into a graceful shutdown that runs the cleanup above.
    try:
        web.run_app(
            app,
            loop=event_loop(),
            host=settings.host,
            port=settings.port,
            ssl_context=parts.tls.context if parts.tls is not None else None,
            access_log=None,
            print=None,
            shutdown_timeout=10,
        )
    except ConfigError as exc:
        raise StartupError(str(exc)) from None  # it names the file, from a flag or $KUBECONFIG
    except OSError as exc:  # binding the port: in use, or not ours to take
        raise StartupError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}") from None


def event_loop() -> asyncio.AbstractEventLoop:
    """uvloop: less CPU per call than the stock loop, and each call sits on kube-scheduler's
    serial scheduling cycle (docs/performance.md, section 1)."""
    return uvloop.new_event_loop()


def main(argv: list[str] | None = None) -> int:
    args, unknown = parser().parse_known_args(argv)
    if unknown:  # named by the command's own parser, so the hint is its --help
        args.commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        settings = settings_mod.from_sources(args)
    except SettingsError as exc:
        command = args.commands[args.command]  # one line, then where to look, as for an unknown flag
        print(f"{command.prog}: {exc}\ntry '{command.prog} --help'", file=sys.stderr)
        return USAGE
    if args.command == "status":
        logs.configure(settings.log_format, "warning")  # the table is the output; only trouble is logged
        return status_command.run(args, settings)
    logs.configure(settings.log_format, settings.log_level)
    if args.command == "serve":
        try:
            with contextlib.suppress(KeyboardInterrupt):
                serve(settings)
        except StartupError as exc:
            print(f"spot-extender serve: {exc}", file=sys.stderr)
            return CANNOT_START
    return 0
