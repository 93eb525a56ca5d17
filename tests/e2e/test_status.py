"""`spot-extender status` against the local control plane: from the cluster with a
kubeconfig (the ServiceAccount's own, so k8s/base's RBAC is enough) and from the session
extender's /debug/workloads over HTTPS with a client certificate."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.cluster.controlplane import installed_command
from tests.helpers import kube
from tests.helpers import objects as o
from tests.helpers.fleet import ON_DEMAND_NODES
from tests.helpers.kube import on_demand
from tests.helpers.waiting import wait_for


def status(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([installed_command(), "status", *args], capture_output=True, text=True, timeout=120)


def rows(result: subprocess.CompletedProcess) -> dict:
    return {w["name"]: w for w in json.loads(result.stdout)["workloads"]}


def status_until(check, *args: str, what: str) -> subprocess.CompletedProcess:
    """Run status -o json until check(rows) holds: the index it lists, or the extender's, lags the pods."""
    def attempt():
        result = status(*args, "-o", "json")
        return result if result.returncode in (0, 1) and check(rows(result)) else None

    return wait_for(attempt, 30, what=what)


def test_status_reports_floors_and_exits_by_whether_every_floor_is_met(env, ns):
    kube.create(env.api, o.deployment("web", 4, namespace=ns))
    assert on_demand(kube.wait_ready(env.api, ns, "web", 4)) == 1
    from_cluster = ("--kubeconfig", str(env.kubeconfig), "--namespace", ns)
    from_extender = ("--url", env.extender.url, "--ca-file", str(env.ca_file),
                     "--client-cert", str(env.client_cert[0]), "--client-key", str(env.client_cert[1]),
                     "--namespace", ns)

    def web_settled(found: dict) -> bool:
        return "web" in found and (found["web"]["onDemand"], found["web"]["spot"]) == (1, 3)

    for source in (from_cluster, from_extender):
        result = status_until(web_settled, *source, what=f"status {source[:2]} showing web 1 on-demand, 3 spot")
        assert result.returncode == 0, result.stderr
        web = rows(result)["web"]
        assert (web["replicas"], web["floor"], web["floorSource"], web["floorMet"]) == (4, 1, "default", True)
        summary = json.loads(result.stdout)["summary"]
        assert (summary["spotShare"], summary["spot"], summary["spotAllowed"]) == (1.0, 3, 3)
        assert summary["hourlyCost"] == pytest.approx(1 + 3 * 0.3) and summary["hourlyCostAllOnDemand"] == 4

    table = status(*from_cluster, "--spot-price-ratio", "0.5")
    assert table.returncode == 0, table.stderr
    assert f"{ns}/web" in table.stdout and "met" in table.stdout
    assert "estimated hourly cost: 2.5 on-demand replica-hours against 4" in table.stdout

    # On-demand full: a new workload's floor pod falls back to spot, its floor is unmet, and
    # the exit code says so. Bare pods bound directly take most of each on-demand node's CPU.
    for name, _, _ in ON_DEMAND_NODES:
        kube.create(env.api, {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"hog-{name}", "namespace": ns, "labels": {"app": "hog"}},
            "spec": {"nodeName": name, "containers": [
                {"name": "hog", "image": "registry.invalid/hog:1", "resources": {"requests": {"cpu": "7500m"}}}]},
        })
    kube.wait_ready(env.api, ns, "hog", len(ON_DEMAND_NODES))
    kube.create(env.api, o.deployment("late", 2, namespace=ns, cpu="1"))
    assert on_demand(kube.wait_ready(env.api, ns, "late", 2)) == 0
    result = status_until(lambda found: "late" in found and found["late"]["spot"] == 2, *from_cluster,
                          what="status showing late on spot")
    assert result.returncode == 1 and rows(result)["late"]["floorMet"] is False
    assert rows(result)["web"]["floorMet"] is True
    table = status(*from_cluster)
    assert table.returncode == 1 and "UNMET" in table.stdout and "1 below their floor" in table.stdout


def test_status_says_why_it_cannot_read(env, tmp_path):
    missing = status("--kubeconfig", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "--kubeconfig: file not found" in missing.stderr, missing.stderr
    refused = status("--url", "http://127.0.0.1:1", "--timeout", "5")
    assert refused.returncode == 3 and "http://127.0.0.1:1" in refused.stderr  # 3: cannot read
    unauthenticated = status("--url", env.extender.url, "--ca-file", str(env.ca_file))  # no client certificate
    assert unauthenticated.returncode == 3 and "403" in unauthenticated.stderr, unauthenticated.stderr
