import pytest

from spot_extender.decisions.moves import (
    FLOOR_COST,
    FLOOR_REPAIR,
    RETURN_TO_SPOT,
    SPOT_COST,
    SURPLUS_COST,
    Hysteresis,
    Move,
    MoveHistory,
    RateLimit,
    Replica,
    Skip,
    WorkloadView,
    deletion_costs,
    plan_move,
)


def rep(name, capacity, node=None, ready=True, created=None):
    node = f"{capacity}-node-{name}" if node is None else node
    return Replica(name, "ns", name, node, capacity, ready, 100, 1 << 20,
                   created or f"2026-01-01T00:00:{name[-1]}0Z")


def view(pods, replicas=None, floor=1, pdbs_allow=True):
    return WorkloadView("Deployment/ns/web", replicas if replicas is not None else len(pods), floor, tuple(pods), pdbs_allow)


ROOM = lambda cls, pod: True  # noqa: E731
NO_ROOM = lambda cls, pod: False  # noqa: E731

# (case, pods, R, k, pdbs allow, room, expected: None, ("move", cause, pod name) or ("skip", reason part))
TABLE = [
    ("floor met: nothing to do", [rep("a1", "on-demand"), rep("b1", "spot")], None, 1, True, ROOM, None),
    ("floor broken: a spot replica moves", [rep("a1", "spot"), rep("b2", "spot")], None, 1, True, ROOM,
     ("move", FLOOR_REPAIR, "b2")),
    ("surplus: one on-demand replica moves", [rep("a1", "on-demand"), rep("b2", "on-demand"), rep("c3", "spot")],
     None, 1, True, ROOM, ("move", RETURN_TO_SPOT, "b2")),
    ("not all ready", [rep("a1", "on-demand"), rep("b2", "on-demand", ready=False)], None, 1, True, ROOM,
     ("skip", "not all replicas are ready")),
    ("a replica missing", [rep("a1", "on-demand"), rep("b2", "on-demand")], 3, 1, True, ROOM,
     ("skip", "not all replicas are ready")),
    ("pending replica", [rep("a1", "spot"), rep("b2", "", node="")], None, 1, True, ROOM,
     ("skip", "not all replicas are ready")),
    ("pdb forbids", [rep("a1", "on-demand"), rep("b2", "on-demand")], None, 1, False, ROOM,
     ("skip", "PodDisruptionBudget")),
    ("no spot room", [rep("a1", "on-demand"), rep("b2", "on-demand")], None, 1, True, NO_ROOM,
     ("skip", "no spot node has room")),
    ("no on-demand room", [rep("a1", "spot"), rep("b2", "spot")], None, 1, True, NO_ROOM,
     ("skip", "no on-demand node has room")),
    ("never the last ready replica", [rep("a1", "on-demand")], None, 0, True, ROOM,
     ("skip", "only ready replica")),
    ("floor unmet with nothing on spot: pending pods, not placement", [rep("a1", "on-demand")], 3, 2, True, ROOM, None),
]


@pytest.mark.parametrize("case, pods, replicas, floor, allow, room, expected", TABLE, ids=[t[0] for t in TABLE])
def test_plan_move(case, pods, replicas, floor, allow, room, expected):
    result = plan_move(view(pods, replicas, floor, allow), room)
    if expected is None:
        assert result is None
    elif expected[0] == "move":
        assert isinstance(result, Move) and result.cause == expected[1] and result.pod.name == expected[2]
    else:
        assert isinstance(result, Skip) and expected[1] in result.reason


def test_room_is_asked_for_the_target_class():
    asked = []
    plan_move(view([rep("a1", "on-demand"), rep("b2", "on-demand")]), lambda cls, pod: asked.append(cls) or True)
    plan_move(view([rep("a1", "spot"), rep("b2", "spot")]), lambda cls, pod: asked.append(cls) or True)
    assert asked == ["spot", "on-demand"]


def test_pick_prefers_the_most_loaded_node_then_the_newest():
    pods = [rep("a1", "on-demand", node="n1"), rep("b2", "on-demand", node="n2"), rep("c3", "on-demand", node="n2"),
            rep("d4", "spot")]
    assert plan_move(view(pods), ROOM).pod.name == "c3"


def test_deletion_costs_keep_the_oldest_floor_and_drop_surplus_first():
    pods = [rep("a1", "on-demand"), rep("b2", "on-demand"), rep("c3", "spot"), rep("d4", "on-demand")]
    assert deletion_costs(pods, 1) == {"a1": FLOOR_COST, "b2": SURPLUS_COST, "d4": SURPLUS_COST, "c3": SPOT_COST}
    assert deletion_costs(pods, 2)["b2"] == FLOOR_COST


def test_hysteresis_cooldown_and_backoff():
    h = Hysteresis(cooldown=10, backoff_max=60)
    history = MoveHistory(last_move=100)
    assert h.wait_left(history, 105) == 5
    history.failures = 2
    assert h.wait_left(history, 105) == 35  # 10 * 2^2 - 5
    history.failures = 10
    assert h.wait_left(history, 105) == 55  # capped at 60
    assert h.wait_left(MoveHistory(), 0) == 0


def test_rate_limit_slides_over_a_minute():
    limit = RateLimit(per_minute=2)
    assert limit.allow(0) and limit.allow(1) and not limit.allow(2)
    assert limit.allow(61)


def role(name, capacity, role_, node=None, ready=True):
    return Replica(name, "ns", name, f"{capacity}-node-{name}" if node is None else node, capacity, ready, 100,
                   1 << 20, f"2026-01-01T00:00:{name[-1]}0Z", role_)


# With roles from the webhook: (case, pods, k, room, expected)
ROLE_TABLE = [
    ("k floor pods on on-demand, spot pods on spot", [role("a1", "on-demand", "floor"), role("b2", "spot", "spot")],
     1, ROOM, None),
    ("floor pods short, a spot pod on on-demand: it is replaced in place, no room needed",
     [role("a1", "on-demand", "spot"), role("b2", "spot", "spot")], 1, NO_ROOM, ("move", FLOOR_REPAIR, "a1")),
    ("floor pods short, an unlabelled pod on on-demand is replaced first",
     [role("a1", "on-demand", ""), role("b2", "spot", "spot"), role("c3", "spot", "")], 1, NO_ROOM,
     ("move", FLOOR_REPAIR, "a1")),
    ("floor pods short, all on spot: one moves if on-demand has room",
     [role("a1", "spot", "spot"), role("b2", "spot", "")], 1, ROOM, ("move", FLOOR_REPAIR, "b2")),
    ("floor pods short, all on spot, no on-demand room",
     [role("a1", "spot", "spot"), role("b2", "spot", "")], 1, NO_ROOM, ("skip", "no on-demand node has room")),
    ("floor pods short, only floor pods so far: the rest are pending", [role("a1", "on-demand", "floor")], 2, ROOM,
     None),
    ("a pending floor pod is no shortfall: the pod is placed, not replaced",
     [role("a1", "", "floor", node="", ready=False), role("b2", "spot", "spot")], 1, ROOM, None),
    ("floor pods short while a pod is not ready", [role("a1", "on-demand", "spot", ready=False),
                                                   role("b2", "spot", "spot")], 1, ROOM, ("skip", "not all replicas")),
    ("floor pods beyond k: the newest goes",
     [role("a1", "on-demand", "floor"), role("b2", "on-demand", "floor"), role("c3", "on-demand", "floor"),
      role("d4", "spot", "spot")], 1, ROOM, ("move", RETURN_TO_SPOT, "c3")),
    ("a spot pod on on-demand goes back once spot has room",
     [role("a1", "on-demand", "floor"), role("b2", "on-demand", "spot")], 1, ROOM, ("move", RETURN_TO_SPOT, "b2")),
    ("a spot pod on on-demand waits for spot room",
     [role("a1", "on-demand", "floor"), role("b2", "on-demand", "spot")], 1, NO_ROOM,
     ("skip", "no spot node has room")),
    ("floor pods beyond k, a PDB forbids", [role("a1", "on-demand", "floor"), role("b2", "on-demand", "floor")], 1,
     ROOM, ("skip", "PodDisruptionBudget")),
]


@pytest.mark.parametrize("case, pods, floor, room, expected", ROLE_TABLE, ids=[t[0] for t in ROLE_TABLE])
def test_plan_move_by_role(case, pods, floor, room, expected):
    allow = "PDB forbids" not in case
    result = plan_move(view(pods, len(pods), floor, allow), room)
    if expected is None:
        assert result is None
    elif expected[0] == "move":
        assert isinstance(result, Move) and (result.cause, result.pod.name) == expected[1:], result
    else:
        assert isinstance(result, Skip) and expected[1] in result.reason, result


def test_deletion_costs_follow_roles():
    pods = [role("a1", "on-demand", "spot"), role("b2", "on-demand", "floor"), role("c3", "on-demand", "floor"),
            role("d4", "spot", "spot")]
    assert deletion_costs(pods, 1) == {"a1": SURPLUS_COST, "b2": FLOOR_COST, "c3": SURPLUS_COST, "d4": SPOT_COST}
    assert deletion_costs(pods, 2)["c3"] == FLOOR_COST and deletion_costs(pods, 2)["a1"] == SURPLUS_COST


# With an autoscaler that adds spot nodes (seek_spot): (case, pods, room, seek expected, expected)
SEEK_TABLE = [
    ("no spot room: a spot seek", [role("a1", "on-demand", "floor"), role("b2", "on-demand", "spot")], NO_ROOM,
     ("move", RETURN_TO_SPOT, "b2", True)),
    ("spot has room: a seek still, so the replacement cannot land on on-demand again",
     [role("a1", "on-demand", "floor"), role("b2", "on-demand", "spot")], ROOM, ("move", RETURN_TO_SPOT, "b2", True)),
    ("a floor pod beyond k, no spot room: a seek too",
     [role("a1", "on-demand", "floor"), role("b2", "on-demand", "floor")], NO_ROOM,
     ("move", RETURN_TO_SPOT, "b2", True)),
    ("floor short, no on-demand room: seeking never touches a floor repair",
     [role("a1", "spot", "spot"), role("b2", "spot", "")], NO_ROOM, ("skip", "no on-demand node has room")),
    ("not all ready: no seek", [role("a1", "on-demand", "floor"), role("b2", "on-demand", "spot", ready=False)],
     NO_ROOM, ("skip", "not all replicas")),
    ("the only ready replica: no seek", [role("a1", "on-demand", "floor", ready=False),
                                         role("b2", "on-demand", "spot")], NO_ROOM, ("skip", "not all replicas")),
    ("everything in place", [role("a1", "on-demand", "floor"), role("b2", "spot", "spot")], NO_ROOM, None),
]


@pytest.mark.parametrize("case, pods, room, expected", SEEK_TABLE, ids=[t[0] for t in SEEK_TABLE])
def test_plan_move_with_spot_seeks(case, pods, room, expected):
    result = plan_move(view(pods, len(pods), 1, True), room, seek_spot=True)
    if expected is None:
        assert result is None
    elif expected[0] == "move":
        assert isinstance(result, Move) and (result.cause, result.pod.name, result.seek) == expected[1:], result
    else:
        assert isinstance(result, Skip) and expected[1] in result.reason, result


def test_without_roles_there_is_no_seek():
    # The webhook is what makes a replacement require spot: pods with no role are not sought for.
    result = plan_move(view([rep("a1", "on-demand"), rep("b2", "on-demand")]), NO_ROOM, seek_spot=True)
    assert isinstance(result, Skip) and "no spot node has room" in result.reason


def sts(name, capacity, role_, ready=True):
    return Replica(name, "ns", name, f"{capacity}-node-{name}", capacity, ready, 100, 1 << 20,
                   f"2026-01-01T00:00:0{name[-1]}Z", role_)


# A StatefulSet's floor pods are its ordinals below k (roles.choose): moves pick by ordinal.
STS_TABLE = [
    # spec.ordinals.start 3: db-3 and db-4 are the first two.
    ("ordinals from 3, floor short: the second pod is replaced",
     [sts("db-3", "on-demand", "floor"), sts("db-4", "spot", "spot"), sts("db-5", "spot", "spot")], 2, ROOM,
     ("move", FLOOR_REPAIR, "db-4"), 3),
    ("ordinals from 3: a floor pod past the first k is the surplus",
     [sts("db-3", "on-demand", "floor"), sts("db-5", "on-demand", "floor")], 1, ROOM,
     ("move", RETURN_TO_SPOT, "db-5"), 3),
    ("floor short: the pod of ordinal below k is replaced, not a higher one",
     [sts("db-0", "on-demand", "floor"), sts("db-1", "spot", "spot"), sts("db-2", "spot", "spot")], 2, ROOM,
     ("move", FLOOR_REPAIR, "db-1")),
    ("floor short at k=3: ordinal 2 is replaced",
     [sts("db-0", "on-demand", "floor"), sts("db-1", "on-demand", "floor"), sts("db-2", "spot", "spot")], 3, ROOM,
     ("move", FLOOR_REPAIR, "db-2")),
    ("a floor pod of ordinal k or up is the surplus, however old",
     [sts("db-2", "on-demand", "floor"), sts("db-0", "on-demand", "floor"), sts("db-1", "on-demand", "floor")], 2,
     ROOM, ("move", RETURN_TO_SPOT, "db-2")),
]


@pytest.mark.parametrize("case, pods, floor, room, expected, start",
                         [t if len(t) == 6 else (*t, 0) for t in STS_TABLE], ids=[t[0] for t in STS_TABLE])
def test_plan_move_for_a_statefulset(case, pods, floor, room, expected, start):
    result = plan_move(WorkloadView("StatefulSet/ns/db", len(pods), floor, tuple(pods), True, start), room)
    assert isinstance(result, Move) and (result.cause, result.pod.name) == expected[1:], result
