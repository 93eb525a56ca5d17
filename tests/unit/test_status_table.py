import argparse

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from spot_extender import status_command
from spot_extender.core.settings import Settings
from spot_extender.decisions.moves import MoveState, Moving
from spot_extender.serving.status import WorkloadState
from spot_extender.serving.status_table import last_action, report, row, select, summary_line, table


def state(name, replicas, floor, on_demand, spot, namespace="shop", controller=None, clamp=None, source="default"):
    return WorkloadState(kind="Deployment", namespace=namespace, name=name, replicas=replicas, floor=floor,
                         floor_source=source, floor_clamp=clamp, counted_group=None, on_demand=on_demand, spot=spot,
                         in_flight=0, floor_role_pods=floor, spot_role_pods=replicas - floor, floor_fallback=None,
                         spot_seek=None, floor_met=on_demand >= floor, controller=controller)


WEB = state("web", 10, 2, 2, 8, source="pdb minAvailable")
API = state("api", 4, 1, 3, 1, namespace="core")
BROKEN = state("solo", 1, 1, 0, 1)


@pytest.mark.parametrize(("controller", "expected"), [
    (None, "-"),
    (MoveState(None, None, 0, None, 0.0), "none"),
    (MoveState(Moving("floor-repair", "u1"), "x", 0, None, 0.0), "moving: floor-repair"),
    (MoveState(None, "no spot node has room", 0, None, 0.0), "skipped: no spot node has room"),
    (MoveState(None, None, 2, "it landed on on-demand again", 61.6),
     "backing off after 2 failed move(s), next in 62s: it landed on on-demand again"),
])
def test_last_action(controller, expected):
    assert last_action(state("web", 1, 1, 1, 0, controller=controller)) == expected


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


def test_report_shows_each_workload_as_debug_workloads_does():
    moving = state("web", 10, 2, 2, 8, controller=MoveState(Moving("return-to-spot", "u1"), None, 0, None, 30.0))
    document, _ = report([moving, API], 0.3)
    assert document["workloads"] == [moving.to_json(), API.to_json()]
    assert document["workloads"][0]["controller"] == {"moving": {"cause": "return-to-spot", "pod": "u1"},
                                                      "lastSkip": None, "failedMoves": 0, "lastFailure": None,
                                                      "nextMoveInSeconds": 30.0}


def test_summary_line():
    document, _ = report([WEB, BROKEN], 0.3)
    line = summary_line(document["summary"])
    assert line.startswith("2 workloads, 1 below their floor; spot share of what the floors allow: 1.12 (9 of 8)")
    assert "estimated hourly cost: 4.7 on-demand replica-hours against 11 all on on-demand, 57% saved" in line
    empty, _ = report([], 0.3)
    assert "n/a (the floors allow no spot)" in summary_line(empty["summary"])


def test_client_certificate_needs_its_key(capsys):
    args = argparse.Namespace(client_cert="c.pem", client_key=None, url="https://x", timeout=5.0)
    assert status_command.run(args, Settings()) == status_command.USAGE
    assert "--client-cert and --client-key go together" in capsys.readouterr().err


async def test_states_from_a_running_instance_are_typed_and_a_bad_one_refused():
    views = {"/good/debug/workloads": {"leader": True, "workloads": [WEB.to_json()]},
             "/bad/debug/workloads": {"leader": True, "workloads": [{**WEB.to_json(), "floorMet": "yes"}]}}

    async def debug_workloads(request):
        return web.json_response(views[request.path])

    app = web.Application()
    app.router.add_get("/{which}/debug/workloads", debug_workloads)
    async with TestServer(app) as server:
        url = str(server.make_url(""))
        good = argparse.Namespace(url=url + "/good", timeout=5.0)
        assert await status_command.states_from_url(good) == [WEB]
        with pytest.raises(ValueError, match="not a workload state shop/web: 'floorMet' must be true or false"):
            await status_command.states_from_url(argparse.Namespace(url=url + "/bad", timeout=5.0))
