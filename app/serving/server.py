"""aiohttp service: extender verbs, health, readiness, metrics and the workload view."""

from __future__ import annotations

import asyncio
import gzip
import inspect
import time
from typing import AsyncIterator, Awaitable, Callable

import orjson
from aiohttp import web
from prometheus_client.exposition import choose_encoder

from ..cluster.index import Index
from ..core import logs
from ..core.answering import Answering
from ..core.metrics import Metrics
from ..core.settings import Settings
from ..core.supervisor import Supervisor
from . import admission, wire
from .extender import Extender
from .fleet import FleetCollector
from .scrapes import SharedScrapes
from .status import Status
from .webhook import Webhook

log = logs.get("server")


def _json(payload, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")


def build_app(
    extender: Extender,
    webhook: Webhook,
    index: Index,
    status: Status,
    fleet: FleetCollector,
    supervisor: Supervisor,
    metrics: Metrics,
    settings: Settings,
    background: Callable[[web.Application], AsyncIterator[None]] | None = None,
    answering: Answering | None = None,
) -> web.Application:
    """The web application. `background` is a cleanup context that starts the watches and
    loops under `supervisor`; /healthz reports any of its tasks that stopped. `fleet` is
    registered with the metrics; the /metrics handler hands it fresh states per scrape.
    `answering` counts the verbs' and the webhook's calls while they are open (the watches
    that share it yield to them)."""
    answering = answering or Answering()

    @web.middleware
    async def json_errors(request: web.Request, handler):
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            metrics.bad_requests.labels(_route_label(request), str(exc.status)).inc()
            return _json({"error": exc.reason}, exc.status)

    # With a client CA, the verbs, the webhook and the workload view answer only callers
    # with a certificate it signed (kube-scheduler's tlsConfig certFile/keyFile,
    # kube-apiserver's admission kubeConfigFile); the TLS layer has verified any
    # certificate offered, so presence is what is left to check.
    protected = {settings.filter_path, settings.prioritize_path, settings.mutate_path, "/debug/workloads"}

    @web.middleware
    async def client_certificates(request: web.Request, handler):
        if request.path in protected and not request.transport.get_extra_info("peercert"):
            raise web.HTTPForbidden(reason="a client certificate signed by --tls-client-ca-file is required")
        return await handler(request)

    def verb_handler(verb: str, answer: Callable[[wire.ExtenderArgs], bytes | Awaitable[bytes]],
                     on_failure: Callable[[str], web.Response]):
        latency = metrics.request_seconds.labels(verb)

        async def handle(request: web.Request) -> web.Response:
            started = time.perf_counter()
            body = await request.read()  # aiohttp answers 413 past client_max_size
            # Counted once the body is in: a client that sends it slowly holds no priority.
            with answering:
                return await answer_call(body, started)

        async def answer_call(body: bytes, started: float) -> web.Response:
            try:
                args = wire.parse_args(body)
            except wire.BadRequest as exc:
                metrics.bad_requests.labels(verb, "400").inc()
                return _json({"error": str(exc)}, 400)
            try:
                result = answer(args)
                if inspect.isawaitable(result):
                    result = await result
            except Exception:  # noqa: BLE001 - one bad call must not take the service down
                log.exception("extender call failed", extra={"verb": verb})
                metrics.decisions.labels(verb, "error").inc()
                return on_failure(verb)
            latency.observe(time.perf_counter() - started)
            return web.Response(body=result, content_type="application/json")

        return handle

    def filter_failed(verb: str) -> web.Response:
        # The protocol's Error field: an ignorable extender is then skipped for this pod.
        return web.Response(body=wire.filter_error("spot-extender failed to answer"), content_type="application/json")

    def prioritize_failed(verb: str) -> web.Response:
        return _json({"error": "spot-extender failed to answer"}, 500)

    async def mutate(request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            # Never a refusal: an answer kube-apiserver cannot match admits the pod (failurePolicy Ignore).
            metrics.admissions.labels("bad-request").inc()
            return web.Response(body=admission.allowed(""), content_type="application/json")
        with answering:
            return web.Response(body=await webhook.review(body), content_type="application/json")

    async def healthz(request: web.Request) -> web.Response:
        dead = supervisor.stopped()
        if dead:
            return _json({"status": "unhealthy", "stopped": dead}, 500)
        return _json({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        if not index.ready:
            return _json({"status": "syncing", "waiting_for": index.unsynced()}, 503)
        stale = index.freshness.stale(settings.watch_idle_timeout)
        if stale:
            # The verbs keep answering from the last index; readiness tells the truth about it.
            return _json({"status": "stale", "watches_down": stale}, 503)
        return _json({"status": "ready"})

    scrapes = SharedScrapes()

    async def encode_scrape(encoder, gzipped: bool) -> bytes:
        if index.ready:  # the fleet series appear once the index holds the whole cluster
            try:
                fleet.update(await status.states())
            except Exception:
                # The process's own series must still go out; the fleet keeps its last states.
                metrics.loop_errors.labels("fleet-metrics").inc()
                log.exception("fleet metrics: building the workload states failed")
        # Encoding 10,000 workloads' series takes about 0.4 s: off the event loop, so that
        # scheduler calls and admissions are not held up behind a scrape.
        return await asyncio.get_running_loop().run_in_executor(None, _encode, encoder, metrics.registry, gzipped)

    async def metrics_handler(request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        gzipped = "gzip" in request.headers.get("Accept-Encoding", "")
        body = await scrapes.get((content_type, gzipped), lambda: encode_scrape(encoder, gzipped))
        headers = {"Content-Type": content_type, **({"Content-Encoding": "gzip"} if gzipped else {})}
        return web.Response(body=body, headers=headers)

    async def debug_workloads(request: web.Request) -> web.Response:
        return _json(await status.document())

    middlewares = [json_errors, client_certificates] if settings.tls_client_ca_file else [json_errors]
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=middlewares)
    app.router.add_post(settings.filter_path, verb_handler("filter", extender.filter_confirmed, filter_failed))
    app.router.add_post(settings.prioritize_path, verb_handler("prioritize", extender.prioritize, prioritize_failed))
    app.router.add_post(settings.mutate_path, mutate)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/debug/workloads", debug_workloads)
    if background is not None:
        app.cleanup_ctx.append(background)
    return app


def _route_label(request: web.Request) -> str:
    """A bounded label: the matched route, never the raw path a client sent."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _encode(encoder, registry, gzipped: bool) -> bytes:
    body = encoder(registry)
    return gzip.compress(body) if gzipped else body
