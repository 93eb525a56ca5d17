"""List-then-watch loops that keep the index in step with the API server, one per kind.

Runs under the supervisor. What the watch protocol makes routine is handled here: a
410 Gone lists again at once, a stream the server ends on schedule or that goes idle is
reopened at once, and an optional kind whose API is not served is skipped. Anything
else (the API server unreachable, an error status) is raised to the supervisor, which
logs, counts and restarts this loop with backoff.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import AsyncIterator

from ..api import ApiError, Gone, Kube, StatusError, TransportError, WatchIdle
from ..api.client import WatchEvent
from ..api.kinds import Kind
from ..core import logs
from ..core.answering import Answering
from ..core.metrics import Metrics
from ..core.settings import Settings
from .index import Index

log = logs.get("reflector")

# A stream the server ends sooner than this is a failure, so that a proxy that drops
# every watch cannot turn the loop into a busy loop: the supervisor backs it off.
MIN_HEALTHY_STREAM_SECONDS = 1.0

# A busy stream has its next events buffered already, so awaiting them never lets the loop
# run anything else: the watch hands the loop back after this much work, so admissions and
# scheduler calls wait at most about one slice per busy stream, not for the backlog.
SLICE_SECONDS = 0.001
LIST_CHUNK = 50  # objects of a listed page applied between yields


class WatchExpired(Exception):
    """The stream outlived its deadline: the server never closed it."""


class Reflector:
    def __init__(self, kube: Kube, kind: Kind, index: Index, settings: Settings, metrics: Metrics,
                 answering: Answering | None = None):
        self.kube = kube
        self.answering = answering or Answering()
        self.resource = kind.resource
        self.kind = kind.name
        self.optional = kind.optional
        self.index = index
        self.settings = settings
        self.metrics = metrics
        self.resource_version: str | None = None
        self._absent_logged = False

    async def run(self) -> None:
        """Runs until cancelled, or until a failure the supervisor must back off from."""
        gone_without_events = False
        while True:
            try:
                if self.resource_version is None and not await self.list():
                    await asyncio.sleep(self.settings.optional_kind_recheck)
                    continue
                started = time.monotonic()
                delivered = await self.watch()
            except Gone as exc:
                # Our resourceVersion fell out of the server's window: list again, at once
                # unless the last fresh list went Gone too without a single event.
                self._restart("gone", exc)
                self.resource_version = None
                if gone_without_events:
                    raise
                gone_without_events = True
                continue
            except (WatchExpired, WatchIdle) as exc:
                self._restart("timeout", exc)
                continue
            except ApiError as exc:
                self._restart("error", exc)
                self.index.freshness.down(self.kind)
                raise
            gone_without_events = gone_without_events and not delivered
            if time.monotonic() - started < MIN_HEALTHY_STREAM_SECONDS:
                self._restart("closed-early", None)
                raise TransportError(f"watch of {self.kind} closed after less than {MIN_HEALTHY_STREAM_SECONDS}s")

    def _restart(self, reason: str, exc: BaseException | None) -> None:
        self.metrics.watch_restarts.labels(self.kind, reason).inc()
        level = log.warning if reason == "error" else log.info
        level("watch restarting", extra={"kind": self.kind, "reason": reason, "error": str(exc) if exc else None})

    async def list(self) -> bool:
        """List every object into the index; False if this optional kind is not served here.
        Each page goes into the index as it arrives, so memory holds one page of raw
        objects, not the whole list (150,000 pods of a few KB each would be gigabytes)."""
        listed: set = set()
        version = None
        try:
            async for items, version in self.kube.pages(self.resource, self.settings.list_page_size,
                                                        self.settings.request_timeout):
                for start in range(0, len(items), LIST_CHUNK):
                    self.index.put_listed(self.kind, items[start:start + LIST_CHUNK], listed)
                    await asyncio.sleep(0)
        except StatusError as exc:
            if not self.optional or exc.status not in (403, 404):
                raise
            # No CRD (404), or its RBAC rule left out (403): nothing of this kind can
            # exist for us, so it must not hold /readyz. Look again now and then.
            if not self._absent_logged:
                log.info("optional kind not served; skipped", extra={
                    "kind": self.kind, "api_version": self.resource.api_version, "status": exc.status,
                    "recheck_seconds": self.settings.optional_kind_recheck,
                })
                self._absent_logged = True
            self.index.replace(self.kind, [])
            self.index.freshness.up(self.kind)
            return False
        self.resource_version = version
        self.index.end_list(self.kind, listed)
        self.index.freshness.up(self.kind)
        self._absent_logged = False
        log.info("listed", extra={"kind": self.kind, "count": len(listed), "resource_version": version})
        return True

    async def watch(self) -> bool:
        """One watch stream, until the server ends it; True if it delivered any event."""
        # Jitter spreads the reconnects of the streams and of peer replicas.
        server_timeout = int(self.settings.watch_timeout * random.uniform(1.0, 1.2))
        stream = self.kube.watch(self.resource, self.resource_version, server_timeout,
                                 self.settings.request_timeout, self.settings.watch_idle_timeout,
                                 on_open=lambda: self.index.freshness.up(self.kind))
        deadline = asyncio.timeout(server_timeout + self.settings.request_timeout)
        try:
            async with deadline:
                delivered = await self.absorb(stream)
        except TimeoutError:
            if deadline.expired():
                raise WatchExpired(f"stream open longer than {server_timeout}s") from None
            raise
        finally:
            await stream.aclose()
        return delivered

    async def absorb(self, stream: AsyncIterator[WatchEvent]) -> bool:
        """Apply a stream's events to the index, handing the loop back after every
        SLICE_SECONDS of work, or after every event while a call is being answered; True
        if it delivered any."""
        delivered = False
        slice_ends = time.perf_counter() + SLICE_SECONDS
        answering = self.answering
        async for event_type, obj in stream:
            self._handle(event_type, obj)
            delivered = True
            if answering.open or time.perf_counter() > slice_ends:
                await asyncio.sleep(0)
                slice_ends = time.perf_counter() + SLICE_SECONDS
        return delivered

    def _handle(self, event_type: str, obj: dict) -> None:
        self.index.freshness.up(self.kind)
        if event_type in ("ADDED", "MODIFIED", "DELETED"):
            self.index.apply(self.kind, event_type, obj)
            self.metrics.watch_events.labels(self.kind).inc()
        elif event_type != "BOOKMARK":
            log.warning("unknown watch event type", extra={"kind": self.kind, "type": event_type})
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if rv:
            self.resource_version = rv


async def watch_for_return(kube: Kube, index: Index, returned: asyncio.Event, period: float, timeout: float) -> None:
    """While a watch is down, ask the API server every period whether it answers. When it
    answers again after it did not, pulse `returned`, which wakes every watch out of its
    backoff: the index is re-listed within a period or two of the server's return. A watch
    down for another reason (an error status) keeps its own backoff: no pulse, no storm."""
    unreachable = False
    while True:
        await asyncio.sleep(period)
        if not index.freshness.stale(0):
            unreachable = False
            continue
        if not await kube.reachable(timeout):
            unreachable = True
        elif unreachable:
            unreachable = False
            log.info("api server reachable again; reconnecting watches", extra={"down": index.freshness.stale(0)})
            returned.set()
            returned.clear()  # a pulse: the waiters are woken already
