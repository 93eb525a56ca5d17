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
