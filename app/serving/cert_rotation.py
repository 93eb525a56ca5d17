"""Self-managed webhook certificates: every replica keeps the serving pair it serves, the
Secret that holds it and the MutatingWebhookConfiguration's caBundle in step.

The Secret is the one place replicas agree: each reads it, and writes what app/decisions/certs.py
plans only with the resourceVersion it read, so of two replicas racing one write wins
and the other reads and serves that one. The caBundle is set from the Secret by
whichever replica sees it differ. RBAC names both objects; the Secret ships empty.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from typing import Callable

from ..api import MUTATING_WEBHOOKS, SECRETS, ApiError, Kube, StatusError
from ..core import logs
from ..core.metrics import Metrics
from ..decisions import certs
from .tls import ReloadingTLS

log = logs.get("certificates")

CONFLICT_RETRIES = 3


class CertificateUnavailable(ApiError):
    """The Secret cannot be read or written: the webhook has no certificate to serve."""


class CertRotation:
    def __init__(self, kube: Kube, tls: ReloadingTLS, metrics: Metrics, namespace: str, secret: str,
                 webhook_configuration: str, hosts: tuple[str, ...], lifetimes: certs.Lifetimes,
                 timeout: float, clock: Callable[[], dt.datetime] | None = None):
        self.kube = kube
        self.tls = tls
        self.metrics = metrics
        self.namespace = namespace
        self.secret = secret
        self.webhook_configuration = webhook_configuration
        self.hosts = hosts
        self.lifetimes = lifetimes
        self.timeout = timeout
        self.clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self._warned_missing_configuration = False

    @property
    def interval(self) -> float:
        """How often the Secret is read: a tenth of a certificate's life, 1 s to 1 min."""
        return min(60.0, max(1.0, self.lifetimes.cert.total_seconds() / 10))

    async def run(self) -> None:
        """Runs under the supervisor, which logs, counts and backs off a failed pass."""
        while True:
            await self.sync()
            await asyncio.sleep(self.interval)

    async def sync(self) -> None:
        """One pass: the Secret renewed if due, its pair served, its CAs published."""
        for attempt in range(CONFLICT_RETRIES):
            secret = await self._read_secret()
            current = certs.Material.of(_decoded(secret.get("data")))
            published = await self._published()
            plan = certs.plan(current, self.hosts, self.clock(), self.lifetimes, published)
            if plan.renewed:
                try:
                    secret = await self.kube.replace(SECRETS, {**secret, "data": {
                        **(secret.get("data") or {}), **_encoded(plan.material.data())}},
                                                     self.timeout)
                except StatusError as exc:
                    if exc.status == 409 and attempt < CONFLICT_RETRIES - 1:
                        continue  # another replica wrote first: serve what it wrote
                    raise CertificateUnavailable(f"cannot update Secret {self._secret_ref}: {exc}") from None
                for what in plan.renewed:
                    self.metrics.certificates_issued.labels(what).inc()
                log.info("webhook certificate issued", extra={
                    "secret": self._secret_ref, "renewed": list(plan.renewed),
                    "expires": str(certs.not_after(plan.material.cert))})
            elif plan.waiting:
                log.info("webhook certificate renewal waits", extra={"reason": plan.waiting})
            self._serve(plan.material)
            await self._publish(plan.material.ca_bundle)
            return

    def _serve(self, material: certs.Material) -> None:
        if self.tls.install(material.cert, material.key):
            expiry = certs.not_after(material.cert)
            if expiry is not None:
                self.metrics.certificate_expiry.set(expiry.timestamp())
            log.info("serving the webhook certificate from the Secret", extra={"expires": str(expiry)})

    async def _read_secret(self) -> dict:
        try:
            return await self.kube.get(SECRETS, self.namespace, self.secret, self.timeout)
        except StatusError as exc:
            hint = " (it ships empty with the chart and k8s/overlays/webhook; create it: " \
                   f"kubectl -n {self.namespace} create secret generic {self.secret})" if exc.status == 404 else ""
            raise CertificateUnavailable(f"cannot read Secret {self._secret_ref}: {exc}{hint}") from None

    async def _configuration(self) -> dict | None:
        if not self.webhook_configuration:
            return None
        try:
            return await self.kube.get(MUTATING_WEBHOOKS, "", self.webhook_configuration, self.timeout)
        except StatusError as exc:
            if exc.status != 404:
                raise
            if not self._warned_missing_configuration:
                self._warned_missing_configuration = True
                log.warning("no MutatingWebhookConfiguration to give the CA to",
                            extra={"name": self.webhook_configuration})
            return None

    async def _published(self) -> frozenset[bytes] | None:
        """The CAs every webhook of the configuration trusts; None when there is no configuration."""
        configuration = await self._configuration()
        if configuration is None:
            return None
        bundles = [base64.b64decode(h.get("clientConfig", {}).get("caBundle") or "")
                   for h in configuration.get("webhooks") or ()]
        trusted = [certs.fingerprints(b) for b in bundles]
        return frozenset.intersection(*trusted) if trusted else frozenset()

    async def _publish(self, bundle: bytes) -> None:
        encoded = base64.b64encode(bundle).decode()
        for attempt in range(CONFLICT_RETRIES):
            configuration = await self._configuration()
            if configuration is None:
                return
            hooks = configuration.get("webhooks") or []
            if all(h.get("clientConfig", {}).get("caBundle") == encoded for h in hooks):
                return
            for hook in hooks:
                hook.setdefault("clientConfig", {})["caBundle"] = encoded
            try:
                await self.kube.replace(MUTATING_WEBHOOKS, configuration, self.timeout)
            except StatusError as exc:
                if exc.status == 409 and attempt < CONFLICT_RETRIES - 1:
                    continue
                raise
            log.info("webhook caBundle updated", extra={"configuration": self.webhook_configuration,
                                                        "cas": len(certs.fingerprints(bundle))})
            return

    @property
    def _secret_ref(self) -> str:
        return f"{self.namespace}/{self.secret}"


def _decoded(data: dict | None) -> dict[str, bytes]:
    out = {}
    for key, value in (data or {}).items():
        try:
            out[key] = base64.b64decode(value or "", validate=True)
        except ValueError:
            out[key] = b""  # unreadable: treated as missing, so it is issued anew
    return out


def _encoded(data: dict[str, bytes]) -> dict[str, str]:
    return {key: base64.b64encode(value).decode() for key, value in data.items()}
