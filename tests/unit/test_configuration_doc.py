"""docs/configuration.md is what tools/render_configuration.py renders from the settings table,
so a flag, its help, its limits or its default cannot change without the page."""

import copy
import dataclasses
import importlib.util
import pathlib
import subprocess
import sys
import types

import pytest

from spot_extender import cli
from spot_extender.core import settings as settings_mod
from spot_extender.core.settings import SECTIONS, Settings, env_name

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"
TOOL = ROOT / "tools" / "render_configuration.py"


@pytest.fixture(scope="module")
def render():
    spec = importlib.util.spec_from_file_location("render_configuration", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def flag(name):
    return "--" + name.replace("_", "-")


STATUS_ALONE = "## Flags of `spot-extender status` alone\n"


def row(text, name):
    """The table row of a setting in the settings sections of the page."""
    settings_part = text.split(STATUS_ALONE)[0]
    rows = [line for line in settings_part.splitlines() if line.startswith(f"| `{flag(name)} ")]
    assert len(rows) == 1, (name, rows)
    return rows[0]


def test_the_page_is_what_the_generator_renders(render):
    problem = render.stale(DOC)
    assert problem == "", problem


def test_a_stale_page_names_the_command_that_regenerates_it(render, tmp_path):
    page = tmp_path / "configuration.md"
    page.write_text(render.render().replace("# Configuration\n", "# Configuration, hand-edited\n", 1))
    problem = render.stale(page)
    assert "tools/render_configuration.py --write" in problem
    assert "-# Configuration, hand-edited" in problem.splitlines() and "+# Configuration" in problem.splitlines()
    page.write_text(render.render())
    assert render.stale(page) == ""


def test_changing_a_help_text_changes_the_page(render, monkeypatch):
    """The generator reads the table itself: a help, limit or default edited in settings.py
    without regenerating makes the page stale."""
    port = copy.copy(Settings.__dataclass_fields__["port"])
    port.metadata = types.MappingProxyType({**port.metadata, "help": "the port we listen on, renamed"})
    monkeypatch.setitem(Settings.__dataclass_fields__, "port", port)
    monkeypatch.setattr(settings_mod.parse_positive_duration, "accepts", "a duration, changed")
    page = render.render()
    assert "the port we listen on, renamed" in row(page, "port")
    assert "a duration, changed" in row(page, "floor_pending_timeout")
    assert page != DOC.read_text()


def test_every_setting_has_a_row_with_its_env_var_default_and_help(render):
    text = DOC.read_text()
    for f in dataclasses.fields(Settings):
        line = row(text, f.name)
        assert f"`{env_name(f.name)}`" in line, f.name
        assert render.prose(f.metadata["help"]) in line, f.name
        accepts = getattr(f.metadata["parse"], "accepts", "")
        assert render.prose(accepts) in line, f.name
        if isinstance(f.default, tuple) and len(f.default) > render.SHORT_LIST:
            assert all(f"- `{entry}`" in text for entry in f.default), f.name
        elif f.default not in ("", ()):
            shown = settings_mod._show_default(f.default, f.metadata["parse"])
            assert f"| `{shown}` |" in line, f.name


def test_every_flag_of_serve_help_is_on_the_page():
    help_text = subprocess.run([sys.executable, "-m", "spot_extender", "serve", "--help"], capture_output=True,
                               text=True, timeout=60).stdout
    text = DOC.read_text()
    for f in dataclasses.fields(Settings):
        assert flag(f.name) in help_text and f"`{flag(f.name)} " in text, f.name


def test_sections_follow_the_settings_table():
    text = DOC.read_text()
    headings = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    titles = [t[0].upper() + t[1:] for t in SECTIONS.values()]
    assert [h for h in headings if h in titles] == titles
    order = [f.name for f in dataclasses.fields(Settings)]
    positions = [text.index(f"| `{flag(name)} ") for name in order]
    assert positions == sorted(positions)
    for first, title in SECTIONS.items():  # each section's table starts with its first setting
        after = text[text.index(f"## {title[0].upper()}{title[1:]}\n"):]
        assert after.split("\n| `", 2)[1].startswith(flag(first) + " "), first


def test_the_flags_status_takes_are_marked():
    text = DOC.read_text()
    status = cli.parser().get_default("commands")["status"]
    takes = {a.dest for a in status._actions}
    for f in dataclasses.fields(Settings):
        marked = "*also `status`*" in row(text, f.name)
        assert marked == (f.name in takes), f.name
    assert cli.STATUS_SETTINGS <= takes
    own = text.split(STATUS_ALONE)[1]  # and its own flags are listed after the settings
    for action in status._actions:
        if action.option_strings and action.dest not in cli.STATUS_SETTINGS and action.dest != "help":
            assert f"`{action.option_strings[-1]}" in own, action.dest


def test_the_exit_codes_of_status_are_listed():
    from spot_extender import status_command
    from spot_extender.serving import status_table

    text = DOC.read_text()
    for code in (status_table.ALL_FLOORS_MET, status_table.SOME_FLOOR_UNMET, cli.USAGE, status_command.FAILED):
        assert f"| `status` | {code} |" in text, code


def test_check_exits_0_on_the_shipped_page():
    result = subprocess.run([sys.executable, str(TOOL), "--check"], capture_output=True, text=True, timeout=60,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr
