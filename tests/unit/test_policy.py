import orjson
import pytest

from spot_extender.cluster.nodes import Pool
from spot_extender.cluster.records import PdbRecord
from spot_extender.core.vocabulary import Capacity
from spot_extender.decisions.policy import (
    FilterOutcome,
    NodeScores,
    compute_floor,
    favourite,
    filter_nodes,
    held,
    on_demand_reason,
    scaled,
    score_nodes,
    steer,
)
from spot_extender.serving.candidates import CandidateView
from tests.helpers.scores import node_scores


def pdb(min_available=None, max_unavailable=None, name="p"):
    return PdbRecord("default", name, {}, min_available, max_unavailable)


@pytest.mark.parametrize(
    "value, replicas, expected",
    [(2, 5, 2), ("2", 5, 2), ("30%", 10, 3), ("30%", 5, 2), ("100%", 7, 7), ("0%", 7, 0),
     ("x", 5, None), ("-1", 5, None), (-1, 5, None), (True, 5, None), (None, 5, None), ("1.5", 5, None)],
)
def test_scaled(value, replicas, expected):
    assert scaled(value, replicas) == expected


# (case, R, floor annotation, placement annotation, PDBs, from maxUnavailable, expected k)
FLOOR_TABLE = [
    ("single replica keeps its one replica on on-demand", 1, None, None, [], False, 1),
    ("default floor is one", 10, None, None, [], False, 1),
    ("zero replicas, zero floor", 0, None, None, [], False, 0),
    ("annotation number", 10, "2", None, [], False, 2),
    ("annotation percent rounds up", 10, "25%", None, [], False, 3),
    ("annotation clamped to R", 3, "5", None, [], False, 3),
    ("annotation zero", 4, "0", None, [], False, 0),
    ("bad annotation falls back to default", 4, "lots", None, [], False, 1),
    ("pdb minAvailable raises floor", 5, None, None, [pdb(2)], False, 2),
    ("pdb minAvailable percent", 10, None, None, [pdb("50%")], False, 5),
    ("pdb below annotation leaves annotation", 10, "4", None, [pdb(2)], False, 4),
    ("pdb above annotation wins", 10, "1", None, [pdb(3)], False, 3),
    ("largest of several pdbs", 10, None, None, [pdb(2, name="a"), pdb(4, name="b")], False, 4),
    ("pdb minAvailable clamped to R", 3, None, None, [pdb(5)], False, 3),
    ("maxUnavailable ignored by default", 10, None, None, [pdb(max_unavailable=1)], False, 1),
    ("maxUnavailable when asked", 10, None, None, [pdb(max_unavailable=1)], True, 9),
    ("maxUnavailable percent when asked", 10, None, None, [pdb(max_unavailable="25%")], True, 7),
    ("placement on-demand: all replicas", 6, None, "on-demand", [], False, 6),
    ("placement spot: no floor even with pdb", 6, "3", "spot", [pdb(2)], False, 0),
    ("placement auto is the default", 6, "2", "auto", [], False, 2),
    ("bad placement is ignored", 6, None, "cheap", [], False, 1),
]


@pytest.mark.parametrize("case, replicas, floor_ann, placement, pdbs, from_max, expected", FLOOR_TABLE, ids=[c[0] for c in FLOOR_TABLE])
def test_floor(case, replicas, floor_ann, placement, pdbs, from_max, expected):
    assert compute_floor(replicas, floor_ann, placement, pdbs, 1, from_max).k == expected


def test_floor_reports_source_and_problems():
    floor = compute_floor(5, "oops", "cheap", [pdb(2, name="web")], 1, False)
    assert floor.source == "pdb web"
    assert len(floor.problems) == 2


def test_default_floor_setting():
    assert compute_floor(10, None, None, [], 3, False).k == 3


NAMES = ["s1", "s2", "o1", "o2"]
OD = {"o1", "o2"}

# (case, names, going_away, on_demand, o, k, passed, unresolvable, fallback)
FILTER_TABLE = [
    ("floor unmet: only on-demand passes, spot refused as unresolvable", NAMES, {}, OD, 0, 1, ["o1", "o2"],
     {"s1": "on-demand floor 0/1", "s2": "on-demand floor 0/1"}, False),
    ("floor met: everything passes", NAMES, {}, OD, 1, 1, NAMES, {}, False),
    ("no floor: everything passes", NAMES, {}, OD, 0, 0, NAMES, {}, False),
    ("floor unmet, no on-demand candidate: spot fallback", ["s1", "s2"], {}, OD, 0, 1, ["s1", "s2"], {}, True),
    ("going-away nodes fail as unresolvable", NAMES, {"s1": "node has taint karpenter.sh/disrupted"}, OD, 1, 1,
     ["s2", "o1", "o2"], {"s1": "node has taint karpenter.sh/disrupted"}, False),
    ("going-away on-demand node does not count as a candidate", ["s1", "o1"], {"o1": "node is cordoned"}, OD, 0, 1,
     ["s1"], {"o1": "node is cordoned"}, True),
    ("every candidate going away: nothing passes, no fallback", ["s1"], {"s1": "node is not Ready"}, OD, 0, 1,
     [], {"s1": "node is not Ready"}, False),
    ("reason counts what is there", NAMES, {"s2": "node is cordoned"}, OD, 1, 2, ["o1", "o2"],
     {"s1": "on-demand floor 1/2", "s2": "node is cordoned"}, False),
    ("empty candidate list", [], {}, OD, 0, 1, [], {}, False),
]


@pytest.mark.parametrize(
    "case, names, going_away, on_demand, o, k, passed, unresolvable, fallback",
    FILTER_TABLE,
    ids=[c[0] for c in FILTER_TABLE],
)
def test_filter(case, names, going_away, on_demand, o, k, passed, unresolvable, fallback):
    outcome = filter_nodes(names, going_away, on_demand, on_demand_reason("", o, k))
    assert outcome.passed == passed
    assert outcome.unresolvable == unresolvable
    assert outcome.fallback == fallback


def test_a_hold_refuses_what_a_fallback_would_pass_and_keeps_the_going_away_reasons():
    outcome = filter_nodes(["s1", "s2"], {"s2": "node is cordoned"}, OD, "floor-role pod")
    assert outcome.fallback
    hold = held(outcome, "floor hold")
    assert hold == FilterOutcome([], {"s1": "floor hold", "s2": "node is cordoned"}, False)


SPOT_A = Pool(Capacity.SPOT, "m5", "a")
SPOT_B = Pool(Capacity.SPOT, "m5", "b")
OD_A = Pool(Capacity.ON_DEMAND, "m5", "a")
UNKNOWN_POOL = Pool(Capacity.ON_DEMAND, "", "")
POOLS = {"s1": SPOT_A, "s2": SPOT_A, "s3": SPOT_B, "o1": OD_A, "o2": OD_A}
ALL = list(POOLS)


def score(names, prefer_spot, per_node, per_pool):
    view = CandidateView(names, POOLS)
    result = score_nodes(view.pool_sizes, view.members, POOLS, UNKNOWN_POOL, prefer_spot, per_node, per_pool)
    return node_scores(result, names, POOLS)


def test_spot_preferred_when_floor_met():
    scores = score(ALL, True, {}, {})
    assert scores == {"s1": 10, "s2": 10, "s3": 10, "o1": 4, "o2": 4}


def test_on_demand_preferred_when_floor_unmet():
    scores = score(ALL, False, {}, {})
    assert scores == {"s1": 4, "s2": 4, "s3": 4, "o1": 10, "o2": 10}


def test_spot_spread_over_pools_then_nodes():
    per_node = {"s1": 2, "o1": 1}
    per_pool = {SPOT_A: 2, OD_A: 1}
    scores = score(ALL, True, per_node, per_pool)
    # s3's pool is empty: best. s2 is empty but in a loaded pool. s1 has both.
    assert scores["s3"] == 10
    assert scores["s2"] == 8
    assert scores["s1"] == 6
    # on-demand spreads by node only, and stays below every spot node
    assert scores["o2"] == 4 and scores["o1"] == 3
    assert min(scores[n] for n in ("s1", "s2", "s3")) > max(scores["o1"], scores["o2"])


def test_spread_is_relative_to_the_least_loaded_candidate():
    per_node = {"s1": 3, "s2": 3, "s3": 3}
    per_pool = {SPOT_A: 6, SPOT_B: 3}
    scores = score(["s1", "s2", "s3"], True, per_node, per_pool)
    assert scores == {"s1": 7, "s2": 7, "s3": 10}


def test_penalty_is_capped_inside_the_class_band():
    scores = score(["s1", "s3"], True, {"s1": 50}, {SPOT_A: 50})
    assert scores == {"s1": 6, "s3": 10}


def test_loads_on_non_candidates_are_ignored():
    scores = score(["s3"], True, {"s1": 5}, {SPOT_A: 5})
    assert scores == {"s3": 10}


def test_unknown_names_use_the_unknown_pool():
    scores = score(["ghost", "s1"], True, {}, {})
    assert scores == {"ghost": 4, "s1": 10}


def test_same_inputs_same_scores():
    per_node = {"s1": 1, "s3": 2}
    per_pool = {SPOT_A: 1, SPOT_B: 2}
    first = score(ALL, True, per_node, per_pool)
    assert all(score(ALL, True, per_node, per_pool) == first for _ in range(5))
    assert all(0 <= s <= 10 for s in first.values())


def test_every_candidate_loaded_spreads_relative_to_the_least():
    per_node = {"s1": 2, "s2": 1}
    scores = score(["s1", "s2"], True, per_node, {SPOT_A: 3})
    assert scores == {"s1": 9, "s2": 10}


def test_values_align_with_names_including_duplicates():
    view = CandidateView(["s3", "s1", "s3"], POOLS)
    result = score_nodes(view.pool_sizes, view.members, POOLS, UNKNOWN_POOL, True, {"s1": 1}, {SPOT_A: 1})
    assert orjson.loads(view.priority_list(result.by_pool, result.by_node, POOLS)) == [
        {"Host": "s3", "Score": 10}, {"Host": "s3", "Score": 10}, {"Host": "s1", "Score": 8}
    ]


def test_readme_worked_example():
    pools = {"s1": SPOT_A, "s2": SPOT_A, "s3": SPOT_B, "o1": OD_A, "o2": OD_A}
    names = list(pools)
    view = CandidateView(names, pools)
    first = node_scores(score_nodes(view.pool_sizes, view.members, pools, UNKNOWN_POOL, False, {}, {}), names, pools)
    assert first == {"s1": 4, "s2": 4, "s3": 4, "o1": 10, "o2": 10}
    scores = score_nodes(view.pool_sizes, view.members, pools, UNKNOWN_POOL, True, {"s1": 1, "o1": 1},
                         {SPOT_A: 1, OD_A: 1})
    third = node_scores(scores, names, pools)
    assert (third["s1"], third["s2"], third["s3"]) == (8, 9, 10)
    assert max(third["o1"], third["o2"]) == 4
    chosen = favourite(scores, view.by_pool)
    assert chosen == "s3"
    steered = node_scores(steer(scores, chosen, pools[chosen]), names, pools)
    assert steered == {"s1": 7, "s2": 8, "s3": 10, "o1": 2, "o2": 3}


@pytest.mark.parametrize(
    "by_pool, by_node, names_by_pool, expected",
    [
        ({SPOT_A: 10, OD_A: 4}, {}, {SPOT_A: ["s2", "s1"], OD_A: ["o1"]}, "s2"),  # request order within a pool
        ({SPOT_A: 9, SPOT_B: 10}, {}, {SPOT_A: ["s1"], SPOT_B: ["s3"]}, "s3"),  # higher score wins
        ({SPOT_A: 10, SPOT_B: 10}, {}, {SPOT_B: ["s3"], SPOT_A: ["s1"]}, "s1"),  # tie: pool that sorts first
        ({SPOT_A: 10}, {"s1": 8}, {SPOT_A: ["s1", "s2"]}, "s2"),  # an unloaded member beats a loaded one
        ({SPOT_A: 10, OD_A: 4}, {"s1": 7, "s2": 9}, {SPOT_A: ["s1", "s2"], OD_A: ["o1"]}, "s2"),
        ({None: 4}, {}, {None: ["ghost"]}, "ghost"),
        ({None: 10, OD_A: 10}, {}, {None: ["ghost"], OD_A: ["o1"]}, "o1"),  # tie: a known node beats an unseen one
        ({None: 10, OD_A: 10}, {"o1": 9}, {None: ["ghost"], OD_A: ["o1", "o2"]}, "o2"),
        ({}, {}, {}, None),
    ],
)
def test_favourite(by_pool, by_node, names_by_pool, expected):
    assert favourite(NodeScores(by_pool, by_node), names_by_pool) == expected


def test_steer_makes_one_clear_winner_and_keeps_the_class_gap():
    steered = steer(NodeScores({SPOT_A: 10, SPOT_B: 10, OD_A: 4}, {"s1": 8, "gone": 0}), "s3", SPOT_B)
    assert node_scores(steered, ["s1", "s2", "s3", "o1", "gone"], {**POOLS, "gone": SPOT_A}) == {
        "s1": 7, "s2": 9, "s3": 10, "o1": 3, "gone": 0
    }


def test_on_demand_floor_spreads_over_pools_too():
    od_b = Pool(Capacity.ON_DEMAND, "m5", "b")
    pools = {"o1": OD_A, "o2": OD_A, "o3": od_b}
    # one floor replica already on o1 (zone a): the next goes to zone b, not to o2
    view = CandidateView(["o1", "o2", "o3"], pools)
    result = score_nodes(view.pool_sizes, view.members, pools, UNKNOWN_POOL, False, {"o1": 1}, {OD_A: 1})
    assert node_scores(result, ["o1", "o2", "o3"], pools) == {"o1": 8, "o2": 9, "o3": 10}


@pytest.mark.parametrize("role, o, k, reason", [
    ("", 0, 1, "on-demand floor 0/1"),
    ("", 1, 1, None),
    ("", 3, 2, None),
    ("floor", 5, 1, "floor-role pod"),  # the role decides, whatever the counts
    ("floor", 0, 0, "floor-role pod"),
    ("spot", 0, 3, None),
])
def test_on_demand_reason(role, o, k, reason):
    assert on_demand_reason(role, o, k) == reason
