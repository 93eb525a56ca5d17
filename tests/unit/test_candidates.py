import random

import orjson

from spot_extender.cluster.nodes import Pool
from spot_extender.core.vocabulary import Capacity
from spot_extender.decisions.policy import score_nodes
from spot_extender.serving.candidates import CandidateCache, CandidateView
from tests.helpers.scores import node_scores

POOLS = [Pool(Capacity.SPOT, t, z) for t in ("m5", "c5") for z in ("a", "b")] + [Pool(Capacity.ON_DEMAND, "m5", "a")]
UNKNOWN = Pool(Capacity.ON_DEMAND, "", "")


def answer(view, scores, pool_of):
    return {e["Host"]: e["Score"] for e in orjson.loads(view.priority_list(scores.by_pool, scores.by_node, pool_of))}


def test_chunked_answer_matches_per_node_scores_on_random_clusters():
    rng = random.Random(3)
    for _ in range(200):
        pool_of = {f"n{i}": rng.choice(POOLS) for i in range(rng.randint(1, 40))}
        names = rng.sample(sorted(pool_of), rng.randint(1, len(pool_of))) + (["ghost"] if rng.random() < 0.3 else [])
        per_node = {n: rng.randint(1, 6) for n in rng.sample(sorted(pool_of), rng.randint(0, len(pool_of)))}
        per_pool = {}
        for n, c in per_node.items():
            per_pool[pool_of[n]] = per_pool.get(pool_of[n], 0) + c
        view = CandidateView(names, pool_of)
        scores = score_nodes(view.pool_sizes, view.members, pool_of, UNKNOWN, rng.random() < 0.7, per_node, per_pool)
        expected = node_scores(scores, names, pool_of)
        assert answer(view, scores, pool_of) == expected
        assert all(0 <= s <= 10 for s in expected.values())


def test_one_view_serves_different_workloads():
    pool_of = {"a": POOLS[0], "b": POOLS[0], "c": POOLS[1]}
    view = CandidateView(["a", "b", "c"], pool_of)
    first = score_nodes(view.pool_sizes, view.members, pool_of, UNKNOWN, True, {"a": 2}, {POOLS[0]: 2})
    second = score_nodes(view.pool_sizes, view.members, pool_of, UNKNOWN, True, {"c": 1}, {POOLS[1]: 1})
    assert answer(view, first, pool_of) == {"a": 6, "b": 8, "c": 10}
    assert answer(view, second, pool_of) == {"a": 10, "b": 10, "c": 8}
    assert answer(view, first, pool_of) == {"a": 6, "b": 8, "c": 10}  # cached chunks were not altered


def test_cache_reuses_views_and_drops_them_when_nodes_change():
    cache = CandidateCache(size=2)
    pool_of = {"a": POOLS[0], "b": POOLS[1]}
    first = cache.view(["a", "b"], pool_of, generation=1)
    assert cache.view(["a", "b"], pool_of, generation=1) is first
    assert cache.view(["b"], pool_of, generation=1) is not first
    assert cache.view(["a", "b"], pool_of, generation=2) is not first  # a pool changed somewhere


def test_cache_is_bounded():
    cache = CandidateCache(size=2)
    pool_of = {"a": POOLS[0]}
    oldest = cache.view(["a"], pool_of, 1)
    cache.view(["a", "a"], pool_of, 1)
    cache.view(["a", "a", "a"], pool_of, 1)
    assert cache.view(["a"], pool_of, 1) is not oldest


def test_cache_key_cannot_mix_up_lists_that_join_alike():
    cache = CandidateCache()
    pool_of = {"a": POOLS[0], "b": POOLS[1]}
    legit = cache.view(["a", "b"], pool_of, 1)
    odd = cache.view(["a\x00b"], pool_of, 1)
    assert odd is not legit and odd.names == ["a\x00b"]
    assert cache.view(["a", "b"], pool_of, 1) is legit


def test_lists_with_unknown_names_are_answered_but_never_kept():
    from spot_extender.serving import wire

    pool_of = {f"n{i}": POOLS[i % len(POOLS)] for i in range(10)}
    cache = CandidateCache(size=2)
    known = sorted(pool_of)
    assert cache.view(known, pool_of, 1) is cache.view(known, pool_of, 1)  # kept
    before = len(wire._host_entries)
    for call in range(10):  # unsolicited calls full of junk names
        junk = [f"junk-{call}-{i}" for i in range(1000)]
        view = cache.view(junk + known[:1], pool_of, 1)
        scores = score_nodes(view.pool_sizes, view.members, pool_of, UNKNOWN, True, {}, {})
        assert len(answer(view, scores, pool_of)) == 1001
    assert cache.view(known, pool_of, 1) is cache.view(known, pool_of, 1)  # the good list survived
    assert len(cache._views) == 1
    assert len(wire._host_entries) <= before + len(known)
    assert not any(name.startswith("junk-") for name in wire._host_entries)


def test_the_host_entry_cache_is_bounded_and_refills(monkeypatch):
    from spot_extender.serving import wire

    monkeypatch.setattr(wire, "PRIORITY_CACHE_HOSTS", 5)
    monkeypatch.setattr(wire, "_host_entries", wire._HostEntries())
    for i in range(12):
        assert orjson.loads(wire.host_entry(f"n{i}", 7)) == {"Host": f"n{i}", "Score": 7}
        assert len(wire._host_entries) <= 5
    assert "n11" in wire._host_entries  # a node seen late is cached too
