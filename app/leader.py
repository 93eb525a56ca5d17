"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics.

Written here rather than taken from kubernetes_asyncio because that one sets no
request timeouts and never releases the lease. Every replica runs an elector; the one
holding the lease runs `lead()`. Safety rests on three rules:

- A peer's lease counts as expired only once its record has not changed for the lease
  duration as timed by OUR monotonic clock from when we first saw it (client-go's
  observedTime), so wall-clock skew between replicas cannot shorten it.
- The leader stops leading once no renewal has succeeded for renew_deadline, timed from
  when the last successful renewal was *sent*; since renew_deadline < lease_duration,
  it stops before any peer can consider the lease expired.
- Every write is a PUT guarded by resourceVersion, so of two racing replicas one gets
  a 409 and simply does not lead this round.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from datetime import datetime, timezone
from typing import Awaitable, Callable

from . import logs
from .backoff import Backoff
from .kube import Kube, KubeError
from .metrics import Metrics

log = logs.get("leader")

Lead = Callable[[], Awaitable[None]]


def micro_time(moment: datetime | None = None) -> str:
    """RFC 3339 with microseconds, the MicroTime format Lease spec times use."""
    return (moment or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def run_restarting(lead: Lead, metrics: Metrics, loop: str, max_delay: float = 30.0) -> None:
    """Run lead() until cancelled; if it returns or raises, log, count and restart it after a backoff."""
    backoff = Backoff(initial=0.5, maximum=max_delay)
    while True:
        started = time.monotonic()
        try:
            await lead()
            log.error("lead returned on its own; restarting it", extra={"loop": loop})
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the leader must keep leading, not die with its loops
            log.exception("lead failed; restarting it", extra={"loop": loop})
        metrics.loop_errors.labels(loop).inc()
        if time.monotonic() - started > max_delay:
            backoff.reset()  # it ran well for a while: this is a fresh failure
        await asyncio.sleep(backoff.next_delay())


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
        self.clock = clock  # times lease expiry and the renew deadline; sleeps use the event loop
        # Two tries of a request fit in one renew deadline; never below the retry period.
        self.timeout = max(retry_period, renew_deadline / 2)
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
        self._lease: dict | None = None  # the last version we read or wrote
        self._observed_record: dict | None = None
        self._observed_at = 0.0
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
        except BaseException:
            # Unreachable by design (every step catches its errors), but never lead unrenewed.
            log.exception("leader election stopped", extra=self._fields)
            self.metrics.loop_errors.labels("leader").inc()
            self._set_leader(False)
            await self._stop_lead(give_up_after=self.timeout)
            raise

    # ---- the two phases ------------------------------------------------------------

    async def _acquire(self) -> None:
        while True:
            if await self._attempt(self.timeout):
                self._set_leader(True)
                spec = (self._lease or {}).get("spec") or {}
                log.info("leadership acquired", extra={**self._fields, "transitions": spec.get("leaseTransitions")})
                self.metrics.leader_transitions.labels("acquired").inc()
                return
            # Jitter keeps peers that retry together from colliding every round.
            await asyncio.sleep(self.retry_period * random.uniform(1.0, 1.2))

    async def _lead_while_renewing(self, lead: Lead) -> None:
        self._lead_task = asyncio.create_task(
            run_restarting(lead, self.metrics, "leader-lead", max_delay=self.lease_duration), name="leader-lead"
        )
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
                holder = ((self._lease or {}).get("spec") or {}).get("holderIdentity")
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
                held = await self._try_acquire_or_renew(timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - API trouble: log, count, retry next period
            self.metrics.loop_errors.labels("leader").inc()
            log.warning("lease request failed", extra={**self._fields, "error": repr(exc)})
            return False
        if held:
            self._renewed_at = sent
        return held

    async def _try_acquire_or_renew(self, timeout: float) -> bool:
        if self._leading and self._lease is not None:
            # Fast path: renew from our own last write, skipping the GET.
            try:
                await self._write(self._lease, timeout)
                return True
            except KubeError as exc:
                if exc.status not in (404, 409):
                    raise
                self._lease = None  # changed or deleted behind our back: read it and decide below
        try:
            lease = await self.kube.send_json("GET", self.path, None, timeout)
        except KubeError as exc:
            if exc.status != 404:
                raise
            return await self._create(timeout)
        self._lease = lease
        self._observe(lease)
        holder = (lease.get("spec") or {}).get("holderIdentity")
        if holder and holder != self.identity and not self._expired(lease):
            return False
        try:
            await self._write(lease, timeout)
        except KubeError as exc:
            if exc.status == 409:
                return False  # a peer wrote first; it wins this round
            raise
        return True

    async def _create(self, timeout: float) -> bool:
        now = micro_time()
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self._duration_seconds(),
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        }
        path = self.path.rsplit("/", 1)[0]
        try:
            self._remember(await self.kube.send_json("POST", path, body, timeout))
        except KubeError as exc:
            if exc.status != 409:
                raise
            # A peer created it first: learn who, so a leader that saw its lease deleted steps down now.
            self._remember(await self.kube.send_json("GET", self.path, None, timeout))
            return False
        return True

    async def _write(self, lease: dict, timeout: float) -> None:
        """PUT the whole lease with us as holder, guarded by its resourceVersion."""
        old = lease.get("spec") or {}
        now = micro_time()
        ours = old.get("holderIdentity") == self.identity
        spec = {
            **old,
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self._duration_seconds(),
            "renewTime": now,
            "acquireTime": old.get("acquireTime") if ours and old.get("acquireTime") else now,
            "leaseTransitions": (old.get("leaseTransitions") or 0) + (0 if ours else 1),
        }
        self._remember(await self.kube.send_json("PUT", self.path, {**lease, "spec": spec}, timeout))

    def _remember(self, lease: dict) -> None:
        self._lease = lease
        self._observe(lease)

    def _duration_seconds(self) -> int:
        # The API takes whole seconds (> 0); round up so peers never wait less than we assume.
        return max(1, math.ceil(self.lease_duration))

    # ---- expiry, as client-go's observedTime ---------------------------------------

    def _observe(self, lease: dict) -> None:
        record = lease.get("spec") or {}
        if record == self._observed_record:
            return
        old_holder = (self._observed_record or {}).get("holderIdentity")
        self._observed_record = record
        self._observed_at = self.clock()
        holder = record.get("holderIdentity")
        if holder != old_holder and holder and holder != self.identity:
            log.info("leader observed", extra={**self._fields, "holder": holder})

    def _expired(self, lease: dict) -> bool:
        spec = lease.get("spec") or {}
        if not spec.get("holderIdentity"):
            return True  # released
        # The longer of ours and the holder's own duration: a peer configured with a
        # longer lease (mid-rollout) must not be cut short.
        duration = max(self.lease_duration, spec.get("leaseDurationSeconds") or 0)
        return self.clock() - self._observed_at >= duration

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
        return True

    async def _shutdown(self) -> None:
        was_leader = self._leading
        self._set_leader(False)
        if not await self._stop_lead(give_up_after=self.timeout):
            # Releasing now would let a peer lead while our lead still runs: let it expire instead.
            log.error("lead ignored cancellation; not releasing the lease", extra=self._fields)
            return
        holder = ((self._lease or {}).get("spec") or {}).get("holderIdentity")
        if not was_leader and holder != self.identity:
            return
        # A task of its own: this one is being cancelled, which would confuse the request timeouts.
        release = asyncio.create_task(self._release(), name="leader-release")
        try:
            done, _ = await asyncio.wait({release}, timeout=self.timeout * 2)
        finally:
            release.cancel()
        if not done:
            log.warning("lease release timed out", extra=self._fields)

    async def _release(self) -> None:
        """Hand the lease back (no holder, 1 s duration) so a peer takes over at once."""
        try:
            lease = self._lease
            for _ in range(2):
                if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                    lease = await self.kube.send_json("GET", self.path, None, self.timeout)
                    if (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                        log.info("lease not ours at shutdown; nothing to release", extra=self._fields)
                        return
                now = micro_time()
                spec = {
                    **(lease.get("spec") or {}),
                    "holderIdentity": None,
                    "leaseDurationSeconds": 1,
                    "renewTime": now,
                    "acquireTime": now,
                }
                try:
                    await self.kube.send_json("PUT", self.path, {**lease, "spec": spec}, self.timeout)
                except KubeError as exc:
                    if exc.status != 409:
                        raise
                    lease = None  # stale copy: read it again and retry once
                    continue
                self._lease = None
                log.info("lease released", extra=self._fields)
                self.metrics.leader_transitions.labels("released").inc()
                return
            log.warning("lease release kept conflicting; leaving it to expire", extra=self._fields)
        except Exception as exc:  # noqa: BLE001 - shutdown goes on; the lease expires on its own
            self.metrics.loop_errors.labels("leader").inc()
            log.warning("lease release failed", extra={**self._fields, "error": repr(exc)})
