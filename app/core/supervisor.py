"""The one way background work runs. A long-lived task runs under `supervise`, which logs,
counts (spot_extender_loop_errors_total{loop}) and restarts it with backoff whenever it
fails or returns; a short-lived task started with `Supervisor.spawn` has any failure
logged and counted. Nothing ends silently."""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, Coroutine

from . import logs
from ..api import ApiError
from .backoff import Backoff
from .metrics import Metrics

log = logs.get("supervisor")

Body = Callable[[], Awaitable[None]]


async def supervise(name: str, body: Body, metrics: Metrics, backoff_max: float = 30.0,
                    clock: Callable[[], float] = time.monotonic, wake: asyncio.Event | None = None,
                    backoff_initial: float = 0.5) -> None:
    """Run body() until cancelled, restarting it after a failure or an unexpected return.
    A run that lasted longer than backoff_max was healthy: the next failure starts the
    backoff afresh. `wake`, when set, cuts a backoff short and starts it afresh (the API
    server is back: watches must not sit out a backoff built up while it was away)."""
    backoff = Backoff(initial=min(backoff_initial, backoff_max), maximum=backoff_max)
    while True:
        started = clock()
        try:
            await body()
            log.error("task returned on its own; restarting it", extra={"task": name})
        except asyncio.CancelledError:
            raise
        except ApiError as exc:  # the API server's trouble, not ours: no traceback
            log.warning("task failed; restarting it", extra={"task": name, "error": str(exc)})
        except Exception as exc:  # noqa: BLE001 - a background task must come back, whatever broke it
            log.exception("task failed; restarting it", extra={"task": name, "error": repr(exc)})
        metrics.loop_errors.labels(name).inc()
        if clock() - started > backoff_max:
            backoff.reset()
        delay = backoff.next_delay()
        if wake is None:
            await asyncio.sleep(delay)
            continue
        try:
            await asyncio.wait_for(wake.wait(), delay)
            backoff.reset()
        except TimeoutError:
            pass


class Supervisor:
    """The background tasks of one scope: the process, or one term as leader."""

    def __init__(self, metrics: Metrics, backoff_max: float = 30.0):
        self.metrics = metrics
        self.backoff_max = backoff_max
        self.tasks: dict[str, asyncio.Task] = {}
        self._spawned: set[asyncio.Task] = set()

    def start(self, name: str, body: Body, wake: asyncio.Event | None = None) -> asyncio.Task:
        """A task meant to run for the whole scope; `wake` cuts its backoffs short."""
        task = asyncio.create_task(supervise(name, body, self.metrics, self.backoff_max, wake=wake), name=name)
        self.tasks[name] = task
        return task

    def spawn(self, work: Coroutine, name: str, loop: str) -> asyncio.Task:
        """A task that ends by itself; if it fails, that is logged and counted under `loop`."""
        task = asyncio.create_task(work, name=name)
        self._spawned.add(task)

        def report(done: asyncio.Task) -> None:
            self._spawned.discard(done)
            if not done.cancelled() and done.exception() is not None:
                exc = done.exception()
                log.error("task failed", extra={"task": name, "loop": loop, "error": repr(exc)}, exc_info=exc)
                self.metrics.loop_errors.labels(loop).inc()

        task.add_done_callback(report)
        return task

    def stopped(self) -> list[str]:
        """Long-lived tasks that are no longer running: none, unless something is badly wrong."""
        return [name for name, task in self.tasks.items() if task.done()]

    async def stop(self) -> None:
        tasks = [*self.tasks.values(), *self._spawned]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.tasks.clear()

