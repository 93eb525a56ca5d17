import subprocess
import sys


def run(*args):
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=60)


def test_help_lists_every_setting_with_its_env_var():
    from dataclasses import fields

    from app.settings import Settings

    out = run("serve", "--help").stdout
    for f in fields(Settings):
        assert "--" + f.name.replace("_", "-") in out
    assert "SPOT_EXTENDER_" in out


def test_bad_setting_exits_2_with_message():
    result = run("serve", "--port", "nope")
    assert result.returncode == 2
    assert "--port" in result.stderr
