"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics.

Written here rather than taken from kubernetes_asyncio because that one sets no
request timeouts and never releases the lease. Every replica runs an elector; the one
holding the lease runs `lead()`. The Lease itself, its expiry and its guarded writes
are lease.py's; the rule kept here: the leader stops leading once no renewal has
succeeded for renew_deadline, timed from when the last successful renewal was *sent*;
since renew_deadline < lease_duration, it stops before any peer can consider the
lease expired.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Awaitable, Callable

from ..api import Kube
from ..api.lease import LeaseRecord
from ..core import logs
from ..core.metrics import Metrics
from ..core.supervisor import Supervisor

log = logs.get("leader")

Lead = Callable[[], Awaitable[None]]
LEAD = "leader-lead"  # the task that runs lead() while this replica leads


class LeaderElector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float,
        renew_deadline: float,
        retry_period: float,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        tasks: Supervisor | None = None,
    ):
        if not 0 < retry_period < renew_deadline < lease_duration:
            raise ValueError("need 0 < retry_period < renew_deadline < lease_duration")
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.metrics = metrics or Metrics()
        # Its own scope: the term's lead task and the lease release at shutdown.
        self.tasks = tasks or Supervisor(self.metrics)
        self.clock = clock  # times lease expiry and the renew deadline; sleeps use the event loop
        # Two tries of a request fit in one renew deadline; never below the retry period.
        self.timeout = max(retry_period, renew_deadline / 2)
        self.lease = LeaseRecord(kube, namespace, name, identity, lease_duration, clock)
        self._renewed_at = 0.0  # clock() when the last successful renewal was sent
        self._leading = False
        self._lead_task: asyncio.Task | None = None
        self.metrics.leader.set(0)

    @property
    def is_leader(self) -> bool:
        return self._leading

    @property
    def _fields(self) -> dict:
        return {"lease": f"{self.namespace}/{self.name}", "identity": self.identity}

    async def run(self, lead: Lead) -> None:
        """Runs until cancelled: acquire, lead while renewing, on loss go back to acquiring.
        On cancellation (shutdown) stop lead, release the lease, re-raise."""
        log.info(
            "leader election started",
            extra={**self._fields, "lease_duration": self.lease_duration,
                   "renew_deadline": self.renew_deadline, "retry_period": self.retry_period},
        )
        try:
            while True:
                await self._acquire()
                await self._lead_while_renewing(lead)
        except asyncio.CancelledError:
            await self._shutdown()
            raise

    # ---- the two phases ------------------------------------------------------------

    async def _acquire(self) -> None:
        while True:
            if await self._attempt(self.timeout):
                self._set_leader(True)
                log.info("leadership acquired",
                         extra={**self._fields, "transitions": self.lease.spec.get("leaseTransitions")})
                self.metrics.leader_transitions.labels("acquired").inc()
                return
            # Jitter keeps peers that retry together from colliding every round.
            await asyncio.sleep(self.retry_period * random.uniform(1.0, 1.2))

    async def _lead_while_renewing(self, lead: Lead) -> None:
        self._lead_task = self.tasks.start(LEAD, lead, backoff_max=self.lease_duration)
        # Tries are paced from when the previous one started, not ended, so slow answers
        # cannot push the next try past the deadline.
        next_try = self._renewed_at + self.retry_period
        while True:
            await asyncio.sleep(max(0.0, min(next_try, self._renewed_at + self.renew_deadline) - self.clock()))
            left = self._time_left()
            if left <= 0:
                reason = f"no renewal succeeded for {self.renew_deadline}s"
                break
            next_try = self.clock() + self.retry_period
            # Bounded by the deadline, so a hung request cannot keep us leading past it.
            if not await self._attempt(min(self.timeout, left)) and self._time_left() > 0:
                holder = self.lease.holder
                if holder and holder != self.identity:
                    reason = f"lease taken by {holder}"
                    break
        self._set_leader(False)
        log.warning("leadership lost", extra={**self._fields, "reason": reason})
        self.metrics.leader_transitions.labels("lost").inc()
        await self._stop_lead()

    def _time_left(self) -> float:
        return self._renewed_at + self.renew_deadline - self.clock()

    # ---- one try -------------------------------------------------------------------

    async def _attempt(self, timeout: float) -> bool:
        """One try to acquire or renew; False if someone else holds it or the try failed."""
        sent = self.clock()
        try:
            async with asyncio.timeout(timeout):
                held = await self.lease.acquire_or_renew(self._leading, timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - API trouble: log, count, retry next period
            self.metrics.loop_errors.labels("leader").inc()
            log.warning("lease request failed", extra={**self._fields, "error": repr(exc)})
            return False
        if held:
            self._renewed_at = sent
        return held

    # ---- stopping ------------------------------------------------------------------

    def _set_leader(self, leading: bool) -> None:
        self._leading = leading
        self.metrics.leader.set(1 if leading else 0)

    async def _stop_lead(self, give_up_after: float | None = None) -> bool:
        """Cancel lead and wait for it to end; False if it is still running after give_up_after."""
        task, started = self._lead_task, self.clock()
        if task is None:
            return True
        task.cancel()
        while not task.done():
            await asyncio.wait({task}, timeout=self.retry_period)
            if task.done():
                break
            if give_up_after is not None and self.clock() - started >= give_up_after:
                return False
            log.warning("lead still running after cancel", extra=self._fields)
        self._lead_task = None
        self.tasks.forget(LEAD)
        return True

    async def _shutdown(self) -> None:
        was_leader = self._leading
        self._set_leader(False)
        if not await self._stop_lead(give_up_after=self.timeout):
            # Releasing now would let a peer lead while our lead still runs: let it expire instead.
            log.error("lead ignored cancellation; not releasing the lease", extra=self._fields)
            return
        if not was_leader and self.lease.holder != self.identity:
            return
        # A task of its own: this one is being cancelled, which would confuse the request timeouts.
        release = self.tasks.spawn(self._release(), name="leader-release", loop="leader")
        try:
            done, _ = await asyncio.wait({release}, timeout=self.timeout * 2)
        finally:
            release.cancel()
        if not done:
            log.warning("lease release timed out", extra=self._fields)

    async def _release(self) -> None:
        try:
            if await self.lease.release(self.timeout):
                log.info("lease released", extra=self._fields)
                self.metrics.leader_transitions.labels("released").inc()
        except Exception as exc:  # noqa: BLE001 - shutdown goes on; the lease expires on its own
            self.metrics.loop_errors.labels("leader").inc()
            log.warning("lease release failed", extra={**self._fields, "error": repr(exc)})
