"""Each chaos module gets a control plane of its own with the standard nodes, so the
faults it injects reach no other test. They run one after another, never at once."""

from __future__ import annotations

import pytest

from tests.cluster.controlplane import ControlPlane, binaries_present, bin_dir
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
