"""Request paths and the bodies spot-extender writes: Evictions, Events, Leases."""

from __future__ import annotations

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
