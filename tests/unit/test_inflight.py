from spot_extender.inflight import InFlight


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
