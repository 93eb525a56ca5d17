"""End-to-end fixtures: one real control plane and extender for the session.

Placements are always read from the API server, never from the extender's view.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cluster.api import Api
from tests.cluster.controlplane import (
    ControlPlane,
    ExtenderOptions,
    ExtenderProcess,
    bin_dir,
    binaries_present,
    kubectl,
    make_client_cert,
    make_tls,
    service_account_kubeconfig,
)
from tests.helpers import kube
from tests.helpers.fleet import on_demand_nodes, spot_nodes
from tests.helpers.metrics import scrape
from tests.helpers.reports import attach_logs
from tests.helpers.waiting import wait_for

# The controller runs in the session's extender, tuned so moves fit in a test.
REBALANCE_INTERVAL = 15
FLOOR_PENDING_TIMEOUT = 25  # long enough to add a node in a test, short enough to wait out
EXTENDER_FLAGS = (
    "--log-format=text", f"--rebalance-interval={REBALANCE_INTERVAL}s", "--move-cooldown=1s",
    "--max-moves-per-minute=600", "--lease-duration=6s", "--renew-deadline=4s", "--retry-period=1s",
    "--optional-kind-recheck=2s",  # the Rollout CRD is installed by a test, after the extender started
    f"--floor-pending-timeout={FLOOR_PENDING_TIMEOUT}s",
)


@dataclass
class Env:
    cluster: ControlPlane
    extender: ExtenderProcess
    flags: tuple  # how the session extender runs: HTTPS with client certificates, controller tuning
    kubeconfig: Path  # the ServiceAccount's own credentials, bound by k8s/base's roles
    ca_file: Path
    client_cert: tuple[Path, Path]  # what the tests present; the scheduler has its own

    def extender_process(self, *extra: str, name: str, port: int | None = None) -> ExtenderProcess:
        """Another extender exactly like the session's (port unless given, TLS, credentials) plus `extra`."""
        return ExtenderProcess(self.cluster, *self.flags, *extra, kubeconfig=self.kubeconfig, ca_file=self.ca_file,
                               client_cert=self.client_cert, name=name, port=port)

    @property
    def api(self):
        return self.cluster.api

    def service_account_api(self) -> Api:
        """A client with the ServiceAccount's own token: what its RBAC and k8s/base's policy allow."""
        token = next(line.split("token:")[1].strip() for line in self.kubeconfig.read_text().splitlines()
                     if "token:" in line)
        return Api(self.cluster.server, token, str(self.cluster.ca_file))

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's value from the session extender's /metrics, 0 while it does not exist."""
        return scrape(self.extender, name, labels)


_session_env: Env | None = None


@pytest.fixture(scope="session")
def env():
    global _session_env
    if not binaries_present():
        pytest.fail(f"control plane binaries missing in {bin_dir()}: run `make cluster-bins` (make test does)")
    cluster = ControlPlane(log=print)
    # kube-scheduler calls the extender over HTTPS, checks it against this CA (caData) and
    # presents a client certificate the same CA signed (certFile/keyFile): the extender
    # runs with --tls-client-ca-file, so every placement test proves the scheduler authenticated.
    tls = cluster.workdir / "tls"
    ca, cert, key = make_tls(tls)
    scheduler_cert, scheduler_key = make_client_cert(tls, "kube-scheduler")
    harness_cert = make_client_cert(tls, "e2e-harness")
    # kube-apiserver presents its own to the webhook, which requires one like the verbs do.
    cluster.webhook_client_cert = make_client_cert(tls, "kube-apiserver")
    cluster.extender = ExtenderOptions(port=cluster.extender.port, https=True, ca_file=str(ca),
                                       client_cert=str(scheduler_cert), client_key=str(scheduler_key))
    try:
        cluster.start()
        # Install k8s/base for real, then run the extender as its ServiceAccount: every
        # end-to-end test doubles as proof that the roles are sufficient.
        # With k8s/overlays/surge beside it, as a user who wants surges applies it.
        for path in ("k8s/base", "k8s/overlays/surge"):
            applied = kubectl(cluster, "apply", "-k", path)
            if applied.returncode:
                pytest.fail(f"kubectl apply -k {path} failed: {applied.stderr}")
        kubeconfig = service_account_kubeconfig(cluster, "kube-system", "spot-extender")
        # With a client CA, --workload-metrics=auto would leave the per-workload series out of
        # the open /metrics; the placement tests read them back, so they are asked for.
        flags = (*EXTENDER_FLAGS, f"--tls-cert-file={cert}", f"--tls-key-file={key}", f"--tls-client-ca-file={ca}",
                 "--workload-metrics=true")
        extender = ExtenderProcess(cluster, *flags, kubeconfig=kubeconfig, ca_file=ca, client_cert=harness_cert).start()
        kube.add_nodes(cluster.api, spot_nodes() + on_demand_nodes())
        _session_env = Env(cluster, extender, flags, kubeconfig, ca, harness_cert)
        yield _session_env
    finally:
        _session_env = None
        cluster.cleanup()


@pytest.fixture
def ns(env, request):
    """A fresh namespace per test; the standard nodes are put back afterwards."""
    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-") + "-" + uuid.uuid4().hex[:5]
    kube.namespace(env.api, name)
    yield name
    # Its pods must be gone before the next test, or they take its room. kube-controller-manager
    # starts on a deleted namespace's content only 5 s later (its grace for other API
    # servers to see the deletion), so the pods are deleted here: in a terminating namespace
    # no controller can make new ones. The namespace itself goes on its own.
    kube.delete(env.api, "Namespace", name)
    env.api.delete(kube.collection("Pod", name), gracePeriodSeconds="0")
    wait_for(lambda: not env.api.get(kube.collection("Pod", name))["items"], 120,
             what=f"the pods of namespace {name} gone")
    restore_nodes(env)


def restore_nodes(env: Env) -> None:
    """Undo what a test did to nodes: recreate deleted ones, clear cordons and taints."""
    existing = kube.node_facts(env.api)
    missing = [n for n in spot_nodes() + on_demand_nodes() if n["metadata"]["name"] not in existing]
    for name, node in existing.items():
        if node["spec"].get("unschedulable") or node["spec"].get("taints"):
            env.api.merge_patch(f"/api/v1/nodes/{name}", {"spec": {"unschedulable": None, "taints": None}})
    if missing:
        kube.add_nodes(env.api, missing)
    env.cluster.check_running()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    attach_logs(outcome.get_result(), "control plane and extender logs",
                _session_env.cluster if _session_env is not None else None, 40)
