"""What the throughput benchmark reads off the processes it runs: CPU time from /proc,
latency histograms from spot-extender's and kube-scheduler's /metrics."""

from __future__ import annotations

import os
import ssl
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.cluster.controlplane import ControlPlane
from tests.helpers.metrics import samples


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus' histogram_quantile over (upper bound, cumulative count) pairs."""
    buckets = sorted(buckets)
    total = buckets[-1][1] if buckets else 0
    if not total:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if upper == float("inf"):
                return lower
            return lower + (upper - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = upper, count
    return lower


def extender_latency(metrics_text: str) -> dict:
    """p50/p99 in ms per verb (and "admission" for the webhook), and the call count, from
    spot-extender's request histograms."""
    per_verb: dict[str, list[tuple[float, float]]] = {}
    for sample in samples(metrics_text, "spot_extender_request_duration_seconds_bucket"):
        per_verb.setdefault(sample.labels["verb"], []).append((float(sample.labels["le"]), sample.value))
    for sample in samples(metrics_text, "spot_extender_admission_duration_seconds_bucket"):
        per_verb.setdefault("admission", []).append((float(sample.labels["le"]), sample.value))
    out = {}
    for verb, buckets in per_verb.items():
        p50, p99 = histogram_quantile(0.5, buckets), histogram_quantile(0.99, buckets)
        out[verb] = {"calls": int(max(c for _, c in buckets)),
                     "p50_ms": round(p50 * 1000, 3) if p50 is not None else None,
                     "p99_ms": round(p99 * 1000, 3) if p99 is not None else None}
    return out


WEBHOOK_SECONDS = "apiserver_admission_webhook_admission_duration_seconds"


@dataclass
class WebhookAdmissions:
    """kube-apiserver's own account of one mutating webhook: its duration histogram summed
    over operations, and how often it failed open or was rejected."""

    buckets: dict[float, float] = field(default_factory=dict)  # upper bound: cumulative count
    failed_open: float = 0.0
    rejected: float = 0.0

    def minus(self, before: "WebhookAdmissions") -> "WebhookAdmissions":
        return WebhookAdmissions({le: n - before.buckets.get(le, 0.0) for le, n in self.buckets.items()},
                                 self.failed_open - before.failed_open, self.rejected - before.rejected)

    def figures(self) -> dict:
        pairs = sorted(self.buckets.items())
        total = pairs[-1][1] if pairs else 0
        p50, p99 = histogram_quantile(0.5, pairs), histogram_quantile(0.99, pairs)

        def share(bound: float) -> float | None:
            return round(self.buckets[bound] / total, 4) if total and bound in self.buckets else None

        return {"admissions": int(total), "failed_open": int(self.failed_open), "rejected": int(self.rejected),
                "p50_ms": round(p50 * 1000, 2) if p50 is not None else None,
                "p99_ms": round(p99 * 1000, 2) if p99 is not None else None,
                "share_under_5ms": share(0.005), "share_under_25ms": share(0.025),
                "buckets_ms": [round(le * 1000, 1) for le, _ in pairs if le != float("inf")]}


def webhook_admissions(apiserver_metrics: str, hook: str) -> WebhookAdmissions:
    out = WebhookAdmissions()
    for sample in samples(apiserver_metrics, WEBHOOK_SECONDS + "_bucket"):
        if sample.labels.get("name") == hook and sample.labels.get("type") == "admit":
            le = float(sample.labels["le"])
            out.buckets[le] = out.buckets.get(le, 0.0) + sample.value
    for name, attr in (("apiserver_admission_webhook_fail_open_count", "failed_open"),
                       ("apiserver_admission_webhook_rejection_count", "rejected")):
        total = sum(s.value for s in samples(apiserver_metrics, name) if s.labels.get("name") == hook)
        setattr(out, attr, total)
    return out


def loop_lag(after: str, before: str = "") -> dict:
    """spot-extender's event-loop lag between two scrapes of its /metrics: the p99 by its
    histogram's buckets, and the largest of the last minute, in ms."""
    def buckets(text: str) -> dict[float, float]:
        return {float(s.labels["le"]): s.value for s in samples(text, "spot_extender_event_loop_lag_seconds_bucket")}

    earlier = buckets(before) if before else {}
    pairs = [(le, n - earlier.get(le, 0.0)) for le, n in buckets(after).items()]
    p99 = histogram_quantile(0.99, pairs)
    largest = next(samples(after, "spot_extender_event_loop_lag_max_seconds"), None)
    return {"samples": int(max((c for _, c in pairs), default=0)),
            "p99_ms": round(p99 * 1000, 2) if p99 is not None else None,
            "max_ms": round(largest.value * 1000, 2) if largest is not None else None}


def cpu_seconds(cluster: ControlPlane) -> dict[str, float]:
    """CPU time used so far by each running component, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, component in cluster.components.items():
        if component.process is None:
            continue
        try:
            fields = Path(f"/proc/{component.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return out


def scheduling_cycle(cluster: ControlPlane) -> dict | None:
    """kube-scheduler's own time per pod to pick a node (filters, scores and extender calls:
    the serial part of its cycle), from its scheduler_scheduling_algorithm_duration_seconds."""
    try:
        with urllib.request.urlopen(f"{cluster.scheduler_url}/metrics", timeout=10,
                                    context=ssl._create_unverified_context()) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    buckets = [(float(s.labels["le"]), s.value)
               for s in samples(text, "scheduler_scheduling_algorithm_duration_seconds_bucket")]
    if not buckets:
        return None
    p50, p99 = histogram_quantile(0.5, buckets), histogram_quantile(0.99, buckets)
    total = next(samples(text, "scheduler_scheduling_algorithm_duration_seconds_sum")).value
    count = int(max(c for _, c in buckets))
    return {"attempts": count, "mean_ms": round(total / count * 1000, 3) if count else None,
            "p50_ms": round(p50 * 1000, 3) if p50 is not None else None,
            "p99_ms": round(p99 * 1000, 3) if p99 is not None else None}
