import argparse

import pytest

from spot_extender.settings import Settings, SettingsError, add_arguments, from_sources, parse_duration


def parse(argv, env=None):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return from_sources(parser.parse_args(argv), env or {})


def test_defaults():
    s = parse([])
    assert s == Settings()
    assert s.default_floor == 1 and s.unknown_class == "on-demand" and s.excluded_namespaces == ("kube-system",)


def test_flag_beats_env_beats_default():
    env = {"SPOT_EXTENDER_PORT": "9000", "SPOT_EXTENDER_DEFAULT_FLOOR": "2"}
    s = parse(["--port", "9100"], env)
    assert (s.port, s.default_floor) == (9100, 2)


def test_lists_bools_durations():
    s = parse(
        ["--excluded-namespaces", "kube-system, monitoring", "--floor-from-max-unavailable", "--inflight-ttl", "250ms"],
        {"SPOT_EXTENDER_WATCH_TIMEOUT": "5m"},
    )
    assert s.excluded_namespaces == ("kube-system", "monitoring")
    assert s.floor_from_max_unavailable is True
    assert s.inflight_ttl == 0.25 and s.watch_timeout == 300
    assert parse(["--floor-from-max-unavailable=false"]).floor_from_max_unavailable is False


@pytest.mark.parametrize(
    "argv, env, message",
    [
        (["--port", "0"], {}, "--port"),
        (["--port", "x"], {}, "whole number"),
        ([], {"SPOT_EXTENDER_DEFAULT_FLOOR": "-1"}, "SPOT_EXTENDER_DEFAULT_FLOOR"),
        (["--unknown-class", "cheap"], {}, "one of spot, on-demand"),
        (["--inflight-ttl", "soon"], {}, "duration"),
        (["--floor-from-max-unavailable=maybe"], {}, "true or false"),
        (["--going-away-signals", "taints,moon"], {}, "unknown going-away signals"),
        (["--capacity-labels", "bad"], {}, "capacity label rule"),
        (["--filter-path", "filter"], {}, "must start with"),
        (["--filter-path", "/x", "--prioritize-path", "/x"], {}, "must differ"),
    ],
)
def test_bad_values_are_clear_errors(argv, env, message):
    with pytest.raises((SettingsError, ValueError), match=message):
        parse(argv, env)


def test_duration_forms():
    assert [parse_duration(x) for x in ("30", "30s", "2m", "1h", "500ms")] == [30, 30, 120, 3600, 0.5]
