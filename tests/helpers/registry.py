"""Reading a Metrics registry in-process, through prometheus-client's public API."""

from __future__ import annotations

from spot_extender.metrics import Metrics


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    """A sample's current value, 0.0 when it has not been recorded yet. Counters are named
    with their _total suffix, as /metrics shows them."""
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value
