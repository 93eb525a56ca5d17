"""Reading spot-extender's metrics through prometheus-client's public API: a running
process's /metrics text with its parser, or an in-process registry directly."""

from __future__ import annotations

from typing import Iterator, Protocol

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


class Serves(Protocol):
    def get(self, path: str) -> str: ...


def samples(text: str, name: str) -> Iterator[Sample]:
    """Every sample called `name` (e.g. 'x_total', 'x_bucket') in Prometheus text exposition."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                yield sample


def sample_value(text: str, name: str, labels: dict[str, str] | None = None) -> float | None:
    """The value of the sample `name` with exactly these labels, or None: what
    REGISTRY.get_sample_value answers in the process, read from the text instead."""
    if "{" in name:
        raise ValueError(f"labels go in `labels`, not in the name: {name}")
    wanted = labels or {}
    return next((s.value for s in samples(text, name) if s.labels == wanted), None)


def scrape(process: Serves, name: str, labels: dict[str, str] | None = None) -> float:
    """A sample's value from a running extender's /metrics; 0 while the series does not
    exist yet (a labelled counter appears on its first increment)."""
    value = sample_value(process.get("/metrics"), name, labels)
    return 0.0 if value is None else value


def scrape_sum(process: Serves, name: str) -> float:
    """The sum of a metric's samples over every label set in a running extender's /metrics."""
    return sum(s.value for s in samples(process.get("/metrics"), name))


def registry_value(metrics, name: str, **labels: str) -> float:
    """A sample's value in an in-process Metrics registry (unit tests); 0 while the
    series does not exist yet. Counters are named with their _total suffix."""
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value
