"""The parts one process is made of, built from settings before anything runs: shared by
`serve` and `status`."""

from __future__ import annotations

from dataclasses import dataclass

from .cluster.admitted import Admitted
from .serving.extender import Extender
from .decisions.floors import Floors
from .cluster.index import KIND_NAMES, Index
from .cluster.inflight import InFlight
from .core.metrics import Metrics
from .cluster.nodes import NodeClassifier
from .core.settings import Settings
from .serving.status import Status
from .serving.webhook import Webhook


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
