"""The wheel users install: built from this checkout, installed into a fresh venv from the
lock as the image does, beside another distribution that ships its own top-level `app`
package, then run.

Slow (a wheel build and a venv with every dependency, from pip's cache when warm), so it
has its own make target, `make package-test`, which `make test` runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*argv, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    # A clean environment: nothing from this checkout may leak onto the import path.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{argv} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


def throwaway_distribution(where: Path) -> Path:
    """A distribution named other-app that ships app/__init__.py and app/cli.py."""
    (where / "app").mkdir(parents=True)
    (where / "app" / "__init__.py").write_text("")
    (where / "app" / "cli.py").write_text("def main():\n    return 'not spot-extender'\n")
    (where / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "other-app"
        version = "1.0"
        [tool.setuptools]
        packages = ["app"]
    """))
    return where


def test_wheel_installs_beside_another_top_level_app_package(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels, ROOT, cwd=tmp_path)
    wheel = next(wheels.glob("spot_extender-*.whl"))
    top_levels = {name.split("/", 1)[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert "spot_extender" in top_levels and "app" not in top_levels, top_levels

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    pip, python = venv / "bin" / "pip", venv / "bin" / "python"
    other = throwaway_distribution(tmp_path / "other")
    # As the Dockerfile installs it: the lock, hash-checked, then the wheel resolving nothing.
    run(pip, "install", "--quiet", "--disable-pip-version-check", "--require-hashes",
        "-r", ROOT / "requirements" / "runtime.txt", cwd=tmp_path)
    run(pip, "install", "--quiet", "--disable-pip-version-check", "--no-deps", wheel, cwd=tmp_path)
    run(pip, "check", cwd=tmp_path)  # the lock satisfies every dependency the wheel declares
    version = run(venv / "bin" / "spot-extender", "--version", cwd=tmp_path).stdout.split()
    assert version[-1] == wheel.name.split("-")[1], (version, wheel.name)
    run(pip, "install", "--quiet", "--disable-pip-version-check", other, cwd=tmp_path)

    # Both installed: each keeps its own files.
    assert "--kubeconfig" in run(venv / "bin" / "spot-extender", "serve", "--help", cwd=tmp_path).stdout
    assert run(python, "-c", "import app.cli; print(app.cli.main())", cwd=tmp_path).stdout.strip() == "not spot-extender"

    # Removing the other distribution removes only its files.
    run(pip, "uninstall", "--yes", "--quiet", "other-app", cwd=tmp_path)
    assert "--kubeconfig" in run(venv / "bin" / "spot-extender", "serve", "--help", cwd=tmp_path).stdout
    assert "--kubeconfig" in run(python, "-m", "spot_extender", "serve", "--help", cwd=tmp_path).stdout
