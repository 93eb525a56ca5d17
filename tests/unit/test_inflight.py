from app.inflight import InFlight


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_counts_per_group_and_excludes_the_asking_pod():
    flight = InFlight(ttl=10, clock=Clock())
    flight.add("u1", "g")
    flight.add("u2", "g")
    flight.add("u3", "other")
    assert flight.count("g") == 2
    assert flight.count("g", excluding_uid="u1") == 1
    assert flight.count("g", excluding_uid="u3") == 2
    assert flight.count("none") == 0


def test_repeated_calls_for_one_pod_count_once():
    flight = InFlight(ttl=10, clock=Clock())
    for _ in range(5):
        flight.add("u1", "g")
    assert flight.count("g") == 1
    assert len(flight) == 1


def test_entries_expire_after_ttl_and_refresh_extends():
    clock = Clock()
    flight = InFlight(ttl=10, clock=clock)
    flight.add("u1", "g")
    clock.now += 6
    flight.add("u1", "g")  # a retry of the same pod refreshes its TTL
    flight.add("u2", "g")
    clock.now += 6
    assert flight.count("g") == 2  # u1's first expiry passed but its refresh holds
    clock.now += 5
    assert flight.count("g") == 0
    assert len(flight) == 0


def test_discard_on_binding():
    flight = InFlight(ttl=10, clock=Clock())
    flight.add("u1", "g")
    flight.discard("u1")
    flight.discard("never-added")
    assert flight.count("g") == 0


def test_moving_a_pod_to_another_group():
    flight = InFlight(ttl=10, clock=Clock())
    flight.add("u1", "a")
    flight.add("u1", "b")
    assert (flight.count("a"), flight.count("b")) == (0, 1)
