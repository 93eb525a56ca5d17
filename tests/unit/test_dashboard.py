"""docs/grafana/spot-extender.json: well formed, and every series it queries is one this
process exports (a renamed metric must not leave the dashboard blank)."""

import json
import re
from pathlib import Path

from spot_extender.assembly import build
from spot_extender.core.settings import Settings
from spot_extender.serving.fleet import FleetCollector
from spot_extender.serving.status import WorkloadState

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "spot-extender.json"
SUFFIXES = ("", "_total", "_bucket", "_count", "_sum", "_created")


def exported_names() -> set[str]:
    parts = build(Settings())
    fleet = FleetCollector(0.3, per_workload=True)
    fleet.update([WorkloadState(kind="Deployment", namespace="n", name="w", replicas=2, floor=1,
                                floor_source="default", floor_clamp=None, counted_group=None, on_demand=1, spot=1,
                                in_flight=0, floor_role_pods=1, spot_role_pods=1, floor_fallback=None,
                                spot_seek=None, floor_met=True, controller=None)])
    parts.metrics.registry.register(fleet)
    return {family.name + suffix for family in parts.metrics.registry.collect() for suffix in SUFFIXES}


def test_dashboard_is_well_formed():
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and dashboard["uid"] == "spot-extender"
    for panel in dashboard["panels"]:
        assert panel["targets"] and {"x", "y", "w", "h"} <= panel["gridPos"].keys(), panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]


def test_every_queried_series_is_exported():
    exported = exported_names()
    queried = {name for panel in json.loads(DASHBOARD.read_text())["panels"] for target in panel["targets"]
               for name in re.findall(r"\bspot_extender_[a-z_]+", target["expr"])}
    assert queried and queried <= exported, f"not exported: {sorted(queried - exported)}"


def test_eviction_and_hold_series_exist_before_the_first_event():
    """rate() counts nothing for the event that creates a series: the dashboard would miss
    the first reclaim of a fresh process."""
    from spot_extender.core.metrics import Metrics
    from spot_extender.decisions.moves import FLOOR_REPAIR, RECLAIM, RETURN_TO_SPOT

    text = "\n".join(f"{s.name}{s.labels}" for family in Metrics().registry.collect() for s in family.samples)
    for cause in (RECLAIM, FLOOR_REPAIR, RETURN_TO_SPOT):
        assert f"spot_extender_evictions_total{{'cause': '{cause}', 'result': 'evicted'}}" in text
    for result in ("started", "ended", "expired"):
        assert f"spot_extender_floor_holds_total{{'result': '{result}'}}" in text
