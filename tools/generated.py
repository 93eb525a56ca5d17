"""Generated blocks inside hand-written markdown: the text between `<!-- generated:NAME -->`
and `<!-- end:NAME -->` belongs to a script, the rest to people."""

from __future__ import annotations

import difflib
import pathlib
import re
from typing import Callable


def fill(text: str, name: str, body: str) -> str:
    """text with the block NAME's contents replaced by body; the markers must exist once."""
    pattern = re.compile(rf"(<!-- generated:{re.escape(name)} -->\n)(?:.*?\n)?(<!-- end:{re.escape(name)} -->)", re.S)
    if len(pattern.findall(text)) != 1:
        raise ValueError(f"block {name!r}: expected one <!-- generated:{name} --> ... <!-- end:{name} --> pair")
    return pattern.sub(lambda m: m.group(1) + body.rstrip("\n") + "\n" + m.group(2), text)


def cell(text: str) -> str:
    """Free text as one markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def stale(path: pathlib.Path, render: Callable[[str], str], regenerate: str) -> str:
    """A diff and the command to run when path differs from what render makes of it; else ''."""
    current = path.read_text()
    wanted = render(current)
    if wanted == current:
        return ""
    diff = "".join(difflib.unified_diff(current.splitlines(True), wanted.splitlines(True), str(path), "generated"))
    return f"{path.name} is out of date; run: {regenerate}\n{diff}"


def main(path: pathlib.Path, render: Callable[[str], str], regenerate: str, argv: list[str]) -> int:
    if argv == ["--write"]:
        path.write_text(render(path.read_text()))
        return 0
    if argv == ["--check"]:
        problem = stale(path, render, regenerate)
        print(problem or f"{path.name} is current")
        return 1 if problem else 0
    print(f"usage: {regenerate.split(' --')[0]} --write | --check")
    return 2
