"""The parts one process is made of, built from settings before anything runs: shared by
`serve` and `status`."""

from __future__ import annotations

from dataclasses import dataclass

from .admitted import Admitted
from .extender import Extender
from .floors import Floors
from .index import KIND_NAMES, Index
from .inflight import InFlight
from .metrics import Metrics
from .nodes import NodeClassifier
from .settings import Settings
from .status import Status
from .webhook import Webhook


@dataclass
class Parts:
    """What one process is made of, before anything runs."""

    settings: Settings
    metrics: Metrics
    index: Index
    floors: Floors
    extender: Extender
    webhook: Webhook
    status: Status


def build(settings: Settings) -> Parts:
    metrics = Metrics()
    expired = metrics.unverified.labels("admission", "expired")
    admitted = Admitted(settings.admission_ttl, on_unconfirmed=lambda group: expired.inc())
    inflight = InFlight(settings.inflight_ttl, on_unconfirmed=lambda group, reason: metrics.unverified.labels(
        "inflight", reason).inc())
    index = Index(NodeClassifier(settings), inflight, admitted=admitted)
    metrics.track_index_sizes(index.sizes, (*KIND_NAMES, "InFlight", "Admitted"))
    metrics.track_watches(index.freshness.down_for, KIND_NAMES)
    floors = Floors(index, settings)
    return Parts(settings, metrics, index, floors, Extender(index, floors, settings, metrics),
                 Webhook(index, floors, settings, metrics), Status(index, floors, settings))
