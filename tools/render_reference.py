"""Render the metrics tables of docs/reference.md from the code that exports them.

The process's own metrics come from spot_extender.core.metrics (name, type, labels, help);
the fleet metrics from the FleetCollector, asked for one workload. The tables sit between
`<!-- generated:NAME -->` and `<!-- end:NAME -->` markers; the prose around them is written
by hand. tests/unit/test_docs.py checks the page is current.

    .venv/bin/python tools/render_reference.py --write   # regenerate the tables
    .venv/bin/python tools/render_reference.py --check   # exit 1 when they are out of date
"""

from __future__ import annotations

import pathlib
import sys

from spot_extender.core.metrics import Metrics
from spot_extender.serving.fleet import FleetCollector
from spot_extender.serving.status import WorkloadState

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools import generated  # noqa: E402

DOC = ROOT / "docs" / "reference.md"
REGENERATE = ".venv/bin/python tools/render_reference.py --write"


def process_metrics() -> list[tuple[str, str, list[str], str]]:
    """(name as scraped, type, labels, help) of every metric core.metrics registers."""
    rows = []
    for collector in Metrics().registry._collector_to_names:  # the collectors, with their label names
        name = collector._name + ("_total" if collector._type == "counter" else "")
        rows.append((name, collector._type, list(collector._labelnames), collector._documentation))
    return sorted(rows)


def fleet_metrics() -> list[tuple[str, str, list[str], str]]:
    """The same for the fleet collector, per-workload series on, as one workload shows them."""
    collector = FleetCollector(spot_price_ratio=0.3, per_workload=True)
    collector.update([WorkloadState(kind="Deployment", namespace="shop", name="web", replicas=3, floor=1,
                                    floor_source="default", floor_clamp=None, counted_group="ReplicaSet/web-1",
                                    on_demand=1, spot=2, in_flight=0, floor_role_pods=1, spot_role_pods=2,
                                    floor_fallback=None, spot_seek=None, floor_met=True, controller=None)])
    rows = []
    for family in collector.collect():
        labels = sorted({key for sample in family.samples for key in sample.labels})
        rows.append((family.name, family.type, labels, family.documentation))
    return sorted(rows)


def table(rows) -> str:
    lines = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    for name, kind, labels, documentation in rows:
        shown = ", ".join(f"`{label}`" for label in labels) or "none"
        lines.append(f"| `{name}` | {kind} | {shown} | {generated.cell(documentation)} |")
    return "\n".join(lines)


def render(text: str) -> str:
    text = generated.fill(text, "process-metrics", table(process_metrics()))
    return generated.fill(text, "fleet-metrics", table(fleet_metrics()))


if __name__ == "__main__":
    sys.exit(generated.main(DOC, render, REGENERATE, sys.argv[1:]))
