"""Fields every API object shares: RFC 3339 times and status conditions."""

import pytest

from spot_extender.core.fields import condition, condition_true, rfc3339, seconds_between, unix_time


@pytest.mark.parametrize("stamp, expected", [
    ("1970-01-01T00:01:00Z", 60.0),
    ("1970-01-01T01:00:00+01:00", 0.0),
    ("not a time", None),
    ("", None),
    (None, None),
    (42, None),
])
def test_unix_time(stamp, expected):
    assert unix_time(stamp) == expected


@pytest.mark.parametrize("start, end, expected", [
    ("2026-01-01T00:00:00Z", "2026-01-01T00:00:30Z", 30.0),
    ("2026-01-01T00:00:30Z", "2026-01-01T00:00:00Z", 0.0),  # clocks disagree: never negative
    ("2026-01-01T00:00:00Z", "2026-01-01T00:00:30", None),  # one with a zone, one without
    ("2026-01-01T00:00:00Z", None, None),
    ("garbage", "2026-01-01T00:00:00Z", None),
])
def test_seconds_between(start, end, expected):
    assert seconds_between(start, end) == expected


def test_rfc3339_round_trips_to_the_second():
    assert rfc3339(1_767_225_600.7) == "2026-01-01T00:00:00Z"
    assert unix_time(rfc3339(1_767_225_600)) == 1_767_225_600


def test_conditions():
    status = {"conditions": [{"type": "PodScheduled", "status": "True"}, "junk", {"type": "Ready", "status": "False"}]}
    assert condition(status, "Ready") == {"type": "Ready", "status": "False"}
    assert condition_true(status, "PodScheduled") and not condition_true(status, "Ready")
    assert condition(status, "Initialized") is None and not condition_true(None, "Ready")
    assert condition({"conditions": None}, "Ready") is None
