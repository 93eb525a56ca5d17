"""Autoscaled end-to-end fixtures: one control plane for the session whose every worker
node Karpenter's KWOK provider makes, spot-extender as the admission webhook, and
kube-scheduler without the extender (the managed-cluster case).

A session of its own (make e2e-autoscaled), so it never runs beside tests/e2e's control plane.
"""

from __future__ import annotations

import pytest

from tests.cluster.autoscaled import AutoscaledCluster
from tests.cluster.controlplane import bin_dir, binaries_present
from tests.cluster.karpenter import karpenter_present
from tests.helpers.reports import attach_logs

# Controller tuning so moves fit in a test, as in tests/e2e.
REBALANCE_INTERVAL = 10
EXTENDER_FLAGS = (
    "--log-format=text", f"--rebalance-interval={REBALANCE_INTERVAL}s", "--move-cooldown=1s",
    "--max-moves-per-minute=600", "--lease-duration=6s", "--renew-deadline=4s", "--retry-period=1s",
    "--floor-pending-timeout=60s",
)

_session: AutoscaledCluster | None = None


@pytest.fixture(scope="session")
def autoscaled():
    global _session
    if not binaries_present() or not karpenter_present():
        pytest.fail(f"control plane or Karpenter binaries missing in {bin_dir()}: run `make cluster-bins-karpenter` "
                    "(make test does)")
    with AutoscaledCluster(EXTENDER_FLAGS) as env:
        _session = env
        try:
            yield env
        finally:
            _session = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    attach_logs(outcome.get_result(), "control plane, Karpenter and spot-extender logs",
                _session.cluster if _session is not None else None, 60)
