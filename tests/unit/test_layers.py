"""Imports point one way: each subpackage of app/ may import only the layers below it
(see each package's docstring). An import upward, or between the two peers serving and
controller, fails here."""

import ast
import pathlib

import pytest

APP = pathlib.Path(__file__).resolve().parents[2] / "app"
# The rank of each layer; the flat modules at the top (cli, assembly, ...) rank above all.
RANKS = {"core": 0, "api": 1, "cluster": 2, "decisions": 3, "serving": 4, "controller": 4}


def layer(parts: tuple[str, ...]) -> str:
    """The layer a module of ours belongs to; "" for the flat modules at the top."""
    return parts[0] if parts and parts[0] in RANKS else ""


def imported(path: pathlib.Path, app: pathlib.Path) -> list[tuple[int, tuple[str, ...]]]:
    """(line, the package-relative parts of every module of ours this file imports)."""
    package = path.relative_to(app).parent.parts
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if not (node.module or "").startswith("spot_extender"):
                    continue
                target = tuple(node.module.split(".")[1:])
            else:
                base = package[: len(package) - (node.level - 1)]
                target = base + (tuple(node.module.split(".")) if node.module else ())
            found += [(node.lineno, target + (alias.name,)) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, tuple(a.name.split(".")[1:])) for a in node.names
                      if a.name.startswith("spot_extender.")]
    return found


def violations(path: pathlib.Path, app: pathlib.Path = APP) -> list[str]:
    own = layer(path.relative_to(app).parts[:-1])
    if not own:
        return []  # the top may import every layer
    out = []
    for line, target in imported(path, app):
        theirs = layer(target)
        if theirs != own and (not theirs or RANKS[theirs] >= RANKS[own]):
            out.append(f"{path.relative_to(app)}:{line} ({own}) imports {'.'.join(target)}")
    return out


MODULES = sorted(p for p in APP.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(APP)))
def test_imports_point_down(path):
    assert violations(path) == []


def test_the_rule_catches_an_upward_import(tmp_path):
    for folder, source in {
        "cluster": "from ..serving.wire import BadRequest\nfrom ..core import logs\n",
        "serving": "from ..controller.run import Controller\nfrom ..cluster import index\n",
        "core": "from .. import cli\nfrom . import logs\n",
    }.items():
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.py").write_text(source)
    assert violations(tmp_path / "cluster" / "x.py", tmp_path) == ["cluster/x.py:1 (cluster) imports serving.wire.BadRequest"]
    assert violations(tmp_path / "serving" / "x.py", tmp_path) == ["serving/x.py:1 (serving) imports controller.run.Controller"]
    assert violations(tmp_path / "core" / "x.py", tmp_path) == ["core/x.py:1 (core) imports cli"]


def test_at_most_ten_modules_stay_flat():
    flat = [p.name for p in APP.glob("*.py")]
    assert len(flat) <= 10, flat
