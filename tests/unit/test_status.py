import asyncio
from dataclasses import replace

import pytest

from spot_extender.assembly import build
from spot_extender.core.settings import Settings
from spot_extender.decisions.moves import MoveState, Moving
from spot_extender.serving.status import WorkloadState
from tests.perf.synthetic import populate

PLAIN = WorkloadState(kind="Deployment", namespace="shop", name="web", replicas=3, floor=1, floor_source="default",
                      floor_clamp=None, counted_group=None, on_demand=0, spot=0, in_flight=0, floor_role_pods=0,
                      spot_role_pods=0, floor_fallback=None, spot_seek=None, floor_met=False, controller=None)
MOVING = MoveState(Moving("return-to-spot", "uid-1"), None, 0, None, 12.5)
BACKING_OFF = MoveState(None, "no spot node has room", 2, "the replacement landed on on-demand again", 0.0)
EVERYTHING = replace(PLAIN, floor_clamp="its pods cannot run on any on-demand node", counted_group="ReplicaSet/web-1",
                     on_demand=1, spot=2, in_flight=1, floor_role_pods=1, spot_role_pods=2,
                     floor_fallback="2026-01-01T00:00:00Z", spot_seek="2026-01-01T00:01:00Z", floor_met=True,
                     controller=BACKING_OFF, surge_pods=2, surge_ready=1)


@pytest.mark.parametrize("state", [PLAIN, replace(PLAIN, controller=MOVING), EVERYTHING,
                                   replace(EVERYTHING, controller=None)])
def test_a_state_survives_its_json(state):
    assert WorkloadState.from_json(state.to_json()) == state


def test_the_json_keeps_the_wire_format():
    assert EVERYTHING.to_json() == {
        "kind": "Deployment", "namespace": "shop", "name": "web", "replicas": 3, "floor": 1,
        "floorSource": "default", "floorClamp": "its pods cannot run on any on-demand node",
        "countedGroup": "ReplicaSet/web-1", "onDemand": 1, "spot": 2, "inFlight": 1, "floorRolePods": 1,
        "spotRolePods": 2, "floorFallback": "2026-01-01T00:00:00Z", "spotSeek": "2026-01-01T00:01:00Z",
        "floorMet": True, "controller": {"moving": None, "lastSkip": "no spot node has room", "failedMoves": 2,
                                         "lastFailure": "the replacement landed on on-demand again",
                                         "nextMoveInSeconds": 0.0},
        "surgePods": 2, "surgeReady": 1}
    assert replace(PLAIN, controller=MOVING).to_json()["controller"]["moving"] == {"cause": "return-to-spot",
                                                                                   "pod": "uid-1"}


def test_a_newer_servers_extra_keys_are_left_alone():
    assert WorkloadState.from_json({**PLAIN.to_json(), "somethingNew": 1}) == PLAIN


def without(document: dict, key: str) -> dict:
    return {k: v for k, v in document.items() if k != key}


@pytest.mark.parametrize(("document", "message"), [
    ([], "a workload state is a JSON object, not list"),
    (without(PLAIN.to_json(), "floorMet"), "not a workload state shop/web: 'floorMet' is missing"),
    ({**PLAIN.to_json(), "replicas": "3"}, "'replicas' must be an integer, not a string"),
    ({**PLAIN.to_json(), "replicas": True}, "'replicas' must be an integer, not true or false"),
    ({**PLAIN.to_json(), "floorMet": 1}, "'floorMet' must be true or false, not an integer"),
    ({**PLAIN.to_json(), "floorClamp": 5}, "'floorClamp' must be a string or null, not an integer"),
    ({**PLAIN.to_json(), "name": None}, "not a workload state: 'name' must be a string, not null"),
    ({**PLAIN.to_json(), "controller": "idle"}, "'controller' must be an object or null, not a string"),
    ({**PLAIN.to_json(), "controller": without(MOVING.to_json(), "failedMoves")},
     "'controller': 'failedMoves' is missing"),
    ({**PLAIN.to_json(), "controller": {**MOVING.to_json(), "moving": {"cause": "return-to-spot"}}},
     "'controller': 'moving': 'pod' is missing"),
    ({**PLAIN.to_json(), "controller": {**MOVING.to_json(), "nextMoveInSeconds": "soon"}},
     "'nextMoveInSeconds' must be a number or an integer, not a string"),
])
def test_a_document_that_is_no_state_is_refused(document, message):
    with pytest.raises(ValueError) as refused:
        WorkloadState.from_json(document)
    assert message in str(refused.value)


def test_a_whole_number_of_seconds_reads_as_a_float():
    state = MoveState.from_json({**MOVING.to_json(), "nextMoveInSeconds": 3})
    assert state.next_move_in_seconds == 3.0 and isinstance(state.next_move_in_seconds, float)


async def test_a_large_document_is_built_in_chunks_and_shared():
    parts = build(Settings())
    populate(parts.index, 200, 6000)  # 300 workloads
    turns = []

    async def ticker():
        while True:
            turns.append(len(turns))
            await asyncio.sleep(0)

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    first, second = await asyncio.gather(parts.status.document(), parts.status.document())
    tick.cancel()
    assert len(first["workloads"]) == 300
    assert second["workloads"] is first["workloads"]  # the second request waited for the build and shared it
    assert len(turns) >= 3  # the event loop ran between chunks of the build
    # /metrics reads the same build, typed; /debug/workloads its JSON.
    states = await parts.status.states()
    assert [s.to_json() for s in states] == first["workloads"]
    assert states == parts.status.workloads()
