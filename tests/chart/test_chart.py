"""charts/spot-extender: helm lint and template with the default values and with every
option on, its schema's answers to bad values, agreement with the kustomize manifests
(kinds, RBAC rules, container args), and server-side dry-run on a local control plane.
helm and kubectl come from make cluster-bins-helm; `make chart-test` runs this, and `make test`
runs that."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.cluster.controlplane import ControlPlane, bin_dir, kubectl

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "spot-extender"
ALL_OPTIONS = Path(__file__).with_name("all-options.yaml")
CA_BUNDLE = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="  # base64 of a PEM header: the schema checks shape only
# Kinds whose CRDs the local control plane does not have: server-side dry-run cannot check them.
NEEDS_CRDS = {"ServiceMonitor", "Issuer", "Certificate"}


def run(*argv, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, input=input, timeout=120)


def helm(*args) -> subprocess.CompletedProcess:
    binary = bin_dir() / "helm"
    if not binary.exists():
        pytest.fail(f"{binary} is missing: run `make cluster-bins-helm` (make test does)")
    return run(binary, *args)


def template(*args) -> str:
    result = helm("template", "spot-extender", CHART, "--namespace", "kube-system", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def kustomize(overlay: str) -> list[dict]:
    result = run(bin_dir() / "kubectl", "kustomize", ROOT / overlay)
    assert result.returncode == 0, result.stderr
    return docs(result.stdout)


def identities(objects: list[dict]) -> set[tuple[str, str, str]]:
    return {(o["kind"], o["metadata"]["name"], o["metadata"].get("namespace", "")) for o in objects}


def of_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def rbac_rules(objects: list[dict]) -> dict[tuple[str, str], list]:
    return {(o["kind"], o["metadata"]["name"]): o["rules"] for o in objects if o["kind"] in ("ClusterRole", "Role")}


def container(objects: list[dict]) -> dict:
    (deployment,) = of_kind(objects, "Deployment")
    (main,) = deployment["spec"]["template"]["spec"]["containers"]
    return main


@pytest.mark.parametrize("values", [(), ("-f", ALL_OPTIONS)], ids=["defaults", "all-options"])
def test_lint_and_template(values):
    lint = helm("lint", "--strict", CHART, *values)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    rendered = docs(template(*values))
    assert {"Deployment", "Service", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
            "PodDisruptionBudget"} <= {o["kind"] for o in rendered}


# Each kustomize overlay and the values that ask the chart for the same thing.
OVERLAYS = [
    ("k8s/base", ("--set", "webhook.enabled=false")),
    ("k8s/overlays/tls", ("--set", "tls.enabled=true,webhook.enabled=false")),
    ("k8s/overlays/webhook", ()),  # the chart's defaults: the webhook with certificates of its own
    ("k8s/overlays/webhook-ca-bundle", ("--set", "tls.enabled=true", "--set", f"webhook.caBundle={CA_BUNDLE}")),
    ("k8s/overlays/webhook-cert-manager", ("--set", "tls.enabled=true,webhook.certManager.enabled=true")),
    ("k8s/overlays/servicemonitor", ("--set", "serviceMonitor.enabled=true,webhook.enabled=false")),
    ("k8s/overlays/network-policy", ("--set", "networkPolicy.enabled=true,webhook.enabled=false")),
]


@pytest.mark.parametrize(("overlay", "values"), OVERLAYS, ids=[o for o, _ in OVERLAYS])
def test_chart_and_kustomize_agree(overlay, values):
    chart, manifests = docs(template(*values)), kustomize(overlay)
    assert identities(chart) == identities(manifests)
    assert rbac_rules(chart) == rbac_rules(manifests)
    assert container(chart)["args"] == container(manifests)["args"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container(chart)[probe]["httpGet"].get("scheme", "HTTP") == \
            container(manifests)[probe]["httpGet"].get("scheme", "HTTP")
    assert container(chart)["volumeMounts"] == container(manifests)["volumeMounts"]
    chart_affinity = of_kind(chart, "Deployment")[0]["spec"]["template"]["spec"]["affinity"]
    assert chart_affinity == of_kind(manifests, "Deployment")[0]["spec"]["template"]["spec"]["affinity"]
    if of_kind(manifests, "MutatingWebhookConfiguration"):
        (ours,), (theirs,) = of_kind(chart, "MutatingWebhookConfiguration"), of_kind(manifests,
                                                                                    "MutatingWebhookConfiguration")
        for field in ("rules", "namespaceSelector", "objectSelector", "failurePolicy", "timeoutSeconds"):
            assert ours["webhooks"][0][field] == theirs["webhooks"][0][field], field


def test_no_spot_labels_means_no_node_affinity_rather_than_one_that_matches_nothing():
    (deployment,) = of_kind(docs(template("--set-json", "spotLabels=[]")), "Deployment")
    affinity = deployment["spec"]["template"]["spec"]["affinity"]
    assert "nodeAffinity" not in affinity and "podAntiAffinity" in affinity


def test_every_option_reaches_the_objects():
    rendered = docs(template("-f", ALL_OPTIONS))
    (deployment,) = of_kind(rendered, "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    main = container(rendered)
    assert deployment["spec"]["replicas"] == 3
    assert main["image"] == "registry.example.com/platform/spot-extender:0.1.0"
    assert main["args"][-3:] == ["--lease-name=spot-extender-blue", "--default-floor=2", "--log-level=debug"]
    assert {"name": "SPOT_EXTENDER_SPOT_PRICE_RATIO", "value": "0.25"} in main["env"]
    assert main["resources"]["limits"]["memory"] == "1Gi"
    expressions = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"][0]["matchExpressions"]
    assert expressions[-1] == {"key": "node-role.example.com/system", "operator": "Exists"}
    assert spec["tolerations"][0]["key"] == "dedicated" and spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert of_kind(rendered, "Service")[0]["spec"]["clusterIP"] == "10.96.200.201"
    assert of_kind(rendered, "PodDisruptionBudget")[0]["spec"]["minAvailable"] == 2
    assert rbac_rules(rendered)[("Role", "spot-extender-leader-election")][1]["resourceNames"] == [
        "spot-extender-blue"]
    (webhook,) = of_kind(rendered, "MutatingWebhookConfiguration")
    assert webhook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == "kube-system/spot-extender-tls"
    assert webhook["webhooks"][0]["namespaceSelector"]["matchExpressions"][0]["values"] == ["kube-system", "monitoring"]
    (monitor,) = of_kind(rendered, "ServiceMonitor")
    endpoint = monitor["spec"]["endpoints"][0]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert (endpoint["scheme"], endpoint["interval"]) == ("https", "15s")
    assert endpoint["tlsConfig"]["serverName"] == "spot-extender.kube-system.svc"
    assert "10.96.200.201" in [c for c in of_kind(rendered, "Certificate") if c["metadata"]["name"] ==
                               "spot-extender-tls"][0]["spec"]["ipAddresses"]
    (policy,) = of_kind(rendered, "NetworkPolicy")
    sources = policy["spec"]["ingress"][0]["from"]
    assert [s["ipBlock"]["cidr"] for s in sources if "ipBlock" in s] == ["10.0.1.0/24", "172.16.0.32/28"]


def test_the_deprecated_single_control_plane_range_still_counts():
    (policy,) = of_kind(docs(template("--set", "networkPolicy.enabled=true,networkPolicy.controlPlaneCIDR=10.1.0.0/28",
                                      "--set-json", "networkPolicy.controlPlaneCIDRs=[]")), "NetworkPolicy")
    assert policy["spec"]["ingress"][0]["from"][0] == {"ipBlock": {"cidr": "10.1.0.0/28"}}


def test_by_default_the_webhook_is_on_with_certificates_of_its_own_and_the_policy_enforces_least_privilege():
    rendered = docs(template())
    (webhook,) = of_kind(rendered, "MutatingWebhookConfiguration")
    assert "caBundle" not in webhook["webhooks"][0]["clientConfig"]  # spot-extender writes it
    (secret,) = of_kind(rendered, "Secret")
    assert secret["metadata"]["name"] == "spot-extender-webhook-tls" and "data" not in secret
    args = container(rendered)["args"]
    assert "--webhook-cert-secret=spot-extender-webhook-tls" in args
    assert "--cert-hosts=spot-extender.kube-system.svc,spot-extender.kube-system.svc.cluster.local" in args
    assert "clusterIP" not in of_kind(rendered, "Service")[0]["spec"]  # allocated: any service range will do
    assert container(rendered)["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    rules = rbac_rules(rendered)
    assert rules[("Role", "spot-extender-webhook-certificate")] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["spot-extender-webhook-tls"],
         "verbs": ["get", "update"]}]
    assert rules[("ClusterRole", "spot-extender-webhook-ca-bundle")][0]["resourceNames"] == ["spot-extender"]
    assert not any("patch" in r["verbs"] and "events" in r["resources"] for rs in rules.values() for r in rs)
    (policy,) = of_kind(rendered, "ValidatingAdmissionPolicy")
    (binding,) = of_kind(rendered, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"] == {"policyName": policy["metadata"]["name"], "validationActions": ["Deny"]}
    assert "system:serviceaccount:kube-system:spot-extender" in policy["spec"]["matchConditions"][0]["expression"]


@pytest.mark.parametrize(("values", "message"), [
    (("--set", "replicas=0"), "replicas"),
    (("--set", "replica=2"), "replica"),
    (("--set", "image.pullPolicy=Sometimes"), "pullPolicy"),
    (("--set", "service.clusterIP=not-an-ip"), "clusterIP"),
    (("--set", "service.port=70000"), "port"),
    (("--set-json", 'extraArgs=["serve"]'), "extraArgs"),
    (("--set-json", 'spotLabels=[{"key":"a","operator":"Sometimes"}]'), "operator"),
    (("--set", "webhook.timeoutSeconds=60"), "timeoutSeconds"),
    (("--set", "networkPolicy.controlPlaneCIDR=everywhere"), "controlPlaneCIDR"),
    (("--set", "webhook.certManager.enabled=true"), "webhook.certManager.enabled needs tls.enabled"),
    (("--set", "tls.enabled=true"), "webhook.enabled with tls.enabled needs webhook.caBundle"),
    (("--set", "webhook.certValidity=90d"), "certValidity"),
    (("--set-json", 'networkPolicy.controlPlaneCIDRs=["everywhere"]'), "controlPlaneCIDRs"),
    (("--set", "replicas=1"), "podDisruptionBudget.minAvailable (1) must be below replicas (1)"),
    (("--set", "replicas=2,podDisruptionBudget.minAvailable=2"), "must be below replicas (2)"),
])
def test_bad_values_are_refused_with_a_clear_message(values, message):
    result = helm("template", "spot-extender", CHART, *values)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


@pytest.fixture(scope="module")
def cluster():
    with ControlPlane(log=print) as plane:
        yield plane


@pytest.mark.parametrize("values", [(), ("-f", ALL_OPTIONS)], ids=["defaults", "all-options"])
def test_server_side_dry_run(cluster, values):
    rendered = docs(template(*values))
    checkable = [o for o in rendered if o["kind"] not in NEEDS_CRDS]
    assert {o["kind"] for o in rendered} - {o["kind"] for o in checkable} <= NEEDS_CRDS
    result = kubectl(cluster, "apply", "--dry-run=server", "-f", "-", input_text=yaml.safe_dump_all(checkable))
    assert result.returncode == 0, result.stderr
    for obj in checkable:
        assert f"{obj['kind'].lower()}" in result.stdout.lower() and obj["metadata"]["name"] in result.stdout


def test_a_fixed_cluster_ip_for_kube_scheduler_goes_into_the_self_managed_certificate():
    args = container(docs(template("--set", "service.clusterIP=10.96.200.200")))["args"]
    assert "--cert-hosts=spot-extender.kube-system.svc,spot-extender.kube-system.svc.cluster.local,10.96.200.200" \
        in args


def test_the_service_monitor_trusts_the_self_managed_ca_by_default():
    (monitor,) = of_kind(docs(template("--set", "serviceMonitor.enabled=true")), "ServiceMonitor")
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"] == {"ca": {"secret": {"name": "spot-extender-webhook-tls", "key": "ca.crt"}},
                                     "serverName": "spot-extender.kube-system.svc"}
