"""Tables that keep no empty entries."""

from collections import Counter

from spot_extender.core.counted import add, discard_member


def test_a_count_that_reaches_zero_or_below_goes():
    counts = Counter()
    add(counts, "a", 2)
    add(counts, "a", -1)
    assert counts == {"a": 1}
    add(counts, "a", -1)
    add(counts, "b", -1)  # never there, and not left behind as 0 or -1
    assert "a" not in counts and "b" not in counts


def test_an_emptied_set_goes():
    table = {"g": {"u1", "u2"}}
    discard_member(table, "g", "u1")
    assert table == {"g": {"u2"}}
    discard_member(table, "g", "u2")
    discard_member(table, "missing", "u3")
    assert table == {}
