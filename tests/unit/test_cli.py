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


def test_bad_setting_exits_2_with_message():
    result = run("serve", "--port", "nope")
    assert result.returncode == 2
    assert "--port" in result.stderr


def test_readme_documents_every_setting():
    from dataclasses import fields
    from pathlib import Path

    from spot_extender.core.settings import Settings, env_name

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for f in fields(Settings):
        assert f"`--{f.name.replace('_', '-')}`" in readme, f.name
        assert f"`{env_name(f.name)}`" in readme, f.name


def test_readme_names_every_metric():
    from pathlib import Path

    from spot_extender.core.metrics import Metrics

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for family in Metrics().registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        assert f"`{name}" in readme, name
