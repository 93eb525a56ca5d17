"""Render docs/configuration.md from the settings table in spot_extender.core.settings.

Every row comes from the running code: the Settings fields (help, parser, default), SECTIONS,
env_name, and the `serve` and `status` parsers of spot_extender.cli, so the page says what
`--help` says and cannot drift from it (tests/unit/test_configuration_doc.py checks).

    .venv/bin/python tools/render_configuration.py --write   # regenerate docs/configuration.md
    .venv/bin/python tools/render_configuration.py --check   # exit 1 when it is out of date
    .venv/bin/python tools/render_configuration.py           # print it
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import pathlib
import re
import sys

from spot_extender import cli, status_command
from spot_extender.core import settings as settings_mod
from spot_extender.core.settings import SECTIONS, Settings, env_name
from spot_extender.serving import status_table

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "configuration.md"
REGENERATE = ".venv/bin/python tools/render_configuration.py --write"

SHORT_LIST = 3  # a list default with more entries than this is listed under its section's table


# --- markdown ----------------------------------------------------------------------------------

_FLAG_OR_VAR = re.compile(r"(?<![\w`-])(--[a-z][a-z0-9-]*[a-z0-9]|\$[A-Z][A-Z0-9_]*)")


def prose(text: str) -> str:
    """Help text as a table cell: argparse's %% unescaped, markdown's specials escaped, and
    the flags and $VARIABLES it names as code."""
    text = text.replace("%%", "%")
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*")
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    return _FLAG_OR_VAR.sub(r"`\1`", text)


def code(text: str) -> str:
    return f"`{text}`" if "`" not in text else f"`` {text} ``"


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]


# --- what the code says --------------------------------------------------------------------------

def subparsers() -> dict[str, argparse.ArgumentParser]:
    """The `serve` and `status` parsers, as `spot-extender <command> --help` prints them."""
    return cli.parser().get_default("commands")


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


def status_settings() -> frozenset[str]:
    """The settings `status` takes a flag for: its own (--kubeconfig, ...) and those it shares with serve."""
    names = {f.name for f in dataclasses.fields(Settings)}
    return frozenset(a.dest for a in options(subparsers()["status"]) if a.dest in names)


def exit_codes(parser: argparse.ArgumentParser) -> list[tuple[int, str]]:
    """The exit codes a command's --help description names: 'Exit code 0: ..., 1: ....'"""
    found = re.search(r"Exit codes? (.+?)\.(?:\s|$)", parser.description or "")
    if not found:
        raise SystemExit(f"no 'Exit code N: ...' in the --help of {parser.prog}")
    codes = []
    for part in re.split(r",\s*(?=\d+:)", found.group(1)):
        number, _, meaning = part.partition(":")
        codes.append((int(number), meaning.strip()))
    return codes


def flag_with_metavar(name: str) -> str:
    f = Settings.__dataclass_fields__[name]
    parse = f.metadata["parse"]
    metavar = f.metadata["metavar"] or settings_mod._metavar(name, parse)
    # A boolean flag's value is optional, as in --help: `--drain` alone means true.
    return f"{settings_mod._flag(name)} " + (f"[{metavar}]" if parse is settings_mod.parse_bool else metavar)


def default(f: dataclasses.Field) -> tuple[str, list[str]]:
    """The default as a table cell, as --help shows it, and a long list's entries for below the table."""
    value = f.default
    if isinstance(value, tuple):
        if not value:
            return "none", []
        if len(value) > SHORT_LIST:
            return f"the {len(value)} built-in entries below", list(value)
        return code(",".join(value)), []
    shown = settings_mod._show_default(value, f.metadata["parse"])
    return (shown if value == "" else code(shown)), []


def accepts(f: dataclasses.Field) -> str:
    said = getattr(f.metadata["parse"], "accepts", "")
    if not said and isinstance(f.default, tuple):
        said = "a comma-separated list"
    return prose(said) if said else ""


# --- the page ----------------------------------------------------------------------------------------

def intro() -> list[str]:
    example = "floor_pending_timeout"
    ignored = ", ".join(code(n) for n in sorted(settings_mod.NOT_SETTINGS))
    return [
        "# Configuration",
        "",
        f"<!-- Generated from app/core/settings.py by tools/render_configuration.py; do not edit. "
        f"Regenerate: {REGENERATE} -->",
        "",
        f"Every setting of `spot-extender serve` is a flag and an environment variable: "
        f"`{settings_mod.ENV_PREFIX}` plus the flag's name in capitals, `_` for `-` "
        f"({code(settings_mod._flag(example))} is {code(env_name(example))}). "
        "A flag on the command line wins over the variable, which wins over the default. "
        "Each value is checked at start; one that cannot be used stops the process with exit code "
        f"{cli.USAGE}, naming the flag or variable it came from, and so does a `{settings_mod.ENV_PREFIX}*` "
        "variable that names no setting (with the nearest name). Ignored: "
        f"{ignored} (build tooling) and what kubelet injects for a Service named `spot-extender` "
        "(values like `tcp://...`); the shipped Deployments set `enableServiceLinks: false` so none are "
        "injected. A boolean flag alone means true (`--dry-run`); durations are "
        f"written {prose(settings_mod.parse_duration.accepts.split(': ', 1)[1])} or as plain seconds; "
        "lists are comma-separated. `spot-extender serve --help` says the same; flags marked "
        "*also `status`* are taken by `spot-extender status` too (its own flags are at the end).",
        "",
    ]


def exit_code_section(commands: dict[str, argparse.ArgumentParser]) -> list[str]:
    serve = exit_codes(commands["serve"])
    status = exit_codes(commands["status"])
    # What the descriptions say is what the code returns.
    returned = {status_table.ALL_FLOORS_MET, status_table.SOME_FLOOR_UNMET, cli.USAGE, status_command.FAILED}
    if {c for c, _ in status} != returned or [c for c, _ in serve] != [cli.USAGE, cli.CANNOT_START]:
        raise SystemExit(f"the exit codes in --help ({serve}, {status}) are not those the code returns")
    rows = [["`serve`", "0", "stopped by SIGTERM or SIGINT, after a graceful shutdown"]]
    rows += [["`serve`", str(c), prose(m)] for c, m in serve]
    rows += [["`status`", str(c), prose(m)] for c, m in status]
    return ["## Exit codes", ""] + table(["command", "code", "meaning"], rows) + [""]


def status_section(commands: dict[str, argparse.ArgumentParser]) -> list[str]:
    shared = sorted(status_settings() - {a.dest for a in options(_own_status_parser())})
    own_rows = []
    for action in options(_own_status_parser()):
        is_setting = action.dest in Settings.__dataclass_fields__
        said = prose(action.help or "")
        if action.choices:
            said = (said + "; " if said else "") + "one of " + ", ".join(code(c) for c in action.choices)
        if action.default is not None:
            shown = f"{action.default:g}" if isinstance(action.default, float) else str(action.default)
            said += f" (default {code(shown)})" if f"default {shown}" not in (action.help or "") else ""
        # As --help writes them; a flag with choices lists them in its description.
        metavar = "" if action.nargs == 0 or action.choices else f" {action.metavar or action.dest.upper()}"
        flags = ", ".join(code(o + metavar) for o in action.option_strings)
        own_rows.append([flags, code(env_name(action.dest)) if is_setting else "", said])
    return [
        "## Flags of `spot-extender status` alone",
        "",
        "`status` reads every workload's floor and placement once and exits. It takes the flags below, "
        "and these settings, which judge floors as `serve` does: "
        + ", ".join(code(settings_mod._flag(n)) for n in shared)
        + ". It reads the same environment variables as `serve`: "
        f"a `{settings_mod.ENV_PREFIX}*` variable that cannot be used stops it with exit code {cli.USAGE} too.",
        "",
    ] + table(["flag", "environment variable", "description"], own_rows) + [""]


def _own_status_parser() -> argparse.ArgumentParser:
    """The flags `status` declares itself (status_command.add_arguments), apart from the shared settings."""
    parser = argparse.ArgumentParser(add_help=False)
    status_command.add_arguments(parser)
    return parser


def settings_sections() -> list[str]:
    for_status = status_settings()
    lines: list[str] = []
    rows: list[list[str]] = []
    lists: list[tuple[str, list[str]]] = []

    def close() -> None:
        if rows:
            lines.extend(table(["flag", "environment variable", "default", "accepts", "description"], rows))
            lines.append("")
        for flag, entries in lists:
            lines.extend([f"Built-in {code(flag)}:", ""] + [f"- {code(e)}" for e in entries] + [""])
        rows.clear()
        lists.clear()

    for f in dataclasses.fields(Settings):
        if f.name in SECTIONS:
            close()
            title = SECTIONS[f.name]
            lines.extend([f"## {title[0].upper()}{title[1:]}", ""])
        shown, entries = default(f)
        if entries:
            lists.append((settings_mod._flag(f.name), entries))
        flag = code(flag_with_metavar(f.name)) + ("<br>*also `status`*" if f.name in for_status else "")
        rows.append([flag, code(env_name(f.name)), shown, accepts(f), prose(f.metadata["help"])])
    close()
    return lines


def render() -> str:
    commands = subparsers()
    lines = intro() + exit_code_section(commands) + settings_sections() + status_section(commands)
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


def stale(path: pathlib.Path = DOC) -> str:
    """'' when `path` holds what render() gives, else what differs and how to fix it."""
    want = render()
    have = path.read_text() if path.exists() else ""
    if have == want:
        return ""
    name = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    diff = list(difflib.unified_diff(have.splitlines(), want.splitlines(), name, "generated", lineterm="", n=0))
    return (f"{name} is out of date with app/core/settings.py; regenerate it with: {REGENERATE}\n"
            + "\n".join(diff[:40]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help=f"exit 1 when {DOC.relative_to(ROOT)} is out of date")
    mode.add_argument("--write", action="store_true", help=f"write {DOC.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    if args.check:
        problem = stale()
        if problem:
            print(problem, file=sys.stderr)
            return 1
        return 0
    text = render()
    if args.write:
        DOC.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
