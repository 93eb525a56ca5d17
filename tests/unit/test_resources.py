from decimal import Decimal

import pytest

from spot_extender.cluster.resources import cpu_millis, memory_bytes, parse_quantity, pod_requests


@pytest.mark.parametrize(
    "text, value",
    [("100m", Decimal("0.1")), ("2", Decimal(2)), ("64Mi", Decimal(64 * 2**20)), ("1Gi", Decimal(2**30)),
     ("1e3", Decimal(1000)), ("0.5", Decimal("0.5")), ("1k", Decimal(1000)), ("1500u", Decimal("0.0015")), (3, Decimal(3))],
)
def test_parse_quantity(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1Xi", "1.2.3", "--1", "1e300000", "1e999999999", "9" * 41,
                                  "10E", "1e19", 1e300, "1" * 100, ["1"], None])
def test_bad_and_absurd_quantities_are_refused(text):
    with pytest.raises(ValueError):
        parse_quantity(text)


def test_amounts():
    assert cpu_millis({"cpu": "250m"}) == 250 and cpu_millis({"cpu": "2"}) == 2000 and cpu_millis({}) == 0
    assert memory_bytes({"memory": "1Ki"}) == 1024 and memory_bytes({"memory": "bogus"}) == 0
    # Absurd values count as nothing rather than as a number with 300,000 digits.
    assert cpu_millis({"cpu": "1e300000"}) == 0 and memory_bytes({"memory": "1e999999999"}) == 0
    assert memory_bytes({"memory": "7Ei"}) == 7 * 2**60 and cpu_millis({"cpu": "9e15"}) == 9 * 10**18


def test_pod_requests_sum_containers_max_init_plus_overhead():
    spec = {
        "containers": [{"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                       {"resources": {"requests": {"cpu": "200m"}}}, {"name": "no-requests"}],
        "initContainers": [{"resources": {"requests": {"cpu": "500m", "memory": "10Mi"}}}],
        "overhead": {"cpu": "10m"},
    }
    assert pod_requests(spec) == (510, 64 * 2**20)
    assert pod_requests({}) == (0, 0)
