import subprocess
import sys


def run(*args):
    return subprocess.run([sys.executable, "-m", "spot_extender", *args], capture_output=True, text=True, timeout=60)


def test_help_lists_every_setting_with_its_env_var():
    from dataclasses import fields

    from spot_extender.core.settings import Settings

    out = run("serve", "--help").stdout
    for f in fields(Settings):
        assert "--" + f.name.replace("_", "-") in out
    assert "SPOT_EXTENDER_" in out
    assert "default ]" not in out and "default none]" in out  # an empty list shows as none


def test_bad_setting_exits_2_with_message():
    result = run("serve", "--port", "nope")
    assert result.returncode == 2
    assert "--port" in result.stderr


def test_status_takes_the_settings_that_judge_floors():
    from spot_extender.cli import STATUS_SETTINGS, parser
    from spot_extender.core.settings import from_sources

    args, _ = parser().parse_known_args(["status", "--unknown-class=spot", "--default-floor=2",
                                         "--capacity-labels=pool=cheap:spot", "--excluded-namespaces=a,b"])
    settings = from_sources(args, {})
    assert (settings.unknown_class, settings.default_floor, settings.excluded_namespaces) == ("spot", 2, ("a", "b"))
    assert settings.capacity_rules == (("pool", "cheap", "spot"),)
    assert "--drain-notice" not in run("status", "--help").stdout and STATUS_SETTINGS


def test_status_exit_codes_are_told_apart():
    refused = run("status", "--url=http://127.0.0.1:1", "--timeout=5")
    assert refused.returncode == 3 and "cannot read the workloads" in refused.stderr
    assert run("status", "--timeout=0").returncode == 2
    assert "3: the workloads could not be read" in " ".join(run("status", "--help").stdout.split())


def test_a_bad_value_is_one_line_and_where_to_look():
    result = run("serve", "--drain=maybe")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["spot-extender serve: --drain: expected true or false, got 'maybe'",
                                          "try 'spot-extender serve --help'"]


def test_serve_that_cannot_start_exits_3_naming_why(tmp_path):
    empty = tmp_path / "kubeconfig"
    empty.write_text("")
    result = run("serve", f"--kubeconfig={empty}")
    assert result.returncode == 3 and f"kubeconfig {empty}: the file is empty" in result.stderr, result.stderr
    assert "serving" not in result.stderr
    assert "3: it cannot start" in " ".join(run("serve", "--help").stdout.split())


def test_serve_on_a_taken_port_exits_3_without_a_traceback(tmp_path):
    import socket

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
                          "users: [{name: u, user: {token: t}}]\n"
                          "contexts: [{name: a, context: {cluster: c, user: u}}]\ncurrent-context: a\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", f"--kubeconfig={kubeconfig}", "--host=127.0.0.1", f"--port={port}")
    assert result.returncode == 3, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_status_timeout_is_a_duration():
    assert run("status", "--url=http://127.0.0.1:1", "--timeout=2s").returncode == 3
    for bad in ("0", "-1s", "soon"):
        result = run("status", f"--timeout={bad}")
        assert result.returncode == 2 and "--timeout" in result.stderr, (bad, result.stderr)


def test_help_keeps_hyphenated_words_whole():
    out = run("serve", "--help").stdout
    assert "kube-\n" not in out and "--webhook-\n" not in out
