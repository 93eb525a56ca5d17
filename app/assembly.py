"""The one place that builds the process from settings, before anything runs: the API
client, the watches, the index, the webhook, the extender, the controller, the leader
elector, the status view and the fleet collector, all owned by one Supervisor. `serve`
and `status` share it; tests build the same parts with a stand-in for Kube."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
import ssl
from dataclasses import dataclass

from .api import ApiError, Kube
from .api.kinds import KIND_NAMES, WATCHED
from .cluster.admitted import Admitted
from .cluster.index import Index
from .cluster.inflight import InFlight
from .cluster.nodes import NodeClassifier
from .cluster.reflector import Reflector
from .controller import Controller
from .controller.leader import LeaderElector
from .core.answering import Answering
from .core.metrics import Metrics
from .core.settings import Settings
from .core.supervisor import Supervisor
from .decisions import certs
from .decisions.floors import Floors
from .serving.cert_rotation import CertRotation
from .serving.extender import Extender
from .serving.fleet import FleetCollector
from .serving.status import Status
from .serving.tls import ReloadingTLS
from .serving.webhook import Webhook


class StartupError(Exception):
    """A setting that parsed but cannot be used: files that do not load."""


@dataclass
class Parts:
    """What one process is made of, before anything runs."""

    settings: Settings
    metrics: Metrics
    supervisor: Supervisor  # owns every background task; the controller and elector have child scopes
    kube: Kube  # opened by whoever runs the parts
    index: Index
    reflectors: list[Reflector]
    floors: Floors
    extender: Extender
    webhook: Webhook
    controller: Controller
    elector: LeaderElector | None  # None without --leader-elect: this replica runs the loops
    status: Status
    fleet: FleetCollector
    tls: ReloadingTLS | None  # None: plain HTTP
    certificates: CertRotation | None  # with --webhook-cert-secret, served over `tls`
    answering: Answering  # calls open now: the watches yield to them


def build(settings: Settings, kube: Kube | None = None, tls: ReloadingTLS | None = None) -> Parts:
    """`tls`: see serving_tls; `serve` loads it first, so that files that do not load stop it early."""
    metrics = Metrics()
    supervisor = Supervisor(metrics, settings.backoff_max, quiet=(ApiError,))
    kube = kube or Kube(None, settings.kubeconfig, settings.context)
    expired = metrics.unverified.labels("admission", "expired")
    admitted = Admitted(settings.admission_ttl, on_unconfirmed=lambda group: expired.inc())
    inflight = InFlight(settings.inflight_ttl, on_unconfirmed=lambda group, reason: metrics.unverified.labels(
        "inflight", reason).inc())
    index = Index(NodeClassifier(settings), inflight, admitted=admitted)
    metrics.track_index_sizes(index.sizes, (*KIND_NAMES, "InFlight", "Admitted"))
    metrics.track_watches(index.freshness.down_for, KIND_NAMES)
    floors = Floors(index, settings)
    controller = Controller(kube, index, floors, settings, metrics, supervisor.child("controller"))
    elector = None
    if settings.leader_elect:
        elector = LeaderElector(
            kube, lease_namespace(settings), settings.lease_name, identity(settings), settings.lease_duration,
            settings.renew_deadline, settings.retry_period, metrics, tasks=supervisor.child("leader"),
        )
    fleet = FleetCollector(settings.spot_price_ratio, settings.per_workload_metrics)
    metrics.registry.register(fleet)
    answering = Answering()
    return Parts(
        settings, metrics, supervisor, kube, index,
        [Reflector(kube, kind, index, settings, metrics, answering) for kind in WATCHED],
        floors, Extender(index, floors, settings, metrics), Webhook(index, floors, settings, metrics),
        controller, elector, Status(index, floors, settings, leadership=elector, controller=controller), fleet,
        tls, certificate_rotation(settings, kube, tls, metrics) if settings.webhook_cert_secret and tls else None,
        answering,
    )


def serving_tls(settings: Settings) -> ReloadingTLS | None:
    """The HTTPS context, from files or empty until the self-managed certificate comes;
    None for plain HTTP."""
    if settings.webhook_cert_secret:
        try:
            return ReloadingTLS.self_managed(settings.tls_client_ca_file)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise StartupError(f"--tls-client-ca-file: cannot load: {exc}") from None
    if settings.tls_cert_file:
        try:
            return ReloadingTLS(settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise StartupError(f"--tls-cert-file/--tls-key-file/--tls-client-ca-file: cannot load: {exc}") from None
    return None


def certificate_rotation(settings: Settings, kube: Kube, tls: ReloadingTLS, metrics: Metrics) -> CertRotation:
    namespace = own_namespace()
    return CertRotation(
        kube, tls, metrics, namespace, settings.webhook_cert_secret, settings.webhook_configuration,
        settings.cert_hosts or certs.default_hosts("spot-extender", namespace),
        certs.Lifetimes(dt.timedelta(seconds=settings.cert_validity), dt.timedelta(seconds=settings.ca_validity)),
        settings.request_timeout,
    )


def own_namespace() -> str:
    return os.environ.get("POD_NAMESPACE") or "kube-system"


def lease_namespace(settings: Settings) -> str:
    return settings.lease_namespace or own_namespace()


def identity(settings: Settings) -> str:
    # The random suffix keeps a restarted pod (same name) from inheriting its old lease.
    return settings.identity or f"{os.environ.get('POD_NAME') or socket.gethostname()}-{secrets.token_hex(3)}"
