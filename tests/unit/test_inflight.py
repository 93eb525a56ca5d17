from collections import Counter

import pytest

from spot_extender.cluster.distrust import DISTRUST_SECONDS
from spot_extender.cluster.inflight import CONFIRM_SECONDS, InFlight


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_on_demand_holds_per_group_exclude_the_asking_pod():
    flight = InFlight(ttl=10, clock=Clock())
    flight.hold_on_demand("u1", "g")
    flight.hold_on_demand("u2", "g")
    flight.hold_on_demand("u3", "other")
    assert flight.on_demand("g") == 2
    assert flight.on_demand("g", excluding_uid="u1") == 1
    assert flight.on_demand("g", excluding_uid="u3") == 2
    assert flight.on_demand("none") == 0


def test_repeated_calls_for_one_pod_count_once():
    flight = InFlight(ttl=10, clock=Clock())
    for _ in range(5):
        flight.hold_on_demand("u1", "g")
        flight.expect("u1", "g", "n1", "p1")
    assert flight.on_demand("g") == 1
    assert flight.expected("g") == ({"n1": 1}, {"p1": 1})
    assert len(flight) == 1


def test_expectations_move_with_the_latest_decision():
    flight = InFlight(ttl=10, clock=Clock())
    flight.expect("u1", "g", "n1", "p1")
    flight.expect("u2", "g", "n1", "p1")
    flight.expect("u1", "g", "n2", "p2")  # the same pod steered again elsewhere
    nodes, pools = flight.expected("g")
    assert (nodes, pools) == ({"n1": 1, "n2": 1}, {"p1": 1, "p2": 1})
    assert flight.expected("g", excluding_uid="u2") == ({"n2": 1}, {"p2": 1})
    assert flight.on_demand("g") == 0  # expectation alone does not count toward o


def test_hold_keeps_the_expected_node_and_expect_keeps_the_hold():
    flight = InFlight(ttl=10, clock=Clock())
    flight.hold_on_demand("u1", "g")
    flight.expect("u1", "g", "o1", "od-pool")
    flight.hold_on_demand("u1", "g")
    assert flight.on_demand("g") == 1
    assert flight.expected("g") == ({"o1": 1}, {"od-pool": 1})


def test_entries_expire_after_ttl_and_refresh_extends():
    clock = Clock()
    flight = InFlight(ttl=10, clock=clock)
    flight.hold_on_demand("u1", "g")
    clock.now += 6
    flight.hold_on_demand("u1", "g")  # a retry of the same pod refreshes its TTL
    flight.expect("u2", "g", "n1", "p1")
    clock.now += 6
    assert flight.on_demand("g") == 1
    assert flight.expected("g")[0] == {"n1": 1}
    clock.now += 5
    assert flight.on_demand("g") == 0
    assert flight.expected("g") == ({}, {})
    assert len(flight) == 0


def test_discard_on_binding():
    flight = InFlight(ttl=10, clock=Clock())
    flight.hold_on_demand("u1", "g")
    flight.expect("u1", "g", "n1", "p1")
    flight.discard("u1")
    flight.discard("never-added")
    assert flight.on_demand("g") == 0 and flight.expected("g") == ({}, {})


def test_moving_a_pod_to_another_group():
    flight = InFlight(ttl=10, clock=Clock())
    flight.hold_on_demand("u1", "a")
    flight.hold_on_demand("u1", "b")
    assert (flight.on_demand("a"), flight.on_demand("b")) == (0, 1)


# ---- Holds the watch has not confirmed (issue 26): they may only err toward on-demand ----


class Reports(list):
    """The on_unconfirmed callback: (group, reason) of every unseen entry found out."""

    def __call__(self, group, reason):
        self.append((group, reason))


def guarded(**kw):
    clock, reports = Clock(), Reports()
    return InFlight(ttl=30, clock=clock, on_unconfirmed=reports, **kw), clock, reports


def test_unseen_holds_count_within_the_room_and_one_more_distrusts_the_group():
    flight, _, reports = guarded()
    assert [flight.hold_on_demand(f"u{i}", "g", seen=False, room=3) for i in range(3)] == [None] * 3
    flight.hold_on_demand("real", "g")  # a pod the watch shows Pending
    assert flight.on_demand("g") == 4 and flight.on_demand("g", excluding_uid="u1") == 3
    assert flight.hold_on_demand("u3", "g", seen=False, room=3) == "no-room"
    # More pods than the owner could have: only what the watch confirmed counts now.
    assert flight.distrusted("g") and flight.on_demand("g") == 1
    assert flight.on_demand("g", excluding_uid="u1") == 1 and flight.on_demand("g", excluding_uid="real") == 0
    assert flight.hold_on_demand("u4", "g", seen=False, room=10) is None  # kept, not counted ...
    assert flight.on_demand("g") == 1
    flight.seen("u4", "g")  # ... until the watch shows its pod
    assert flight.on_demand("g") == 2
    assert flight.hold_on_demand("u6", "other", seen=False, room=1) is None  # other groups are not touched
    assert flight.on_demand("other") == 1
    assert reports == []  # a refused call is counted by the caller, from the answer


def test_expectations_of_a_distrusted_group_count_once_seen():
    flight, _, _ = guarded()
    flight.expect("u1", "g", "n1", "p1", seen=False, room=3)
    flight.expect("u2", "g", "n2", "p1")
    assert flight.expected("g") == ({"n1": 1, "n2": 1}, {"p1": 2})
    assert flight.on_demand("g", room=0) == 0  # one unseen entry, no room: found out
    assert flight.expected("g") == ({"n2": 1}, {"p1": 1})
    assert flight.expected("g", excluding_uid="u1") == ({"n2": 1}, {"p1": 1})
    assert flight.expected("g", excluding_uid="u2") == ({}, {})
    flight.seen("u1", "g")
    assert flight.expected("g") == ({"n1": 1, "n2": 1}, {"p1": 2})


@pytest.mark.parametrize("confirmed, distrusted, counted", [
    (["u1", "u2"], False, 2),  # the watch showed both in time: a normal burst
    (["u1"], True, 1),  # one never shown: forged; only what the watch confirmed counts
    ([], True, 0),
])
def test_an_unseen_hold_must_be_confirmed_within_seconds(confirmed, distrusted, counted):
    flight, clock, reports = guarded()
    flight.hold_on_demand("u1", "g", seen=False, room=5)
    flight.expect("u2", "g", "n1", "p1", seen=False, room=5)
    flight.hold_on_demand("u2", "g", seen=False, room=5)
    clock.now += CONFIRM_SECONDS - 0.5
    flight.hold_on_demand("u2", "g", seen=False, room=5)  # asked again: the deadline stays
    for uid in confirmed:
        flight.seen(uid, "g")
    clock.now += 1.0
    assert flight.on_demand("g") == counted and flight.distrusted("g") is distrusted
    assert reports == [("g", "expired")] * (2 - len(confirmed))
    assert flight.expected("g") == (({"n1": 1}, {"p1": 1}) if "u2" in confirmed else ({}, {}))
    flight.hold_on_demand("u8", "g", seen=False, room=5)  # counted at once only while trusted
    assert flight.on_demand("g") == counted + (not distrusted)
    flight.seen("u8", "g")
    assert flight.on_demand("g") == counted + 1
    clock.now += DISTRUST_SECONDS  # every entry is past its TTL too
    assert not flight.distrusted("g")  # trusted again after a while
    assert flight.hold_on_demand("u9", "g", seen=False, room=5) is None
    assert flight.on_demand("g") == 1


def test_the_watch_showing_a_uid_in_another_group_drops_its_hold():
    flight, _, reports = guarded()
    flight.hold_on_demand("u1", "g", seen=False, room=5)
    flight.seen("u1", "another")
    assert flight.on_demand("g") == 0 and len(flight) == 0
    assert reports == [("g", "other-group")]
    flight.hold_on_demand("u2", "g")  # a seen hold is not touched by a later event
    flight.seen("u2", "another")
    assert flight.on_demand("g") == 1


def test_more_unseen_holds_than_the_room_left_distrusts_the_group():
    # Forged holds filling the room exactly: the first real pod the watch shows makes them too many.
    flight, _, reports = guarded()
    for i in range(3):
        flight.hold_on_demand(f"forged-{i}", "g", seen=False, room=3)
    assert flight.on_demand("g", room=3) == 3
    assert flight.on_demand("g", room=2) == 0 and flight.distrusted("g")
    assert flight.on_demand("g", room=2) == 0 and reports == [("g", "no-room")]  # found out once


def test_entries_are_bounded_in_all_and_a_flood_leaves_memory_flat():
    flight, clock, _ = guarded(max_entries=100)
    answers = Counter(flight.hold_on_demand(f"u{i}", f"g{i % 7}") for i in range(1000))
    assert answers == {None: 100, "full": 900}
    assert flight.expect("one-more", "g0", "n1", "p1") == "full"
    assert flight.hold_on_demand("u1", "g1") is None  # what is kept is still refreshed
    assert len(flight) == 100
    # A flood of calls for one pod does not grow the expiry queue by one item per call.
    for _ in range(10_000):
        clock.now += 0.001
        flight.hold_on_demand("u1", "g1")
        flight.expect("u1", "g1", "n1", "p1")
    assert len(flight._expiries) < 200
    clock.now += 31
    assert len(flight) == 0 and not flight._expiries
    assert not any(getattr(flight._all, name) for name in flight._all.__slots__)  # no empty entries left


def test_a_flood_of_unseen_uids_keeps_at_most_the_room_per_group():
    flight, clock, reports = guarded()
    for round_ in range(20):
        for i in range(500):
            flight.hold_on_demand(f"r{round_}-{i}", "g", seen=False, room=6)
            flight.expect(f"r{round_}-{i}-e", "h", "n1", "p1", seen=False, room=4)
            assert flight.unseen("g") <= 6 and flight.unseen("h") <= 4
        assert flight.on_demand("g") == 0 and flight.expected("h") == ({}, {})  # distrusted at the 7th and 5th
        clock.now += CONFIRM_SECONDS
    assert len(flight) == 0 and len(flight._deadlines) == 0 and len(flight._distrusted._ends) == 2
    assert Counter(reason for _, reason in reports) == {"expired": 200}
    clock.now += DISTRUST_SECONDS
    assert not flight.distrusted("g") and not flight._distrusted._ends and not flight._distrusted
