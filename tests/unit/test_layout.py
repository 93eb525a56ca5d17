"""CONTRIBUTING.md's Layout section matches the tree module by module, and every module's tests
are where it says: tests/unit/test_<module>.py, or the files its line names."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
APP = ROOT / "app"


def layout() -> dict[str, list[str]]:
    """{folder under app/: the lines of the Layout section about it}."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    section = text[text.index("## Layout\n"):]
    section = section[: section.index("\nWhere to add:")]
    folders: dict[str, list[str]] = {}
    current = None
    for line in section.splitlines():
        heading = re.match(r"\*\*`app/([\w/]*)`\*\*", line)
        if heading:
            current = folders.setdefault(heading.group(1).rstrip("/"), [])
        elif current is not None and line.strip():
            if line.startswith("- "):
                current.append(line)
            elif current:
                current[-1] += " " + line.strip()  # a continued item
    return folders


def named_modules(lines: list[str]) -> dict[str, str]:
    """{module file: the item that names it} for every module an item lists before its text."""
    found = {}
    for item in lines:
        head = item.split(":", 1)[0] if re.match(r"- `\w+\.py`", item) else ""
        for name in re.findall(r"`(\w+\.py)`", head):
            found[name] = item
    return found


def test_every_module_is_in_the_layout_and_nothing_else_is():
    folders = layout()
    tree = {str(p.parent.relative_to(APP)).replace(".", "") for p in APP.rglob("*.py")}
    assert set(folders) == tree
    for folder, lines in folders.items():
        on_disk = {p.name for p in (APP / folder).glob("*.py") if p.name != "__init__.py" or folder == ""}
        assert set(named_modules(lines)) == on_disk, folder


def test_every_module_has_its_tests_where_the_layout_says():
    missing = []
    for folder, lines in layout().items():
        for module, item in named_modules(lines).items():
            if "(no logic)" in item or (ROOT / "tests" / "unit" / f"test_{module}").exists():
                continue
            tests = re.search(r"tests: ([^)]*)\)", item)
            named = re.findall(r"`(test_\w+\.py)`", tests.group(1)) if tests else []
            if not named or not all((ROOT / "tests" / "unit" / t).exists() for t in named):
                missing.append(f"app/{folder}/{module}".replace("//", "/"))
    assert missing == []
