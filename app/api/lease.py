"""One coordination.k8s.io/v1 Lease as this replica knows it, with client-go's rules for
when a peer's hold has expired. The elector (leader.py) decides when to call it.

- A peer's lease counts as expired only once its record has not changed for the lease
  duration as timed by OUR monotonic clock from when we first saw it (client-go's
  observedTime), so wall-clock skew between replicas cannot shorten it.
- Every write is a PUT guarded by resourceVersion, so of two racing replicas one gets
  a 409 and simply does not lead this round.
"""

from __future__ import annotations

import math
from typing import Callable

from ..core import logs
from . import Kube, StatusError, micro_time

log = logs.get("leader")


class LeaseRecord:
    def __init__(self, kube: Kube, namespace: str, name: str, identity: str, lease_duration: float,
                 clock: Callable[[], float]):
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.clock = clock
        self._lease: dict | None = None  # the last version we read or wrote
        self._observed_record: dict | None = None
        self._observed_at = 0.0

    @property
    def _fields(self) -> dict:
        return {"lease": f"{self.namespace}/{self.name}", "identity": self.identity}

    @property
    def spec(self) -> dict:
        return (self._lease or {}).get("spec") or {}

    @property
    def holder(self) -> str | None:
        return self.spec.get("holderIdentity")

    async def acquire_or_renew(self, leading: bool, timeout: float) -> bool:
        """One try; False if a peer holds it (or wins the race). API failures raise."""
        if leading and self._lease is not None:
            # Fast path: renew from our own last write, skipping the GET.
            try:
                await self._write(self._lease, timeout)
                return True
            except StatusError as exc:
                if exc.status not in (404, 409):
                    raise
                self._lease = None  # changed or deleted behind our back: read it and decide below
        try:
            lease = await self.kube.get_lease(self.namespace, self.name, timeout)
        except StatusError as exc:
            if exc.status != 404:
                raise
            return await self._create(timeout)
        self._remember(lease)
        holder = self.holder
        if holder and holder != self.identity and not self._expired(lease):
            return False
        try:
            await self._write(lease, timeout)
        except StatusError as exc:
            if exc.status == 409:
                return False  # a peer wrote first; it wins this round
            raise
        return True

    async def release(self, timeout: float) -> bool:
        """Hand the lease back (no holder, 1 s duration) so a peer takes over at once.
        False if it was not ours or kept conflicting; API failures raise."""
        lease = self._lease
        for _ in range(2):
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                lease = await self.kube.get_lease(self.namespace, self.name, timeout)
                if (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                    log.info("lease not ours at shutdown; nothing to release", extra=self._fields)
                    return False
            now = micro_time()
            spec = {
                **(lease.get("spec") or {}),
                "holderIdentity": None,
                "leaseDurationSeconds": 1,
                "renewTime": now,
                "acquireTime": now,
            }
            try:
                await self.kube.replace_lease(lease, spec, timeout)
            except StatusError as exc:
                if exc.status != 409:
                    raise
                lease = None  # stale copy: read it again and retry once
                continue
            self._lease = None
            return True
        log.warning("lease release kept conflicting; leaving it to expire", extra=self._fields)
        return False

    async def _create(self, timeout: float) -> bool:
        now = micro_time()
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self._duration_seconds(),
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": 0,
        }
        try:
            self._remember(await self.kube.create_lease(self.namespace, self.name, spec, timeout))
        except StatusError as exc:
            if exc.status != 409:
                raise
            # A peer created it first: learn who, so a leader that saw its lease deleted steps down now.
            self._remember(await self.kube.get_lease(self.namespace, self.name, timeout))
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
        self._remember(await self.kube.replace_lease(lease, spec, timeout))

    def _remember(self, lease: dict) -> None:
        self._lease = lease
        self._observe(lease)

    def _duration_seconds(self) -> int:
        # The API takes whole seconds (> 0); round up so peers never wait less than we assume.
        return max(1, math.ceil(self.lease_duration))

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
