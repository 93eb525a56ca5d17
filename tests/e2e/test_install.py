"""Installable in a real cluster: k8s/ against the API server, least privilege, HTTPS.

The session fixture already installed k8s/base for real and runs the extender with
the ServiceAccount's own token over HTTPS, so every other end-to-end test proves the
role is sufficient; these tests prove it is not broader than needed, and the rest.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

import pytest

from tests.cluster.api import ApiError
from tests.cluster.controlplane import kubectl
from tests.helpers import kube
from tests.helpers import objects as o


@pytest.mark.parametrize("path", ["k8s/", "k8s/base", "k8s/overlays/tls", "k8s/overlays/network-policy",
                                  "k8s/overlays/webhook", "k8s/overlays/webhook-ca-bundle", "k8s/overlays/surge"])
def test_manifests_pass_server_side_dry_run(env, path):
    # A dry run stores nothing, so the webhook's Service reference is never called here.
    result = kubectl(env.cluster, "apply", "--dry-run=server", "-k", path)
    assert result.returncode == 0, result.stderr
    # The surge overlay is applied beside an install: it holds the surge role alone.
    assert ("clusterrole.rbac.authorization.k8s.io/spot-extender-surge" if path.endswith("surge")
            else "deployment.apps/spot-extender") in result.stdout
    if path.endswith("webhook"):
        assert "mutatingwebhookconfiguration.admissionregistration.k8s.io/spot-extender" in result.stdout


def test_the_cert_manager_overlay_injects_the_ca_of_the_certificate_it_issues(env):
    # cert-manager's CRDs are not installed here: the overlay is rendered, not applied.
    import yaml

    result = kubectl(env.cluster, "kustomize", "k8s/overlays/webhook-cert-manager")
    assert result.returncode == 0, result.stderr
    objects = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(result.stdout)}
    hook = objects[("MutatingWebhookConfiguration", "spot-extender")]
    assert hook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == "kube-system/spot-extender-tls"
    certificate = objects[("Certificate", "spot-extender-tls")]
    assert certificate["metadata"]["namespace"] == "kube-system"
    assert certificate["spec"]["secretName"] == "spot-extender-tls"  # the Secret the tls overlay mounts
    assert "spot-extender.kube-system.svc" in certificate["spec"]["dnsNames"]
    assert hook["webhooks"][0]["clientConfig"]["service"] == {
        "name": "spot-extender", "namespace": "kube-system", "path": "/mutate", "port": 8888}


def test_the_extender_runs_as_its_service_account(env):
    api = env.service_account_api()
    review = api.post("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                      {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert review["status"]["userInfo"]["username"] == "system:serviceaccount:kube-system:spot-extender"
    assert f"config={env.kubeconfig}" in env.extender.component.tail(400)


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("GET", "/api/v1/namespaces/kube-system/secrets", None),
        ("DELETE", "/api/v1/nodes/od-a-1", None),
        ("PATCH", "/apis/apps/v1/namespaces/kube-system/deployments/spot-extender", {"spec": {"replicas": 3}}),
        ("POST", "/api/v1/namespaces/default/pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
                                                     "spec": {"containers": [{"name": "x", "image": "x"}]}}),
        ("PUT", "/apis/coordination.k8s.io/v1/namespaces/default/leases/other", {"metadata": {"name": "other"}}),
    ],
    ids=["read-secrets", "delete-node", "write-deployment", "create-pod", "lease-outside-own-namespace"],
)
def test_the_role_is_not_broader_than_needed(env, method, path, body):
    api = env.service_account_api()
    content_type = "application/merge-patch+json" if method == "PATCH" else "application/json"
    with pytest.raises(ApiError) as refused:
        api.request(method, path, body, content_type=content_type)
    assert refused.value.status == 403


def test_what_it_needs_is_allowed(env):
    api = env.service_account_api()
    for path in ("/api/v1/nodes", "/api/v1/pods", "/apis/apps/v1/replicasets", "/apis/apps/v1/deployments",
                 "/apis/apps/v1/statefulsets", "/apis/policy/v1/poddisruptionbudgets"):
        assert "items" in api.get(path, limit="1"), path
    lease = api.get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/spot-extender")
    assert lease["spec"]["holderIdentity"]


def test_scheduler_calls_the_extender_over_https_checked_against_the_ca(env, ns):
    config = env.cluster.scheduler_config()
    assert "urlPrefix: https://127.0.0.1" in config and "enableHTTPS: true" in config and "caData: " in config
    plain = env.extender.url.replace("https://", "http://")
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        urllib.request.urlopen(plain + "/healthz", timeout=5)  # no plain HTTP on the TLS port
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(env.extender.url + "/healthz", timeout=5, context=ssl.create_default_context())
    assert json.loads(env.extender.get("/healthz"))["status"] == "ok"  # with the CA
    before = env.metric("spot_extender_request_duration_seconds_count", {"verb": "filter"})
    kube.create(env.api, o.deployment("solo", 1, namespace=ns))
    placed = kube.wait_ready(env.api, ns, "solo", 1)
    assert [p.capacity for p in placed] == ["on-demand"]
    assert env.metric("spot_extender_request_duration_seconds_count", {"verb": "filter"}) > before


def test_only_callers_with_a_client_certificate_reach_the_verbs(env, ns):
    config = env.cluster.scheduler_config()
    assert "certFile: " in config and "keyFile: " in config  # the scheduler presents its own
    anonymous = ssl.create_default_context(cafile=str(env.ca_file))  # trusts the server, shows no certificate
    body = json.dumps({"Pod": {"metadata": {"name": "p"}}, "NodeNames": []}).encode()
    for path, data in (("/filter", body), ("/prioritize", body), ("/debug/workloads", None)):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(env.extender.url + path, data=data), timeout=5,
                                   context=anonymous)
        assert refused.value.code == 403, path
    for path in ("/healthz", "/readyz", "/metrics"):  # probes and Prometheus need no certificate
        with urllib.request.urlopen(env.extender.url + path, timeout=5, context=anonymous) as resp:
            assert resp.status == 200, path
    # ... while the scheduler's calls go through: a floor placed by the extender.
    refused_before = env.metric("spot_extender_bad_requests_total", {"path": "/filter", "status": "403"})
    answered_before = env.metric("spot_extender_request_duration_seconds_count", {"verb": "filter"})
    kube.create(env.api, o.deployment("solo", 1, namespace=ns))
    assert [p.capacity for p in kube.wait_ready(env.api, ns, "solo", 1)] == ["on-demand"]
    assert env.metric("spot_extender_request_duration_seconds_count", {"verb": "filter"}) > answered_before
    assert env.metric("spot_extender_bad_requests_total", {"path": "/filter", "status": "403"}) == refused_before
