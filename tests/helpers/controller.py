"""Stand-ins for Kube and fixtures the controller's unit tests share."""

import asyncio

from spot_extender.api import StatusError
from spot_extender.assembly import build
from spot_extender.cluster.index import KIND_NAMES, NODE, POD
from spot_extender.controller import Controller
from spot_extender.core.settings import Settings
from spot_extender.core.vocabulary import ANNOTATION_FLOOR_FALLBACK
from tests.helpers import objects as f

# The taint aws-node-termination-handler puts on a spot node at its interruption notice.
ITN = {"key": "aws-node-termination-handler/spot-itn", "value": "true", "effect": "NoSchedule"}


async def evictions_done(controller) -> None:
    """Wait for every eviction the drain has under way."""
    await asyncio.gather(*list(controller.drain.evicting.values()), return_exceptions=True)


class RecordingKube:
    def __init__(self, refuse: int = 0, watch_lags: bool = False):
        self.evicted: list[str] = []
        self.annotated: dict[str, dict] = {}
        self.events: list[dict] = []
        self.refuse = refuse  # answer 429 this many times first
        self.watch_lags = watch_lags  # True: evicted pods do not show as terminating by themselves
        self.index = None

    async def evict(self, namespace, name, timeout, uid=""):
        if self.refuse:
            self.refuse -= 1
            raise StatusError(429, "Cannot evict pod as it would violate the pod's disruption budget.")
        self.evicted.append(f"{namespace}/{name}")
        if self.index is not None and not self.watch_lags:
            pod = next(p for p in self.index.pods() if p.namespace == namespace and p.name == name)
            self.index.apply(POD, "MODIFIED", f.pod(name, namespace, owner=(pod.group.kind, pod.group.name),
                                                    node_name=pod.node, uid=pod.uid, deleting=True))

    async def annotate_pod(self, namespace, name, annotations, timeout):
        self.annotated[f"{namespace}/{name}"] = annotations

    async def post_event(self, about, event_type, reason, message, timeout):
        self.events.append({"about": about, "type": event_type, "reason": reason, "message": message})


class ReplacedKube(RecordingKube):
    """The pod of that name is a new one by the time the eviction arrives (a StatefulSet's
    replacement): the API server refuses the uid precondition with 409."""

    def __init__(self):
        super().__init__()
        self.attempts: list[tuple[str, str]] = []

    async def evict(self, namespace, name, timeout, uid=""):
        self.attempts.append((name, uid))
        old = self.index.pod(uid)  # the watch shows the old pod gone and its successor on on-demand
        self.index.apply(POD, "DELETED", f.pod(name, namespace, uid=uid))
        self.index.apply(POD, "ADDED", f.pod(name, namespace, owner=(old.group.kind, old.group.name), node_name="o1"))
        raise StatusError(409, 'Precondition failed: UID in precondition: "old", UID in object meta: "new"')


class AnnotatingKube(RecordingKube):
    """Also writes annotations of the web-1 ReplicaSet, which the watch then shows."""

    def __init__(self):
        super().__init__()
        self.owner_annotations: list[dict] = []

    async def annotate(self, resource, namespace, name, annotations, timeout):
        self.owner_annotations.append(annotations)
        rs = f.replicaset(name, "web", 3, namespace=namespace)
        current = {k: v for k, v in {**rs["metadata"]["annotations"], **annotations}.items() if v is not None}
        if self.index.workload(("ReplicaSet", namespace, name)).floor_fallback and ANNOTATION_FLOOR_FALLBACK not in annotations:
            current[ANNOTATION_FLOOR_FALLBACK] = self.index.workload(("ReplicaSet", namespace, name)).floor_fallback
        rs["metadata"]["annotations"] = current
        self.index.apply("ReplicaSet", "MODIFIED", rs)


def setup(kube=None, **settings):
    settings = Settings(move_cooldown=0, **settings)
    parts = build(settings)
    index = parts.index
    for kind in KIND_NAMES:
        index.replace(kind, [])
    for name, cls in (("s1", "spot"), ("s2", "spot"), ("o1", "on-demand"), ("o2", "on-demand")):
        index.apply(NODE, "ADDED", f.node(name, cls))
    kube = kube or RecordingKube()
    kube.index = index
    controller = Controller(kube, index, parts.floors, settings, parts.metrics)
    controller.kube = kube
    return controller, index


def deploy(index, name, pods_on, namespace="default", annotations=None, pod_spec=None):
    """A Deployment with one ready replica per entry of pods_on; pod_spec adds to its template."""
    deployment = f.deployment(name, len(pods_on), namespace, annotations)
    deployment["spec"]["template"]["spec"].update(pod_spec or {})
    index.apply("Deployment", "ADDED", deployment)
    index.apply("ReplicaSet", "ADDED", f.replicaset(f"{name}-1", name, len(pods_on), namespace=namespace))
    for i, node in enumerate(pods_on):
        raw = f.pod(f"{name}-1-{i}", namespace, owner=("ReplicaSet", f"{name}-1"), node_name=node,
                    labels={"app": name})
        raw["metadata"]["creationTimestamp"] = f"2026-01-01T00:00:0{i}Z"
        index.apply(POD, "ADDED", raw)


async def drain(controller):
    await controller.drain.once()
    await evictions_done(controller)


def _uid(index, name):
    return next(p.uid for p in index.pods() if p.name == name)


def paced(nodes, kube=None):
    """(controller, index, clock) with a ReplicaSet web-1 of one Ready replica per entry
    of nodes, each 30 s from creation to Ready; clock[0] is both's time."""
    controller, index = setup(kube=kube)
    clock = [1000.0]
    index.clock = controller.drain.clock = lambda: clock[0]
    deploy(index, "web", [])
    index.apply("ReplicaSet", "MODIFIED", f.replicaset("web-1", "web", len(nodes)))
    started_pods(index, "web", nodes, startup=30)
    return controller, index, clock


def started_pods(index, app, nodes, startup):
    """Ready replicas of `app`-1 whose pods took `startup` seconds from creation to Ready."""
    for i, node in enumerate(nodes):
        raw = f.pod(f"{app}-1-{i}", owner=("ReplicaSet", f"{app}-1"), node_name=node, labels={"app": app})
        raw["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
        raw["status"]["conditions"][0]["lastTransitionTime"] = f"2026-01-01T00:00:{startup:02d}Z"
        index.apply(POD, "ADDED", raw)
