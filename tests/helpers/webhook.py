"""The MutatingWebhookConfiguration of k8s/webhook-configuration, pointed at a local process by
URL with the test CA in caBundle: the e2e tests and the demo register it for real."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from tests.cluster.api import Api
from tests.helpers import objects as o
from tests.helpers.kube import collection

MANIFEST = Path(__file__).resolve().parents[2] / "k8s/webhook-configuration/mutatingwebhook.yaml"


def webhook_configuration(url: str, ca_file: Path, name: str = "spot-extender",
                          namespace_labels: dict | None = None) -> dict:
    """The shipped configuration, calling `url`/mutate; `namespace_labels` narrows it to
    namespaces carrying them."""
    config = yaml.safe_load(MANIFEST.read_text())
    config["metadata"]["name"] = name
    for hook in config["webhooks"]:
        hook["clientConfig"] = {"url": f"{url}/mutate", "caBundle": base64.b64encode(ca_file.read_bytes()).decode()}
        if namespace_labels:
            hook["namespaceSelector"]["matchLabels"] = dict(namespace_labels)
    return config


def point_webhook(api: Api, config: dict, url: str) -> None:
    """Send the webhook's calls to another process."""
    hooks = [{**hook, "clientConfig": {**hook["clientConfig"], "url": f"{url}/mutate"}} for hook in config["webhooks"]]
    api.merge_patch(f"{collection('MutatingWebhookConfiguration')}/{config['metadata']['name']}", {"webhooks": hooks})


def webhook_mutates(api: Api, ns: str) -> bool:
    """A server-side dry-run create comes back with a role: kube-apiserver calls the webhook
    and trusts its certificate (its informer lags a configuration's create or change)."""
    probe = o.pod("probe-x", ns, owner=("ReplicaSet", "probe"))
    probe["metadata"].pop("resourceVersion")
    probe["metadata"].pop("uid")
    created = api.request("POST", f"/api/v1/namespaces/{ns}/pods", probe, params={"dryRun": "All"})
    return (created["metadata"].get("labels") or {}).get(o.ROLE_LABEL) is not None
