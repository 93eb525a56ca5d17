"""Test reports that carry the components' logs when a test fails."""

from __future__ import annotations

from tests.cluster.controlplane import ControlPlane


def attach_logs(report, title: str, cluster: ControlPlane | None, lines: int) -> None:
    """Add the last `lines` of every component's log to a failed test's report."""
    if report.when == "call" and report.failed and cluster is not None:
        report.sections.append((title, cluster.dump_logs(lines)))
