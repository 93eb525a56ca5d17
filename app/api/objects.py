"""Request paths and the bodies spot-extender writes: Evictions, Events, Leases and surge ReplicaSets."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timezone

COMPONENT = "spot-extender"
EVENT_MESSAGE_LIMIT = 1024


@dataclass(frozen=True)
class Resource:
    """A REST resource: group ("" for the core group), version and plural."""

    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str = "", name: str = "", subresource: str = "") -> str:
        """The collection across namespaces, one namespace's collection, or one object."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        path = f"{base}/namespaces/{namespace}/{self.plural}" if namespace else f"{base}/{self.plural}"
        if name:
            path += f"/{name}"
            if subresource:
                path += f"/{subresource}"
        return path


PODS = Resource("", "v1", "pods")
EVENTS = Resource("", "v1", "events")
LEASES = Resource("coordination.k8s.io", "v1", "leases")
SECRETS = Resource("", "v1", "secrets")
MUTATING_WEBHOOKS = Resource("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations")
REPLICASETS = Resource("apps", "v1", "replicasets")

# The label a Deployment puts on its ReplicaSet's pods to tell revisions apart. A Rollout's
# (rollouts-pod-template-hash) stays as it is: its stable and canary Services select on it.
TEMPLATE_HASH_LABEL = "pod-template-hash"
SURGE_SUFFIX = "-surge"
NAME_LIMIT = 253


@dataclass(frozen=True)
class ObjectRef:
    """The object an Event is about, with its real apiVersion."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str = ""


def eviction(namespace: str, name: str, uid: str = "") -> dict:
    """An Eviction; with a uid, the API server refuses it (409) once the name is another pod's
    (a StatefulSet's replacement reuses its pod's name)."""
    body: dict = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace}}
    if uid:
        body["deleteOptions"] = {"preconditions": {"uid": uid}}
    return body


def event(about: ObjectRef, event_type: str, reason: str, message: str, now: datetime | None = None) -> dict:
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    involved = {"apiVersion": about.api_version, "kind": about.kind, "namespace": about.namespace, "name": about.name}
    if about.uid:
        involved["uid"] = about.uid
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{about.name}.", "namespace": about.namespace},
        "involvedObject": involved,
        "reason": reason,
        "message": message[:EVENT_MESSAGE_LIMIT],
        "type": event_type,
        "source": {"component": COMPONENT},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


def lease(namespace: str, name: str, spec: dict) -> dict:
    return {
        "apiVersion": LEASES.api_version,
        "kind": "Lease",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def micro_time(moment: datetime | None = None) -> str:
    """RFC 3339 with microseconds, the MicroTime format of Lease spec times."""
    return (moment or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def surge_name(replicaset: str) -> str:
    """The surge ReplicaSet's name beside a ReplicaSet: the same name, suffixed."""
    return replicaset[: NAME_LIMIT - len(SURGE_SUFFIX)] + SURGE_SUFFIX


def surge_replicaset(beside: dict, served: str, replicas: int, surge_label: str, served_annotation: str) -> dict:
    """A ReplicaSet running `beside`'s pod template next to it: controlled by that ReplicaSet
    (so neither the Deployment nor the Rollout adopts it, and it is garbage-collected with
    the workload), its pods with the app labels (Services and PDBs count them), a
    Deployment's revision hash of their own (`surge-<hash>`), and `surge_label`
    naming the uid of the ReplicaSet beside it, which is also its selector. A Rollout's
    pods keep their hash: its Services select on it, and no ReplicaSet adopts pods that
    another controls."""
    meta = beside.get("metadata") or {}
    uid = meta.get("uid") or ""
    template = copy.deepcopy((beside.get("spec") or {}).get("template") or {})
    template_meta = template.setdefault("metadata", {})
    labels = dict(template_meta.get("labels") or {})
    if TEMPLATE_HASH_LABEL in labels:
        labels[TEMPLATE_HASH_LABEL] = f"surge-{labels[TEMPLATE_HASH_LABEL]}"[:63]
    labels[surge_label] = uid
    template_meta["labels"] = labels
    return {
        "apiVersion": REPLICASETS.api_version,
        "kind": "ReplicaSet",
        "metadata": {
            "name": surge_name(meta.get("name") or ""),
            "namespace": meta.get("namespace") or "",
            # Not the app's labels: a GitOps tool tracking by label (Argo CD's
            # app.kubernetes.io/instance) must not take it for an object of its own.
            "labels": {surge_label: uid},
            "annotations": {served_annotation: served},
            "ownerReferences": [{
                "apiVersion": REPLICASETS.api_version, "kind": "ReplicaSet", "name": meta.get("name") or "",
                "uid": uid, "controller": True, "blockOwnerDeletion": False,
            }],
        },
        "spec": {"replicas": replicas, "selector": {"matchLabels": {surge_label: uid}}, "template": template},
    }
