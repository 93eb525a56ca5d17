import argparse
import dataclasses
import subprocess
import sys

import pytest

from spot_extender import cli
from spot_extender.core.settings import (
    Settings,
    SettingsError,
    add_arguments,
    env_name,
    from_sources,
    parse_duration,
    show_duration,
)
from tests.helpers.ports import free_port


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


def test_capacity_rules_split_in_order():
    s = parse(["--capacity-labels", "pool=cheap:spot, example.com/tier=gold:on-demand"])
    assert s.capacity_rules == (("pool", "cheap", "spot"), ("example.com/tier", "gold", "on-demand"))


# One bad value per setting, and the words the message must hold. A setting added
# without a row here fails test_every_setting_has_a_bad_value.
BAD_VALUES = {
    "host": ("", "address"),
    "port": ("70000", "port 1-65535"),
    "filter_path": ("filter", "must start with '/'"),
    "prioritize_path": ("/a b", "no spaces"),
    "mutate_path": ("mutate", "must start with '/'"),
    "webhook_owner_wait": ("2s", "at most 1s"),
    "admission_ttl": ("0s", "above zero"),
    "floor_pending_timeout": ("-1m", "duration"),
    "floor_hold": ("-5s", "duration"),
    "seek_spot": ("maybe", "expected auto, true or false"),
    "spot_seek_timeout": ("0s", "above zero"),
    "spot_preference_weight": ("101", "<= 100"),
    "spot_tolerations": ("spot:Sometimes", "key[=value]:effect"),
    "spread_topology_keys": ("bad key", "label key"),
    "tls_cert_file": ("/nonexistent/cert.pem", "file not found"),
    "tls_key_file": ("/nonexistent/key.pem", "file not found"),
    "tls_client_ca_file": ("/nonexistent/ca.pem", "file not found"),
    "tls_reload_interval": ("0s", "above zero"),
    "max_body_bytes": ("12", ">= 1024"),
    "kubeconfig": ("/nonexistent/kubeconfig", "file not found"),
    "context": ("prod\nadmin", "control characters"),
    "default_floor": ("-1", ">= 0"),
    "floor_from_max_unavailable": ("maybe", "true or false"),
    "unknown_class": ("cheap", "one of spot, on-demand"),
    "capacity_labels": ("a=b:cheap", "capacity label rule"),
    "going_away_taints": ("bad taint", "taint key"),
    "going_away_signals": ("taints,moon", "'moon'"),
    "excluded_namespaces": ("Kube_System", "namespace name"),
    "inflight_ttl": ("soon", "duration"),
    "watch_timeout": ("0", "above zero"),
    "watch_idle_timeout": ("-5s", "duration"),
    "request_timeout": ("1d", "duration"),
    "list_page_size": ("0", ">= 1"),
    "backoff_max": ("0ms", "above zero"),
    "optional_kind_recheck": ("never", "duration"),
    "drain": ("sometimes", "true or false"),
    "drain_notice": ("spot-itn", "taint-key=duration"),
    "drain_margin": ("11m", "at most 600s"),
    "dry_run": ("2", "true or false"),
    "rebalance_interval": ("0s", "above zero"),
    "move_cooldown": ("fast", "duration"),
    "move_backoff_max": ("10x", "duration"),
    "max_moves_per_minute": ("-3", ">= 0"),
    "eviction_concurrency": ("0", ">= 1"),
    "surge": ("some", "one of annotated, all, off"),
    "max_surge": ("0%", "a percentage of 1-1000%"),
    "controller_namespaces": ("ok,Not-OK", "namespace name"),
    "leader_elect": ("perhaps", "true or false"),
    "lease_name": ("Spot_Extender", "DNS subdomain"),
    "lease_namespace": ("kube system", "namespace name"),
    "identity": ("me\tyou", "control characters"),
    "lease_duration": ("x", "duration"),
    "renew_deadline": ("0s", "above zero"),
    "retry_period": ("1h1m", "duration"),
    "log_format": ("xml", "one of json, text"),
    "log_level": ("loud", "one of debug"),
    "spot_price_ratio": ("1.5", "above 0 and at most 1"),
    "workload_metrics": ("maybe", "expected auto, true or false"),
    "webhook_cert_secret": ("Not_A_Name", "a Secret name"),
    "webhook_confirm_wait": ("2s", "at most"),
    "webhook_configuration": ("-x", "a MutatingWebhookConfiguration name"),
    "cert_hosts": ("spot-extender.svc,exa mple", "neither a DNS name nor an IP address"),
    "cert_validity": ("0s", "above zero"),
    "ca_validity": ("90d", "duration"),
}


def test_every_setting_has_a_bad_value():
    assert set(BAD_VALUES) == {f.name for f in dataclasses.fields(Settings)}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_bad_flag_exits_2_with_one_line_naming_it_and_where_to_look(name, capsys):
    value, words = BAD_VALUES[name]
    assert cli.main(["serve", f"{flag(name)}={value}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and err.startswith(f"spot-extender serve: {flag(name)}: "), err
    assert err.endswith("try 'spot-extender serve --help'\n"), err
    assert words in err


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_bad_environment_value_exits_2_with_one_line_naming_it(name, capsys, monkeypatch):
    value, words = BAD_VALUES[name]
    monkeypatch.setenv(env_name(name), value)
    assert cli.main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and err.startswith(f"spot-extender serve: {env_name(name)}: "), err
    assert err.endswith("try 'spot-extender serve --help'\n"), err
    assert words in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--filter-path", "/x", "--prioritize-path", "/x"], "--filter-path, --prioritize-path and --mutate-path must differ"),
        (["--mutate-path", "/filter"], "--filter-path, --prioritize-path and --mutate-path must differ"),
        (["--retry-period", "5s", "--renew-deadline", "4s"], "--retry-period < --renew-deadline"),
        (["--renew-deadline", "20s"], "--renew-deadline < --lease-duration"),
        (["--tls-client-ca-file", "/etc/hostname"], "--tls-client-ca-file needs HTTPS: --tls-cert-file"),
        (["--webhook-cert-secret", "s", "--tls-cert-file", "/etc/hostname", "--tls-key-file", "/etc/hostname"],
         "--webhook-cert-secret and --tls-cert-file are two sources"),
        (["--cert-validity", "720h", "--ca-validity", "1000h"], "--ca-validity must be at least 3 x"),
    ],
)
def test_settings_that_disagree_exit_2_naming_both(argv, message, capsys):
    assert cli.main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and message in err.splitlines()[0], err  # then "try ... --help"


def test_tls_files_go_together(tmp_path, capsys):
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    assert cli.main(["serve", f"--tls-cert-file={cert}"]) == 2
    assert "--tls-cert-file and --tls-key-file go together" in capsys.readouterr().err


def test_duration_forms():
    assert [parse_duration(x) for x in ("30", "30s", "2m", "1h", "500ms")] == [30, 30, 120, 3600, 0.5]


def test_a_settings_error_is_a_value_error():
    with pytest.raises(SettingsError):
        parse(["--port", "x"])


def test_files_that_exist_but_do_not_load_exit_3_naming_the_flags(tmp_path):
    # In a process of its own: serve() configures logging and runs an event loop.
    cert, key, kubeconfig = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "kubeconfig"
    for path in (cert, key):
        path.write_text("not PEM")
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n")
    port = f"--port={free_port()}"
    for flags, words in (
        ([f"--tls-cert-file={cert}", f"--tls-key-file={key}"], "spot-extender serve: --tls-cert-file/--tls-key-file"),
        ([f"--kubeconfig={kubeconfig}"], f"spot-extender serve: kubeconfig {kubeconfig}: "),
    ):
        result = subprocess.run([sys.executable, "-m", "spot_extender", "serve", "--host=127.0.0.1", port, *flags],
                                capture_output=True, text=True, timeout=60)
        last = result.stderr.strip().splitlines()[-1]
        assert result.returncode == 3 and last.startswith(words), result.stderr  # 3: cannot start


def test_kubelets_service_links_are_no_settings():
    # A Service named spot-extender in the pod's namespace injects these (enableServiceLinks).
    env = {"SPOT_EXTENDER_PORT": "tcp://10.96.0.12:8888", "SPOT_EXTENDER_SERVICE_HOST": "10.96.0.12",
           "SPOT_EXTENDER_SERVICE_PORT": "8888", "SPOT_EXTENDER_SERVICE_PORT_HTTPS": "8888",
           "SPOT_EXTENDER_PORT_8888_TCP": "tcp://10.96.0.12:8888", "SPOT_EXTENDER_PORT_8888_TCP_PROTO": "tcp",
           "SPOT_EXTENDER_PORT_8888_TCP_PORT": "8888", "SPOT_EXTENDER_PORT_8888_TCP_ADDR": "10.96.0.12",
           "SPOT_EXTENDER_CACHE": "/tmp/cache", "SPOT_EXTENDER_DEFAULT_FLOOR": "2"}
    s = from_sources(None, env)
    assert (s.port, s.default_floor) == (Settings().port, 2)


@pytest.mark.parametrize("name, hint", [
    ("SPOT_EXTENDER_DEFAULT_FLOR", "did you mean SPOT_EXTENDER_DEFAULT_FLOOR?"),
    ("SPOT_EXTENDER_SOMETHING_ELSE_ENTIRELY", "no such setting"),
])
def test_a_misspelt_environment_variable_is_an_error_naming_the_nearest(name, hint):
    with pytest.raises(SettingsError) as raised:
        from_sources(None, {name: "1"})
    assert str(raised.value).startswith(f"{name}: no such setting") and hint in str(raised.value)


@pytest.mark.parametrize("value, seek, metrics", [
    ("auto", "auto", "auto"), ("true", "on", "true"), ("on", "on", "true"), ("yes", "on", "true"),
    ("1", "on", "true"), ("false", "off", "false"), ("off", "off", "false"), ("No", "off", "false"),
])
def test_auto_or_boolean_settings_take_every_boolean_spelling(value, seek, metrics):
    s = parse(["--seek-spot", value, "--workload-metrics", value], {})
    assert (s.seek_spot, s.workload_metrics) == (seek, metrics)


@pytest.mark.parametrize("seconds, shown", [
    (180.0, "3m"), (7200.0, "2h"), (30.0, "30s"), (0.25, "250ms"), (90.0, "90s"), (1.5, "1500ms"), (0.0005, "0.0005s"),
])
def test_durations_are_shown_as_written(seconds, shown):
    assert show_duration(seconds) == shown and parse_duration(shown) == seconds


def test_help_shows_durations_choices_and_limits_in_sections():
    out = subprocess.run([sys.executable, "-m", "spot_extender", "serve", "--help"], capture_output=True, text=True,
                         timeout=60).stdout
    flat = " ".join(out.split())
    assert "usage: spot-extender serve [flags]" in out and "controller (run by the leader):" in out
    assert "--spot-seek-timeout DURATION" in flat and "default 3m]" in flat
    assert "--drain-margin DURATION" in flat and "(a duration of at most 10m)" in flat and "default 5s]" in flat
    assert "(a whole number, 1-100)" in flat
    assert "(one of json, text)" in flat and "(a whole number, at least 1)" in flat and "default none]" in flat


def test_a_bad_flag_is_one_line_and_where_to_look():
    result = subprocess.run([sys.executable, "-m", "spot_extender", "serve", "--prot", "1"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["spot-extender serve: unrecognized arguments: --prot 1",
                                          "try 'spot-extender serve --help'"]


def test_a_directory_given_for_a_file_is_named_so(tmp_path):
    with pytest.raises(SettingsError, match="a directory, not a file"):
        parse(["--kubeconfig", str(tmp_path)])
