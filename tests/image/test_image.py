"""The image, built from the Dockerfile with buildah (tests/image/build-image.sh), run:
its version, its user, its Python packages against the lock, and `serve` against the
local control plane until /readyz says ready. Slow (a build, a control plane), so it has
its own make target, `make image-test`, which `make test` runs."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import tomllib
import urllib.request
from pathlib import Path

import pytest

from tests.cluster.controlplane import ControlPlane
from tests.helpers.lock import locked
from tests.helpers.ports import free_port
from tests.helpers.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
BUILDAH = ["buildah", "--storage-driver", "vfs"]
# Not the image's own files: the Python it brings, and the project itself.
TOOLING = {"pip", "setuptools", "spot-extender"}


@pytest.fixture(scope="module")
def container():
    build = subprocess.run(["bash", str(ROOT / "tests/image/build-image.sh")], capture_output=True, text=True,
                           timeout=1500)
    assert build.returncode == 0, f"image build failed:\n{build.stderr[-4000:]}"
    image = build.stdout.strip().splitlines()[-1]
    name = subprocess.run([*BUILDAH, "from", "-q", image], capture_output=True, text=True, check=True,
                          timeout=300).stdout.strip()
    yield name
    subprocess.run([*BUILDAH, "rm", name], capture_output=True, timeout=120)


def run_in(container: str, *argv: str, mounts: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    volumes = [arg for m in mounts for arg in ("-v", m)]
    return subprocess.run([*BUILDAH, "run", "--isolation", "chroot", *volumes, container, "--", *argv],
                          capture_output=True, text=True, timeout=120)


def test_image_says_its_version_and_runs_as_its_own_user(container):
    assert run_in(container, "spot-extender", "--version").stdout.strip() == f"spot-extender {VERSION}"
    help_text = run_in(container, "spot-extender", "--help").stdout
    assert "serve" in help_text and "status" in help_text
    assert run_in(container, "id", "-u").stdout.strip() == "65532"


def test_image_python_packages_are_exactly_the_lock(container):
    frozen = run_in(container, "/opt/venv/bin/pip", "freeze", "--all").stdout.splitlines()
    installed = {}
    for line in frozen:
        name, _, version = line.partition("==")
        installed[name.lower().replace("_", "-")] = version
    environment = json.loads(run_in(container, "python", "-c", (
        "import json, platform, sys; print(json.dumps({'python_full_version': platform.python_version(), "
        "'python_version': '.'.join(platform.python_version_tuple()[:2]), 'sys_platform': sys.platform, "
        "'platform_machine': platform.machine(), 'implementation_name': sys.implementation.name, "
        "'platform_python_implementation': platform.python_implementation(), 'os_name': 'posix'}))")).stdout)
    pins = {name: version for name, (version, _) in locked(ROOT / "requirements/runtime.txt", environment).items()}
    found = {n: v for n, v in installed.items() if n not in TOOLING and not n.startswith("spot-extender")}
    assert found == pins, f"image packages differ from requirements/runtime.txt: {set(found.items()) ^ set(pins.items())}"


def test_image_serves_against_the_local_control_plane(container):
    port = free_port()
    with ControlPlane(log=print) as cluster:
        # The image runs as 65532, which cannot enter the harness's 0700 directories: the CA
        # and a kubeconfig naming it go into a directory of their own, readable by all.
        config = Path(tempfile.mkdtemp(prefix="spot-extender-image-"))
        config.chmod(0o755)
        shutil.copy(cluster.ca_file, config / "ca.crt")
        kubeconfig = cluster.write_kubeconfig(config / "kubeconfig", cluster.token)
        kubeconfig.write_text(kubeconfig.read_text().replace(str(cluster.ca_file), "/etc/spot-extender/ca.crt"))
        for path in config.iterdir():
            path.chmod(0o644)
        serve = subprocess.Popen(
            [*BUILDAH, "run", "--isolation", "chroot", "-v", f"{config}:/etc/spot-extender:ro", container, "--",
             "spot-extender", "serve", "--kubeconfig=/etc/spot-extender/kubeconfig", "--host=127.0.0.1",
             f"--port={port}", "--log-format=text"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            def ready() -> bool:
                if serve.poll() is not None:
                    raise RuntimeError(f"serve in the image exited {serve.returncode}:\n{serve.stdout.read()}")
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
                    return json.loads(response.read()).get("status") == "ready"

            wait_for(ready, 120, what="serve in the image: /readyz")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                assert b"spot_extender_index_objects" in response.read()
        finally:
            stop(serve)
            shutil.rmtree(config, ignore_errors=True)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to buildah run and what it started (its own session), then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=30)
            return
        except subprocess.TimeoutExpired:
            continue
