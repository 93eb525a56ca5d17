"""List-then-watch loops that keep the index in step with the API server, one per kind."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from . import logs
from .backoff import Backoff
from .index import NODE, PDB, POD, Index
from .kube import Gone, Kube
from .metrics import Metrics
from .settings import Settings
from .workloads import DEPLOYMENT, REPLICASET, STATEFULSET

log = logs.get("reflector")

# A stream the server ends sooner than this is treated as a failure and backed off,
# so a proxy that drops every watch cannot turn the loop into a busy loop.
MIN_HEALTHY_STREAM_SECONDS = 1.0


@dataclass(frozen=True)
class Resource:
    kind: str
    path: str


# Nodes first and Pods after workloads, so the first pods find their owners' records.
RESOURCES = (
    Resource(NODE, "/api/v1/nodes"),
    Resource(DEPLOYMENT, "/apis/apps/v1/deployments"),
    Resource(STATEFULSET, "/apis/apps/v1/statefulsets"),
    Resource(REPLICASET, "/apis/apps/v1/replicasets"),
    Resource(PDB, "/apis/policy/v1/poddisruptionbudgets"),
    Resource(POD, "/api/v1/pods"),
)


class WatchExpired(Exception):
    """The stream outlived its deadline: the server never closed it."""


class Reflector:
    def __init__(self, kube: Kube, resource: Resource, index: Index, settings: Settings, metrics: Metrics):
        self.kube = kube
        self.resource = resource
        self.index = index
        self.settings = settings
        self.metrics = metrics
        self.backoff = Backoff(initial=0.5, maximum=settings.backoff_max)
        self.resource_version: str | None = None

    @property
    def kind(self) -> str:
        return self.resource.kind

    async def run(self) -> None:
        """Runs until cancelled; every failure is logged, counted and retried with backoff."""
        while True:
            try:
                if self.resource_version is None:
                    await self.list()
                started = time.monotonic()
                await self.watch()
                if time.monotonic() - started > MIN_HEALTHY_STREAM_SECONDS:
                    continue  # the server closed the stream on schedule: resume at once
                reason, error = "closed-early", None
            except asyncio.CancelledError:
                raise
            except Gone as exc:
                # Our resourceVersion fell out of the server's window: list again.
                reason, error = "gone", exc
                self.resource_version = None
            except (WatchExpired, TimeoutError) as exc:
                reason, error = "timeout", exc
            except Exception as exc:  # noqa: BLE001 - any failure must restart the loop, not end it
                reason, error = "error", exc
                self.metrics.loop_errors.labels(f"watch-{self.kind}").inc()
            self._restart(reason, error)
            await asyncio.sleep(self.backoff.next_delay())

    def _restart(self, reason: str, exc: BaseException | None) -> None:
        self.metrics.watch_restarts.labels(self.kind, reason).inc()
        level = log.warning if reason == "error" else log.info
        level(
            "watch restarting",
            extra={"kind": self.kind, "reason": reason, "error": repr(exc) if exc else None},
        )

    async def list(self) -> None:
        items: list[dict] = []
        params = {"limit": str(self.settings.list_page_size)}
        while True:
            page = await self.kube.get_json(self.resource.path, params, self.settings.request_timeout)
            items.extend(page.get("items") or ())
            meta = page.get("metadata") or {}
            if not meta.get("continue"):
                break
            params = {**params, "continue": meta["continue"]}
        self.index.replace(self.kind, items)
        self.resource_version = meta.get("resourceVersion") or None
        log.info("listed", extra={"kind": self.kind, "count": len(items), "resource_version": self.resource_version})

    async def watch(self) -> None:
        # Jitter spreads the reconnects of the six streams and of peer replicas.
        server_timeout = int(self.settings.watch_timeout * random.uniform(1.0, 1.2))
        params = {
            "resourceVersion": self.resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(server_timeout),
        }
        stream = self.kube.watch(
            self.resource.path, params, self.settings.request_timeout, self.settings.watch_idle_timeout
        )
        deadline = asyncio.timeout(server_timeout + self.settings.request_timeout)
        try:
            async with deadline:
                async for event in stream:
                    self._handle(event)
                    self.backoff.reset()  # events flow: the connection is healthy again
        except TimeoutError:
            if deadline.expired():
                raise WatchExpired(f"stream open longer than {server_timeout}s") from None
            raise
        finally:
            await stream.aclose()

    def _handle(self, event: dict) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            code = obj.get("code")
            if code == 410:
                raise Gone(410, obj.get("message", "resource version too old"))
            raise RuntimeError(f"watch error {code}: {obj.get('message')}")
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self.index.apply(self.kind, kind, obj)
            self.metrics.watch_events.labels(self.kind).inc()
        elif kind != "BOOKMARK":
            log.warning("unknown watch event type", extra={"kind": self.kind, "type": kind})
        if rv:
            self.resource_version = rv
