"""`helm install` with default values on an empty cluster with no cert-manager: the
chart's rendered manifests applied to a control plane of this module's own, and
spot-extender run as the chart's Deployment would run it (its args, its ServiceAccount's
token). The webhook must work within 30 s with certificates it made itself; a forced
rotation and two replicas racing must never leave kube-apiserver failing open; and the
ValidatingAdmissionPolicy must let the product work while refusing anything else under
its ServiceAccount.

What the harness changes, because nothing here runs pods for real: the Deployment is
applied with 0 replicas (its image cannot run on KWOK), the processes run locally on
this machine's address, and an EndpointSlice of the chart's Service points at them.
kube-apiserver runs with --enable-aggregator-routing, so it calls the webhook at those
addresses while checking the certificate against the Service's DNS name, as in a cluster.
"""

from __future__ import annotations

import base64
import socket
import ssl
import threading
import time

import pytest
import yaml

from tests.chart.test_chart import container, docs, template
from tests.cluster.api import Api, ApiError
from tests.cluster.controlplane import ControlPlane, ExtenderProcess, kubectl, service_account_kubeconfig
from tests.helpers import kube
from tests.helpers import objects as o
from tests.helpers.fleet import on_demand_nodes, spot_nodes
from tests.helpers.metrics import samples, scrape_sum
from tests.helpers.ports import free_port
from tests.helpers.waiting import wait_for
from tests.helpers.webhook import webhook_mutates

NS = "kube-system"
SECRET = f"/api/v1/namespaces/{NS}/secrets/spot-extender-webhook-tls"
WEBHOOK = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/spot-extender"
WORKING_WITHIN = 30.0


def host_address() -> str:
    """This machine's own non-loopback IPv4 address: EndpointSlices refuse loopback ones."""
    candidates = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("198.51.100.1", 9))  # no packet is sent; the kernel picks the source address
            candidates.append(probe.getsockname()[0])
    except OSError:  # no route: ask the resolver for this host's names instead
        pass
    candidates += socket.gethostbyname_ex(socket.gethostname())[2]
    for address in candidates:
        if not address.startswith("127."):
            return address
    pytest.fail("this machine has no non-loopback IPv4 address for an EndpointSlice to name")


@pytest.fixture(scope="module")
def cluster():
    plane = ControlPlane(log=print)
    plane.use_extender = False  # webhook only, as on a managed cluster
    plane.apiserver_args = ["--enable-aggregator-routing=true"]
    with plane:
        kube.add_nodes(plane.api, spot_nodes() + on_demand_nodes())
        yield plane


@pytest.fixture(scope="module")
def installed(cluster):
    """The default chart, applied; the moment it was applied."""
    rendered = docs(template())
    for obj in rendered:
        if obj["kind"] == "Deployment":
            obj["spec"]["replicas"] = 0
    started = time.monotonic()
    result = kubectl(cluster, "apply", "-f", "-", input_text=yaml.safe_dump_all(rendered))
    assert result.returncode == 0, result.stderr
    return rendered, started


def run_like_the_deployment(cluster, rendered, name: str, *extra: str) -> ExtenderProcess:
    """The Deployment's args, the ServiceAccount's token, on this machine's address, behind
    an EndpointSlice of the chart's Service."""
    args = container(rendered)["args"]
    assert args[0] == "serve"
    port = free_port()
    process = ExtenderProcess(
        cluster, *args[1:], "--host=0.0.0.0", "--log-format=text", *extra, name=name, port=port,
        kubeconfig=service_account_kubeconfig(cluster, NS, "spot-extender"), ssl_context=ssl._create_unverified_context(),
    )
    cluster.api.post(f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices", {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": f"spot-extender-{name}", "labels": {
            "kubernetes.io/service-name": "spot-extender", "endpointslice.kubernetes.io/managed-by": "e2e-harness"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [host_address()], "conditions": {"ready": True}}],
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
    })
    return process


def stop(cluster, process: ExtenderProcess, name: str) -> None:
    process.stop()
    kube_delete(cluster.api, f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices/spot-extender-{name}")


def kube_delete(api: Api, path: str) -> None:
    try:
        api.delete(path)
    except ApiError as exc:
        if exc.status != 404:
            raise


def secret_data(api: Api) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (api.get(SECRET).get("data") or {}).items()}


def ca_bundles(api: Api) -> list[bytes]:
    return [base64.b64decode(h["clientConfig"].get("caBundle", "")) for h in api.get(WEBHOOK)["webhooks"]]


def served_certificate(process: ExtenderProcess) -> bytes:
    port = int(process.url.rsplit(":", 1)[1])
    context = ssl._create_unverified_context()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw) as tls:
            return tls.getpeercert(binary_form=True)


def der(pem: bytes) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.decode().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n")


def fail_open_count(api: Api) -> float:
    """kube-apiserver's count of admissions it let through because the webhook failed."""
    return sum(s.value for s in samples(api.get("/metrics"), "apiserver_admission_webhook_fail_open_count")
               if s.labels.get("name") == "roles.spot-extender.io")


def test_a_default_install_on_an_empty_cluster_admits_with_roles_within_30_s(cluster, installed):
    rendered, started = installed
    assert "caBundle" not in cluster.api.get(WEBHOOK)["webhooks"][0]["clientConfig"]  # nobody pasted one
    process = run_like_the_deployment(cluster, rendered, "replica-a").start(wait_ready=False)
    try:
        ns = kube.namespace(cluster.api, "default-install")
        wait_for(lambda: webhook_mutates(cluster.api, ns), 60, interval=0.5, what="a role from the webhook")
        elapsed = time.monotonic() - started
        print(f"\n    webhook working {elapsed:.1f}s after kubectl apply of the default chart")
        assert elapsed < WORKING_WITHIN
        data = secret_data(cluster.api)
        assert set(data) >= {"ca.crt", "ca.key", "tls.crt", "tls.key"}
        assert all(bundle == data["ca.crt"] for bundle in ca_bundles(cluster.api))
        assert served_certificate(process) == der(data["tls.crt"])
        # Real pods of a workload: one floor, the rest spot, as the README promises.
        kube.create(cluster.api, o.deployment("web", 4, namespace=ns))
        wait_for(lambda: len(kube.placements(cluster.api, ns, "web")) == 4, 60, what="4 pods")
        roles = sorted(p.role for p in kube.placements(cluster.api, ns, "web"))
        assert roles == ["floor", "spot", "spot", "spot"], roles
        # The policy lets the product's own writes through: the leader sets deletion costs.
        wait_for(lambda: all(cost_of(cluster.api, ns, p.pod) is not None for p in kube.placements(cluster.api, ns, "web")),
                 60, what="pod-deletion-cost on every pod")
    finally:
        stop(cluster, process, "replica-a")


def cost_of(api: Api, ns: str, pod: str):
    annotations = api.get(f"/api/v1/namespaces/{ns}/pods/{pod}")["metadata"].get("annotations") or {}
    return annotations.get("controller.kubernetes.io/pod-deletion-cost")


def test_two_replicas_racing_at_start_agree_and_rotation_never_fails_an_admission(cluster, installed):
    rendered, _ = installed
    # Start from nothing again: an empty Secret and no caBundle.
    cluster.api.merge_patch(SECRET, {"data": None})
    hooks = cluster.api.get(WEBHOOK)["webhooks"]
    for hook in hooks:
        hook["clientConfig"].pop("caBundle", None)
    cluster.api.merge_patch(WEBHOOK, {"webhooks": hooks})
    short = ("--cert-validity=30s", "--ca-validity=90s")
    replicas = [run_like_the_deployment(cluster, rendered, name, *short) for name in ("race-a", "race-b")]
    try:
        for process in replicas:
            process.start(wait_ready=False)
        ns = kube.namespace(cluster.api, "rotation")
        wait_for(lambda: webhook_mutates(cluster.api, ns), WORKING_WITHIN, interval=0.5, what="a role from the webhook")
        data = secret_data(cluster.api)
        wait_for(lambda: all(served_certificate(p) == der(secret_data(cluster.api)["tls.crt"]) for p in replicas),
                 15, what="both replicas serving the Secret's certificate")
        issued = sum(scrape_sum(p, "spot_extender_certificates_issued_total") for p in replicas)
        assert issued == 2, "one CA and one certificate: the replica that lost the race served the winner's"

        # 100 s of admissions through two rotations of the certificate and one of the CA.
        before = fail_open_count(cluster.api)
        outcomes: list[bool] = []
        seen_certs, seen_cas = {data["tls.crt"]}, {data["ca.crt"]}
        stop_at = time.monotonic() + 100
        done = threading.Event()

        def admit() -> None:
            while not done.is_set():
                outcomes.append(webhook_mutates(cluster.api, ns))
                time.sleep(0.2)

        worker = threading.Thread(target=admit, daemon=True)
        worker.start()
        while time.monotonic() < stop_at:
            current = secret_data(cluster.api)
            seen_certs.add(current["tls.crt"])
            seen_cas.add(current["ca.crt"])
            time.sleep(1)
        done.set()
        worker.join(10)
        failed_open = fail_open_count(cluster.api) - before
        print(f"\n    {len(outcomes)} admissions during rotation, {outcomes.count(False)} unpatched, "
              f"{failed_open:.0f} failed open; {len(seen_certs)} serving certificates, {len(seen_cas)} CA bundles")
        assert len(seen_certs) >= 4 and len(seen_cas) >= 2, "the short validity forced renewals of both"
        assert len(outcomes) >= 100
        assert outcomes.count(False) == 0
        assert failed_open == 0
    finally:
        for process, name in zip(replicas, ("race-a", "race-b")):
            stop(cluster, process, name)


@pytest.mark.parametrize("what, path, patch", [
    ("pod label", "/api/v1/namespaces/{ns}/pods/{pod}", {"metadata": {"labels": {"app": "other"}}}),
    ("pod annotation not its own", "/api/v1/namespaces/{ns}/pods/{pod}",
     {"metadata": {"annotations": {"example.com/x": "1"}}}),
    ("replicaset spec", "/apis/apps/v1/namespaces/{ns}/replicasets/{rs}", {"spec": {"replicas": 9}}),
    ("webhook failurePolicy", WEBHOOK, None),
])
def test_the_admission_policy_refuses_anything_but_its_own_annotations(cluster, installed, what, path, patch):
    api = cluster.api
    ns = kube.namespace(api, "policy-" + "-".join(what.lower().split()))
    kube.create(api, o.deployment("web", 1, namespace=ns))
    wait_for(lambda: kube.placements(api, ns, "web"), 60, what="a pod")
    pod = kube.placements(api, ns, "web")[0].pod
    rs = api.get(f"/apis/apps/v1/namespaces/{ns}/replicasets")["items"][0]["metadata"]["name"]
    token = next(line.split("token:")[1].strip() for line in
                 service_account_kubeconfig(cluster, NS, "spot-extender").read_text().splitlines() if "token:" in line)
    as_service_account = Api(cluster.server, token, str(cluster.ca_file))
    target = path.format(ns=ns, pod=pod, rs=rs)
    # Its own annotation goes through (RBAC and the policy agree)...
    if "/pods/" in target:
        as_service_account.merge_patch(target, {"metadata": {"annotations": {
            "controller.kubernetes.io/pod-deletion-cost": "7"}}})
    # ...anything else is refused by the policy, though RBAC would allow it.
    with pytest.raises(ApiError) as refused:
        if patch is None:  # its webhook configuration, which it may update (PUT) for caBundle only
            changed = api.get(WEBHOOK)
            changed["webhooks"][0]["failurePolicy"] = "Fail"
            as_service_account.request("PUT", WEBHOOK, changed)
        else:
            as_service_account.merge_patch(target, patch)
    assert refused.value.status in (403, 422), refused.value
    assert "spot-extender may" in str(refused.value) or "spot-extender-least-privilege" in str(refused.value)
