import argparse

import pytest

from spot_extender import status_command
from spot_extender.core.settings import Settings
from spot_extender.serving.status_table import last_action, report, row, select, summary_line, table


def state(name, replicas, floor, on_demand, spot, namespace="shop", controller=None, clamp=None, source="default"):
    return {"kind": "Deployment", "namespace": namespace, "name": name, "replicas": replicas, "floor": floor,
            "floorSource": source, "floorClamp": clamp, "onDemand": on_demand, "spot": spot, "floorRolePods": floor,
            "spotRolePods": replicas - floor, "floorMet": on_demand >= floor, "controller": controller}


WEB = state("web", 10, 2, 2, 8, source="pdb minAvailable")
API = state("api", 4, 1, 3, 1, namespace="core")
BROKEN = state("solo", 1, 1, 0, 1)


@pytest.mark.parametrize(("controller", "expected"), [
    (None, "-"),
    ({"moving": None, "lastSkip": None, "failedMoves": 0, "nextMoveInSeconds": 0}, "none"),
    ({"moving": {"cause": "floor-repair", "pod": "u1"}, "lastSkip": "x"}, "moving: floor-repair"),
    ({"moving": None, "lastSkip": "no spot node has room"}, "skipped: no spot node has room"),
])
def test_last_action(controller, expected):
    assert last_action({"controller": controller}) == expected


def test_row_and_table():
    assert row(WEB) == ["Deployment", "shop/web", "10", "2", "pdb minAvailable", "2", "8", "2", "8", "met", "-"]
    clamped = row(state("big", 2, 2, 1, 1, clamp="k clamped to R"))
    assert clamped[4] == "default (clamped: k clamped to R)" and clamped[9] == "UNMET"
    lines = table([WEB, API]).splitlines()
    assert lines[0].split() == ["KIND", "NAMESPACE/NAME", "R", "K", "WHY", "FLOOR-ROLE", "SPOT-ROLE", "ON-DEMAND",
                                "SPOT", "FLOOR", "LAST", "ACTION"]
    assert len(lines) == 3 and len({line.index("NAMESPACE/NAME") if i == 0 else line.index("shop/web" if i == 1
                                    else "core/api") for i, line in enumerate(lines)}) == 1  # columns line up


@pytest.mark.parametrize(("states", "namespace", "code", "share", "cost", "all_on_demand"), [
    ([WEB, API], None, 0, 9 / 11, 5 + 9 * 0.3, 14),
    ([WEB, API, BROKEN], None, 1, 10 / 11, 5 + 10 * 0.3, 15),
    ([WEB, API, BROKEN], "core", 0, 1 / 3, 3 + 0.3, 4),
    ([WEB, API, BROKEN], "elsewhere", 0, None, 0, 0),
])
def test_report_exit_code_and_summary(states, namespace, code, share, cost, all_on_demand):
    document, exit_code = report(select(states, namespace), 0.3)
    assert exit_code == code
    s = document["summary"]
    assert s["spotShare"] == (pytest.approx(share) if share is not None else None)
    assert s["hourlyCost"] == pytest.approx(cost) and s["hourlyCostAllOnDemand"] == all_on_demand
    assert s["floorsUnmet"] == code


def test_summary_line():
    document, _ = report([WEB, BROKEN], 0.3)
    line = summary_line(document["summary"])
    assert line.startswith("2 workloads, 1 below their floor; spot share of what the floors allow: 1.12 (9 of 8)")
    assert "estimated hourly cost: 4.7 on-demand replica-hours against 11 all on on-demand, 57% saved" in line
    empty, _ = report([], 0.3)
    assert "n/a (the floors allow no spot)" in summary_line(empty["summary"])


def test_client_certificate_needs_its_key(capsys):
    args = argparse.Namespace(client_cert="c.pem", client_key=None, url="https://x", timeout=5.0)
    assert status_command.run(args, Settings()) == status_command.FAILED
    assert "--client-cert and --client-key go together" in capsys.readouterr().err
