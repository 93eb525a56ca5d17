"""The one way background work runs. A long-lived task runs under `supervise`, which logs,
counts (spot_extender_loop_errors_total{loop}) and restarts it with backoff whenever it
fails or returns; a short-lived task started with `Supervisor.spawn` has any failure
logged and counted. Nothing ends silently.

One Supervisor owns every task of the process. Parts that start and stop tasks of their
own (the controller each term as leader, the leader elector) get a child scope: a child
stops with its parent, and /healthz sees its tasks too."""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, Coroutine, Sequence

from . import logs
from .backoff import Backoff
from .metrics import Metrics

log = logs.get("supervisor")

Body = Callable[[], Awaitable[None]]


async def supervise(name: str, body: Body, metrics: Metrics, backoff_max: float = 30.0,
                    clock: Callable[[], float] = time.monotonic, wake: asyncio.Event | None = None,
                    backoff_initial: float = 0.5, quiet: tuple[type[Exception], ...] = ()) -> None:
    """Run body() until cancelled, restarting it after a failure or an unexpected return.
    A run that lasted longer than backoff_max was healthy: the next failure starts the
    backoff afresh. `wake`, when set, cuts a backoff short and starts it afresh (the API
    server is back: watches must not sit out a backoff built up while it was away).
    Failures of a `quiet` type are logged without a traceback: the API server's trouble, not ours."""
    backoff = Backoff(initial=min(backoff_initial, backoff_max), maximum=backoff_max)
    while True:
        started = clock()
        try:
            await body()
            log.error("task returned on its own; restarting it", extra={"task": name})
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a background task must come back, whatever broke it
            if isinstance(exc, quiet):
                log.warning("task failed; restarting it", extra={"task": name, "error": str(exc)})
            else:
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
    """The background tasks of one scope: the process, or a child such as the controller's."""

    def __init__(self, metrics: Metrics, backoff_max: float = 30.0, quiet: tuple[type[Exception], ...] = ()):
        self.metrics = metrics
        self.backoff_max = backoff_max
        self.quiet = quiet
        self._tasks: dict[str, asyncio.Task] = {}
        self._spawned: set[asyncio.Task] = set()
        self._children: dict[str, Supervisor] = {}

    def child(self, name: str) -> "Supervisor":
        """A scope of its own that stops with this one (and before it)."""
        scope = self._children[name] = Supervisor(self.metrics, self.backoff_max, self.quiet)
        return scope

    def start(self, name: str, body: Body, wake: asyncio.Event | None = None,
              backoff_max: float | None = None) -> asyncio.Task:
        """A task meant to run for the whole scope; `wake` cuts its backoffs short."""
        task = asyncio.create_task(supervise(name, body, self.metrics, backoff_max or self.backoff_max, wake=wake,
                                             quiet=self.quiet), name=name)
        self._tasks[name] = task
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

    def running(self) -> list[asyncio.Task]:
        """This scope's long-lived tasks."""
        return list(self._tasks.values())

    def forget(self, name: str) -> None:
        """A long-lived task its owner ended on purpose: no longer reported as stopped."""
        self._tasks.pop(name, None)

    def stopped(self) -> list[str]:
        """Long-lived tasks that are no longer running, children's included: none, unless
        something is badly wrong."""
        dead = [name for name, task in self._tasks.items() if task.done()]
        return dead + [f"{scope}/{name}" for scope, child in self._children.items() for name in child.stopped()]

    async def stop(self, order: Sequence[str] = ()) -> None:
        """Cancel the named tasks one by one in `order`, then the children, then the rest."""
        for name in order:
            task = self._tasks.pop(name, None)
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        for child in self._children.values():
            await child.stop()
        tasks = [*self._tasks.values(), *self._spawned]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
