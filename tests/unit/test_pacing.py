"""Which doomed replicas a paced drain evicts now: table-style."""

import pytest

from spot_extender.decisions.pacing import DEFAULT_STARTUP, Doomed, drainable, next_wave, startup_estimate
from tests.helpers.drain_bound import eviction_bound


def doomed(*latest: float) -> list[Doomed]:
    return [Doomed(f"p{i}", t) for i, t in enumerate(latest)]


@pytest.mark.parametrize("latest, now, down, startup, expected", [
    # 6 doomed, 85 s left, 10 s start-up: 9 waves fit, so one replica down at a time.
    ((85,) * 6, 0, 0, 10, ["p0"]),
    # 30 s start-up: 3 waves fit (at 0, 30, 60 s), so two down at a time.
    ((85,) * 6, 0, 0, 30, ["p0", "p1"]),
    # One of those two is replaced already: the other slot refills at once.
    ((85,) * 5, 10, 1, 30, ["p0"]),
    # Both still down: nothing, time left.
    ((85,) * 4, 40, 2, 30, []),
    # Time has run out: all go, whatever is down.
    ((85,) * 6, 85, 3, 10, ["p0", "p1", "p2", "p3", "p4", "p5"]),
    # No notice at all (a cordon): the latest time is already past, all at once.
    ((-35,) * 3, 0, 0, 10, ["p0", "p1", "p2"]),
    # Less time left than one start-up: a single wave, everything.
    ((8,) * 4, 0, 0, 10, ["p0", "p1", "p2", "p3"]),
    # Two nodes: one pod already due, the others with time. The due one goes, and takes
    # one of the two places (4 doomed, 2 waves fit), so one more goes.
    ((0, 50, 50, 50), 0, 0, 30, ["p0", "p1"]),
    # The same while one replica is still down: only the due one.
    ((0, 50, 50, 50), 0, 1, 30, ["p0"]),
    # Earliest latest time first.
    ((80, 20, 50), 0, 0, 100, ["p1", "p2", "p0"]),
    ((80, 20, 50), 0, 0, 10, ["p1"]),
    # Equal times keep the given order (the drain gives the oldest first).
    ((50, 50, 50), 0, 0, 10, ["p0"]),
    # A start-up estimate below a second is taken as one second.
    ((3,) * 8, 0, 0, 0.01, ["p0", "p1"]),
])
def test_next_wave(latest, now, down, startup, expected):
    assert next_wave(doomed(*latest), now, down, startup) == expected


def test_a_pdb_caps_the_wave_but_never_what_is_due():
    pods = doomed(0, 85, 85, 85, 85, 85)
    assert next_wave(pods, 0, 0, 30, limit=2) == ["p0", "p1"]  # room for 2 (6 over 3 waves), 1 due
    assert next_wave(doomed(85, 85, 85, 85), 0, 0, 30, limit=1) == ["p0"]
    assert next_wave(doomed(85, 85), 0, 0, 30, limit=0) == []  # the PDB allows nothing now
    assert next_wave(doomed(0, 0, 85), 0, 0, 30, limit=0) == ["p0", "p1"]  # due pods still go (and retry)


def test_a_doomed_pod_that_is_not_ready_goes_at_once_outside_the_waves():
    pods = [Doomed("a", 85), Doomed("b", 85, ready=False), Doomed("c", 85)]
    assert next_wave(pods, 0, 1, 10) == ["b"]
    assert next_wave(pods, 0, 0, 10) == ["b", "a"]  # and the room is ceil(2 / 9) of the Ready ones


@pytest.mark.parametrize("history, expected", [
    ([3.0, 40.0, 5.0], 5.0),  # the median start-up of the workload's ready pods
    ([], DEFAULT_STARTUP),
    ([0.0, 0.0], 1.0),
])
def test_startup_estimate(history, expected):
    assert startup_estimate(history) == expected


@pytest.mark.parametrize("replicas, doomed_count, available, startup, expected", [
    (20, 19, 85, 5, 18),  # 17 waves fit: one replica down at a time
    (20, 19, 85, 30, 10),  # 2 waves: ceil(19 / 2) = 10 down
    (5, 4, 10, 30, 1),  # not even one start-up: all at once
    (3, 0, 85, 5, 3),
])
def test_eviction_bound(replicas, doomed_count, available, startup, expected):
    assert eviction_bound(replicas, doomed_count, available, startup) == expected


@pytest.mark.parametrize(
    "owner, mirror, terminating, managed, expected",
    [("ReplicaSet", False, False, True, True), ("DaemonSet", False, False, True, False),
     ("ReplicaSet", True, False, True, False), ("ReplicaSet", False, True, True, False),
     ("Job", False, False, False, False)],
)
def test_drainable(owner, mirror, terminating, managed, expected):
    assert drainable(owner, mirror, terminating, managed) is expected
