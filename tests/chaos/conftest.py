"""Each chaos module gets a control plane of its own with the standard nodes, so the
faults it injects reach no other test. They run one after another, never at once."""

from __future__ import annotations

import pytest

from tests.cluster.controlplane import ControlPlane, bin_dir, binaries_present
from tests.helpers import kube
from tests.helpers.fleet import on_demand_nodes, spot_nodes


@pytest.fixture(scope="module")
def cluster():
    if not binaries_present():
        pytest.fail(f"control plane binaries missing in {bin_dir()}: run `make cluster-bins` (make chaos does)")
    control_plane = ControlPlane(log=print)
    try:
        control_plane.start()
        kube.add_nodes(control_plane.api, spot_nodes() + on_demand_nodes())
        yield control_plane
    finally:
        control_plane.cleanup()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test shows the tail of every component's log, the extender's included."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        control_plane = item.funcargs.get("cluster") or next(
            (v[0] for v in item.funcargs.values() if isinstance(v, tuple) and isinstance(v[0], ControlPlane)), None)
        if control_plane is not None:
            report.sections.append(("control plane and extender logs", control_plane.dump_logs(60)))
