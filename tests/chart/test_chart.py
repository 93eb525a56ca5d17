"""charts/spot-extender: helm lint and template with the default values and with every
option on, its schema's answers to bad values, agreement with the kustomize manifests
(kinds, RBAC rules, container args), NOTES.txt and the README tools/chart_readme.py
writes, and server-side dry-run on a local control plane.
helm and kubectl come from make cluster-bins-helm; `make chart-test` runs this, and `make test`
runs that."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from spot_extender.cli import STATUS_SETTINGS
from spot_extender.core.settings import Settings
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


def test_surge_enabled_grants_what_the_surge_overlay_does():
    chart, overlay = docs(template("--set", "surge.enabled=true")), kustomize("k8s/overlays/surge")
    assert rbac_rules(chart)[("ClusterRole", "spot-extender-surge")] == rbac_rules(overlay)[
        ("ClusterRole", "spot-extender-surge")]
    (binding,) = [o for o in chart if o["kind"] == "ClusterRoleBinding" and o["metadata"]["name"].endswith("-surge")]
    assert binding["subjects"] == of_kind(overlay, "ClusterRoleBinding")[0]["subjects"]
    # Off by default: the ServiceAccount may create no ReplicaSet.
    assert ("ClusterRole", "spot-extender-surge") not in rbac_rules(docs(template()))


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
    assert {"--mutate-path=/admission/mutate", "--excluded-namespaces=kube-system,monitoring"} <= set(main["args"])
    assert {"name": "SPOT_EXTENDER_SPOT_PRICE_RATIO", "value": "0.25"} in main["env"]
    assert main["resources"]["limits"]["memory"] == "1Gi"
    expressions = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"][0]["matchExpressions"]
    assert expressions[-1] == {"key": "node-role.example.com/system", "operator": "Exists"}
    assert spec["tolerations"][0]["key"] == "dedicated" and spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert of_kind(rendered, "Service")[0]["spec"]["clusterIP"] == "10.96.200.201"
    assert of_kind(rendered, "PodDisruptionBudget")[0]["spec"]["minAvailable"] == 2
    assert rbac_rules(rendered)[("Role", "platform-spot-extender-leader-election")][1]["resourceNames"] == [
        "spot-extender-blue"]
    assert deployment["metadata"]["name"] == "platform-spot-extender"
    assert spec["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert main["securityContext"]["runAsUser"] == 1000710000 and "runAsGroup" not in main["securityContext"]
    assert deployment["spec"]["template"]["metadata"]["annotations"] == {"example.com/scrape": "true"}
    assert deployment["spec"]["template"]["metadata"]["labels"]["team"] == "platform"
    assert spec["topologySpreadConstraints"][0]["labelSelector"] == {"matchLabels": {"app.kubernetes.io/name": "spot"}}
    assert spec["volumes"][-1]["name"] == main["volumeMounts"][-1]["name"] == "client-ca"
    assert of_kind(rendered, "ServiceAccount")[0]["metadata"]["annotations"] == {
        "iam.gke.io/gcp-service-account": "spot-extender@example.iam.gserviceaccount.com"}
    (webhook,) = of_kind(rendered, "MutatingWebhookConfiguration")
    assert webhook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == "kube-system/spot-extender-tls"
    assert webhook["webhooks"][0]["namespaceSelector"]["matchExpressions"][0]["values"] == ["kube-system", "monitoring"]
    assert webhook["webhooks"][0]["failurePolicy"] == "Fail"
    assert webhook["webhooks"][0]["clientConfig"]["service"]["path"] == "/admission/mutate"
    (monitor,) = of_kind(rendered, "ServiceMonitor")
    endpoint = monitor["spec"]["endpoints"][0]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert (endpoint["scheme"], endpoint["interval"]) == ("https", "15s")
    assert endpoint["tlsConfig"]["serverName"] == "platform-spot-extender.kube-system.svc"
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
    (("--set", "webhook.failurePolicy=Sometimes"), "/webhook/failurePolicy"),
    (("--set", "webhook.path=mutate"), "/webhook/path"),
    (("--set", "webhook.path=/readyz"), "/webhook/path"),
    (("--set", "fullnameOverride=Spot_Extender"), "/fullnameOverride"),
    (("--set", "nameOverride=-spot"), "/nameOverride"),
    (("--set-json", 'extraVolumes=[{"name":"tmp","emptyDir":{}}]'), "/extraVolumes/0/name"),
    (("--set-json", 'extraVolumeMounts=[{"name":"client-ca"}]'), "mountPath"),
    (("--set-json", 'topologySpreadConstraints=[{"maxSkew":1}]'), "topologyKey"),
    (("--set-json", 'podLabels={"app.kubernetes.io/name":"other"}'),
     "podLabels may not set app.kubernetes.io/name: the chart sets it"),
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


def deployment_of(rendered: list[dict]) -> dict:
    (deployment,) = of_kind(rendered, "Deployment")
    return deployment


def test_the_release_name_changes_no_object_name():
    # Names are those of k8s/ (and of the scheduler configurations' URLs), whatever the release is called.
    result = helm("template", "platform", CHART, "--namespace", "kube-system")
    assert result.returncode == 0, result.stderr
    assert identities(docs(result.stdout)) == identities(docs(template()))


def test_name_overrides_rename_every_object_and_every_reference_to_one():
    rendered = docs(template("--set", "fullnameOverride=platform-spot,nameOverride=spot"))
    name = "platform-spot"
    user_named = {"spot-extender-webhook-tls"}  # webhook.secretName: a value of its own
    assert all(o["metadata"]["name"].startswith(name) for o in rendered if o["metadata"]["name"] not in user_named)
    deployment = deployment_of(rendered)
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "spot"}
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "spot"
    assert pod["spec"]["serviceAccountName"] == name
    assert pod["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0][
        "labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": "spot"}
    (service,) = of_kind(rendered, "Service")
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "spot"}
    # Every binding names a role and a ServiceAccount that are rendered.
    roles = {(o["kind"], o["metadata"]["name"]) for o in rendered if o["kind"] in ("Role", "ClusterRole")}
    for binding in (o for o in rendered if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        assert (binding["roleRef"]["kind"], binding["roleRef"]["name"]) in roles
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": "kube-system"}]
    (webhook,) = of_kind(rendered, "MutatingWebhookConfiguration")
    assert webhook["metadata"]["name"] == name
    assert webhook["webhooks"][0]["clientConfig"]["service"]["name"] == service["metadata"]["name"]
    # spot-extender writes the caBundle of the configuration it is told, and may update only that one.
    args = container(rendered)["args"]
    assert f"--webhook-configuration={name}" in args
    assert f"--cert-hosts={name}.kube-system.svc,{name}.kube-system.svc.cluster.local" in args
    assert rbac_rules(rendered)[("ClusterRole", f"{name}-webhook-ca-bundle")][0]["resourceNames"] == [name]
    (policy,) = of_kind(rendered, "ValidatingAdmissionPolicy")
    assert f"'system:serviceaccount:kube-system:{name}'" in policy["spec"]["matchConditions"][0]["expression"]
    assert any(f"object.metadata.name == '{name}'" in v["expression"] for v in policy["spec"]["validations"])
    (binding,) = of_kind(rendered, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]


def test_name_overrides_reach_the_cert_manager_certificate_and_the_service_monitor():
    rendered = docs(template("--set", "fullnameOverride=platform-spot,serviceMonitor.enabled=true",
                             "--set", "tls.enabled=true,webhook.certManager.enabled=true"))
    certificates = {c["metadata"]["name"]: c["spec"] for c in of_kind(rendered, "Certificate")}
    assert certificates["spot-extender-tls"]["dnsNames"] == ["platform-spot.kube-system.svc",
                                                             "platform-spot.kube-system.svc.cluster.local"]
    assert certificates["spot-extender-tls"]["issuerRef"]["name"] in {i["metadata"]["name"] for i in
                                                                      of_kind(rendered, "Issuer")}
    (monitor,) = of_kind(rendered, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["tlsConfig"]["serverName"] == "platform-spot.kube-system.svc"


def test_security_contexts_default_to_the_kustomize_ones_and_each_field_can_be_nulled_or_changed():
    ours, theirs = deployment_of(docs(template()))["spec"]["template"], deployment_of(kustomize("k8s/base"))[
        "spec"]["template"]
    assert ours["spec"]["securityContext"] == theirs["spec"]["securityContext"]
    assert ours["spec"]["containers"][0]["securityContext"] == theirs["spec"]["containers"][0]["securityContext"]
    # OpenShift's restricted SCC: no fixed user or group, the namespace's range assigns them.
    openshift = docs(template("--set", "podSecurityContext.runAsUser=null,podSecurityContext.runAsGroup=null,"
                                       "podSecurityContext.fsGroup=null,securityContext.runAsUser=null,"
                                       "securityContext.runAsGroup=null"))
    pod = deployment_of(openshift)["spec"]["template"]["spec"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert not {"runAsUser", "runAsGroup"} & set(pod["containers"][0]["securityContext"])
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    other = docs(template("--set", "securityContext.runAsUser=1000710000,podSecurityContext.fsGroup=1000710000"))
    pod = deployment_of(other)["spec"]["template"]["spec"]
    assert (pod["containers"][0]["securityContext"]["runAsUser"], pod["securityContext"]["fsGroup"]) == (
        1000710000, 1000710000)


def test_extra_volumes_and_mounts_sit_beside_the_charts_own():
    rendered = docs(template(
        "--set", "tls.enabled=true,webhook.enabled=false",
        "--set-json", 'extraVolumes=[{"name":"client-ca","configMap":{"name":"spot-extender-client-ca"}}]',
        "--set-json", 'extraVolumeMounts=[{"name":"client-ca","mountPath":"/etc/spot-extender/client-ca",'
                      '"readOnly":true}]',
        "--set-json", 'extraArgs=["--tls-client-ca-file=/etc/spot-extender/client-ca/ca.crt"]'))
    pod = deployment_of(rendered)["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["tmp", "tls", "client-ca"]
    assert pod["volumes"][-1]["configMap"] == {"name": "spot-extender-client-ca"}
    assert pod["containers"][0]["volumeMounts"][-1] == {
        "name": "client-ca", "mountPath": "/etc/spot-extender/client-ca", "readOnly": True}
    assert [m["name"] for m in pod["containers"][0]["volumeMounts"]] == ["tmp", "tls", "client-ca"]


def test_pod_annotations_and_labels_go_on_the_pods_only():
    rendered = docs(template("--set-json", 'podAnnotations={"example.com/owner":"platform"}',
                             "--set-json", 'podLabels={"team":"platform","tier":"1"}'))
    deployment, default = deployment_of(rendered), deployment_of(docs(template()))
    pod = deployment["spec"]["template"]["metadata"]
    assert pod["annotations"] == {"example.com/owner": "platform"}
    assert pod["labels"] == {**default["spec"]["template"]["metadata"]["labels"], "team": "platform", "tier": "1"}
    assert deployment["spec"]["selector"] == default["spec"]["selector"]
    assert deployment["metadata"]["labels"] == default["metadata"]["labels"]
    assert "annotations" not in default["spec"]["template"]["metadata"]


def test_topology_spread_constraints_count_the_pods_unless_given_a_selector_of_their_own():
    zone = {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"}
    own = {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
           "labelSelector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}}
    rendered = docs(template("--set-json", f"topologySpreadConstraints={json.dumps([zone, own])}"))
    constraints = deployment_of(rendered)["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert constraints == [{**zone, "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "spot-extender"}}}, own]
    assert "topologySpreadConstraints" not in deployment_of(docs(template()))["spec"]["template"]["spec"]


def test_service_account_annotations():
    rendered = docs(template("--set-json", 'serviceAccount.annotations={"eks.amazonaws.com/role-arn":'
                                           '"arn:aws:iam::111122223333:role/spot-extender"}'))
    (account,) = of_kind(rendered, "ServiceAccount")
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn":
                                                  "arn:aws:iam::111122223333:role/spot-extender"}
    assert "annotations" not in of_kind(docs(template()), "ServiceAccount")[0]["metadata"]


def server_default(setting: str):
    return Settings.__dataclass_fields__[setting].default


def test_excluded_namespaces_reach_the_server_and_the_webhook_alike():
    # The chart leaves the flag out when it would say the server's default (so k8s/ and the chart agree).
    assert server_default("excluded_namespaces") == ("kube-system",)
    for values, excluded in [
        (("--set-json", 'webhook.excludedNamespaces=["kube-system","monitoring"]'), ["kube-system", "monitoring"]),
        (("--set", "namespace=spot-system"), ["kube-system", "spot-system"]),  # its own namespace is always added
    ]:
        rendered = docs(template(*values))
        (webhook,) = of_kind(rendered, "MutatingWebhookConfiguration")
        assert webhook["webhooks"][0]["namespaceSelector"]["matchExpressions"][0]["values"] == excluded
        assert f"--excluded-namespaces={','.join(excluded)}" in container(rendered)["args"]
    # The extender and the controller leave them alone too when there is no webhook.
    extender_only = docs(template("--set", "webhook.enabled=false", "--set-json",
                                  'webhook.excludedNamespaces=["kube-system","monitoring"]'))
    assert "--excluded-namespaces=kube-system,monitoring" in container(extender_only)["args"]
    assert not any(a.startswith("--excluded-namespaces") for a in container(docs(template()))["args"])


def test_webhook_path_and_failure_policy_reach_the_configuration_and_the_server():
    assert server_default("mutate_path") == "/mutate"
    (default,) = of_kind(docs(template()), "MutatingWebhookConfiguration")
    assert (default["webhooks"][0]["clientConfig"]["service"]["path"], default["webhooks"][0]["failurePolicy"]) == (
        "/mutate", "Ignore")
    rendered = docs(template("--set", "webhook.path=/admission/mutate,webhook.failurePolicy=Fail"))
    (webhook,) = of_kind(rendered, "MutatingWebhookConfiguration")
    assert webhook["webhooks"][0]["clientConfig"]["service"]["path"] == "/admission/mutate"
    assert webhook["webhooks"][0]["failurePolicy"] == "Fail"
    assert "--mutate-path=/admission/mutate" in container(rendered)["args"]


def notes(*args) -> str:
    """What `helm install` prints after installing; --dry-run=client renders it without a cluster."""
    result = helm("install", "spot-extender", CHART, "--namespace", "kube-system", "--dry-run=client", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout[result.stdout.index("NOTES:"):]


def test_notes_say_how_to_check_the_install():
    default = notes()
    assert "kubectl -n kube-system rollout status deploy/spot-extender --timeout=5m" in default
    assert '"/api/v1/namespaces/kube-system/services/https:spot-extender:8888/proxy/readyz"' in default
    assert "exec deploy/spot-extender -c spot-extender -- spot-extender status\n" in default
    assert "kubectl get mutatingwebhookconfiguration spot-extender " in default
    # Plain HTTP: status reads the running replica itself; no webhook, no caBundle to look at.
    plain = notes("--set", "webhook.enabled=false,service.port=9443")
    assert "services/http:spot-extender:9443/proxy/readyz" in plain
    assert "-- spot-extender status --url http://127.0.0.1:8888\n" in plain
    assert "mutatingwebhookconfiguration" not in plain
    # Listing the cluster itself, status judges floors with the flags serve has.
    renamed = notes("--set", "fullnameOverride=platform-spot,namespace=spot-system", "--set-json",
                    'extraArgs=["--default-floor=2","--log-level=debug"]')
    assert "kubectl -n spot-system rollout status deploy/platform-spot " in renamed
    assert "services/https:platform-spot:8888/proxy/readyz" in renamed
    assert ("exec deploy/platform-spot -c spot-extender -- spot-extender status "
            "'--excluded-namespaces=kube-system,spot-system' '--default-floor=2'\n") in renamed
    judged = [f"--{name.replace('_', '-')}=x" for name in sorted(STATUS_SETTINGS)]
    passed = notes("--set-json", f"extraArgs={json.dumps(judged + ['--log-level=debug'])}")
    assert "spot-extender status " + " ".join(f"'{flag}'" for flag in judged) + "\n" in passed


def chart_readme_tool():
    spec = importlib.util.spec_from_file_location("chart_readme", ROOT / "tools" / "chart_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_chart_readme_is_what_tools_chart_readme_writes():
    tool = chart_readme_tool()
    assert (CHART / "README.md").read_text() == tool.render(), f"run {tool.REGENERATE}"


def test_the_chart_readme_tool_refuses_an_undocumented_value_and_a_comment_for_none():
    tool = chart_readme_tool()
    assert "| `a.b` | `[1]` | One. Two. |" in tool.table("a:\n  # -- One.\n  # Two.\n  b:\n    - 1\n")
    with pytest.raises(tool.UndocumentedError, match="a.c has no"):
        tool.table("a:\n  # -- One.\n  b: 1\n  c: 2\n")
    # A block scalar's text looks like keys to the comment reader; the loaded values tell.
    with pytest.raises(tool.UndocumentedError, match="a comment for a.b"):
        tool.table("a: |\n  # -- One.\n  b: 1\n")


def test_the_readmes_check_commands_are_the_ones_the_notes_print():
    readme = (CHART / "README.md").read_text()
    block = readme[readme.index("## Check it"):]
    block = block[block.index("```sh\n") + 6:]
    commands = [line for line in block[:block.index("```")].splitlines() if line]
    assert commands and all(command in notes() for command in commands)


def test_every_schema_property_has_a_description():
    schema = json.loads((CHART / "values.schema.json").read_text())
    missing = []

    def walk(node, where: str) -> None:
        if isinstance(node, dict):
            for name, prop in node.get("properties", {}).items():
                if not prop.get("description"):
                    missing.append(f"{where}.{name}")
            for key, value in node.items():
                walk(value, f"{where}.{key}" if key != "properties" else where)
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    walk(schema, "")
    assert missing == []
