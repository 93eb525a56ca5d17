"""The one way the controller writes to the cluster: Evictions (which the API server
refuses, 429, while a PodDisruptionBudget forbids them), annotation patches on pods
(deletion cost) and on workloads (markers), surge ReplicaSets, and Events. It owns dry-run, eviction
concurrency and retries, and the metrics and logs of every write, for every loop."""

from __future__ import annotations

import asyncio
import enum
from typing import Callable

from ..api import ApiError, Kube, ObjectRef
from ..api.kinds import BY_NAME
from ..api.objects import REPLICASETS
from ..cluster.records import PodRecord, WorkloadRecord
from ..core import logs
from ..core.backoff import Backoff
from ..core.metrics import Metrics
from ..core.settings import Settings
from ..core.vocabulary import DELETION_COST

log = logs.get("writer")

RETRY_INITIAL = 0.5
RETRY_MAX = 15.0
# A retry the caller asks for early (a PDB that allows again) still waits this long
# after the last attempt: the PDB's status may lag the API server's own count.
EARLY_RETRY_GAP = 0.5
EARLY_RETRY_POLL = 0.1


class Result(str, enum.Enum):
    EVICTED = "evicted"
    GONE = "gone"  # the pod was already gone (404), or its name is another pod's now (409)
    BLOCKED = "blocked"  # 429: a PDB (or API rate limiting) says not now
    ERROR = "error"  # any other failure: an error status, or no answer at all
    DRY_RUN = "dry-run"

    @property
    def done(self) -> bool:
        """The pod is on its way out."""
        return self in (Result.EVICTED, Result.GONE)


class Written(str, enum.Enum):
    """What became of a write to a surge ReplicaSet."""

    DONE = "done"
    EXISTS = "exists"  # create: one of that name is there already
    GONE = "gone"  # scale, delete: 404
    REPLACED = "replaced"  # delete: the name is another object's now (409 on the uid precondition)
    ERROR = "error"
    DRY_RUN = "dry-run"


def pod_ref(pod: PodRecord) -> ObjectRef:
    return ObjectRef("v1", "Pod", pod.namespace, pod.name, pod.uid)


def workload_ref(workload: WorkloadRecord) -> ObjectRef:
    return ObjectRef(BY_NAME[workload.kind].resource.api_version, workload.kind, workload.namespace, workload.name)


def event_reason(prefix: str, cause: str) -> str:
    """Evicted + reclaim -> EvictedReclaim: an Event reason is CamelCase."""
    return prefix + "".join(part.capitalize() for part in cause.split("-"))


class Writer:
    def __init__(self, kube: Kube, settings: Settings, metrics: Metrics):
        self.kube = kube
        self.metrics = metrics
        self.dry_run = settings.dry_run
        self.timeout = settings.request_timeout
        self._slots = asyncio.Semaphore(settings.eviction_concurrency)

    async def evict(self, pod: PodRecord, cause: str, reason: str) -> Result:
        """One attempt."""
        ref = f"{pod.namespace}/{pod.name}"
        if self.dry_run:
            log.info("would evict", extra={"pod": ref, "cause": cause, "reason": reason})
            self.metrics.evictions.labels(cause, Result.DRY_RUN.value).inc()
            return Result.DRY_RUN
        async with self._slots:
            try:
                await self.kube.evict(pod.namespace, pod.name, self.timeout, uid=pod.uid)
                result = Result.EVICTED
            except ApiError as exc:
                # 409: the uid precondition failed, the name is a replacement's: never retried.
                result = {404: Result.GONE, 409: Result.GONE, 429: Result.BLOCKED}.get(exc.status, Result.ERROR)
                if result is Result.ERROR:
                    log.warning("eviction failed", extra={"pod": ref, "cause": cause, "error": str(exc)})
        self.metrics.evictions.labels(cause, result.value).inc()
        if result is Result.EVICTED:
            log.info("evicted", extra={"pod": ref, "cause": cause, "reason": reason})
            await self.event(pod_ref(pod), "Normal", event_reason("Evicted", cause), reason)
        elif result is Result.BLOCKED:
            log.info("eviction blocked, will retry", extra={"pod": ref, "cause": cause})
        return result

    async def evict_while(self, pod: PodRecord, cause: str, reason: str, wanted: Callable[[], bool],
                          retry_now: Callable[[], bool] | None = None) -> Result | None:
        """Attempt after attempt, backing off, while a PDB refuses or the API fails and
        wanted() still holds; sooner when retry_now() says so (the PDB allows again).
        None if it stopped being wanted first."""
        backoff = Backoff(initial=RETRY_INITIAL, maximum=RETRY_MAX)
        while wanted():
            result = await self.evict(pod, cause, reason)
            if result.done or result is Result.DRY_RUN:
                return result
            await self._pause(backoff.next_delay(), wanted, retry_now if result is Result.BLOCKED else None)
        return None

    @staticmethod
    async def _pause(delay: float, wanted: Callable[[], bool], retry_now: Callable[[], bool] | None) -> None:
        if not retry_now:
            await asyncio.sleep(delay)
            return
        loop = asyncio.get_running_loop()
        end = loop.time() + delay
        await asyncio.sleep(min(EARLY_RETRY_GAP, delay))
        while loop.time() < end and wanted() and not retry_now():
            await asyncio.sleep(min(EARLY_RETRY_POLL, max(0.0, end - loop.time())))

    async def set_deletion_cost(self, pod: PodRecord, cost: int) -> bool:
        """controller.kubernetes.io/pod-deletion-cost on a pod; False if it was not written."""
        if self.dry_run:
            self.metrics.cost_patches.labels("dry-run").inc()
            return False
        try:
            await self.kube.annotate_pod(pod.namespace, pod.name, {DELETION_COST: str(cost)}, self.timeout)
        except ApiError as exc:
            self.metrics.cost_patches.labels("error").inc()
            log.warning("deletion cost patch failed", extra={"pod": f"{pod.namespace}/{pod.name}", "error": str(exc)})
            return False
        self.metrics.cost_patches.labels("patched").inc()
        return True

    async def annotate(self, record: WorkloadRecord, annotation: str, value: str | None, loop: str) -> bool:
        """Set (or, with None, remove) an annotation on a workload; False if it was not written."""
        owner = f"{record.kind}/{record.namespace}/{record.name}"
        if self.dry_run:
            log.info("would annotate", extra={"owner": owner, annotation: value})
            return False
        try:
            await self.kube.annotate(BY_NAME[record.kind].resource, record.namespace, record.name,
                                     {annotation: value}, self.timeout)
        except ApiError as exc:
            self.metrics.loop_errors.labels(loop).inc()
            log.warning("annotation not written", extra={"owner": owner, "annotation": annotation, "error": str(exc)})
            return False
        return True

    async def create_surge(self, body: dict, owner: str) -> Written:
        """POST a surge ReplicaSet: DONE, EXISTS (409: one of that name), ERROR or DRY_RUN."""
        meta = body["metadata"]
        if self.dry_run:
            log.info("would create a surge", extra={"owner": owner, "replicas": body["spec"]["replicas"]})
            return Written.DRY_RUN
        try:
            await self.kube.create(REPLICASETS, meta["namespace"], body, self.timeout)
        except ApiError as exc:
            if exc.status == 409:
                return Written.EXISTS
            return self._surge_failed("create", owner, exc)
        self.metrics.surge_writes.labels("create", "done").inc()
        log.info("surge created", extra={"owner": owner, "replicaset": meta["name"], "replicas": body["spec"]["replicas"]})
        return Written.DONE

    async def scale_surge(self, surge: WorkloadRecord, replicas: int, owner: str) -> Written:
        """DONE, GONE (404), ERROR (the uid test failing too: the name is another's) or DRY_RUN."""
        if self.dry_run:
            return Written.DRY_RUN
        try:
            await self.kube.scale(REPLICASETS, surge.namespace, surge.name, replicas, surge.uid, self.timeout)
        except ApiError as exc:
            return Written.GONE if exc.status == 404 else self._surge_failed("scale", owner, exc)
        self.metrics.surge_writes.labels("scale", "done").inc()
        log.info("surge scaled", extra={"owner": owner, "replicaset": surge.name, "from": surge.replicas, "to": replicas})
        return Written.DONE

    async def delete_surge(self, surge: WorkloadRecord, owner: str) -> Written:
        """DONE, GONE (404), REPLACED (409: the name is another object's now), ERROR or DRY_RUN."""
        if self.dry_run:
            log.info("would remove a surge", extra={"owner": owner, "replicaset": surge.name})
            return Written.DRY_RUN
        try:
            await self.kube.delete(REPLICASETS, surge.namespace, surge.name, surge.uid, self.timeout)
        except ApiError as exc:
            if exc.status in (404, 409):
                return Written.GONE if exc.status == 404 else Written.REPLACED
            return self._surge_failed("delete", owner, exc)
        self.metrics.surge_writes.labels("delete", "done").inc()
        log.info("surge removed", extra={"owner": owner, "replicaset": surge.name})
        return Written.DONE

    def _surge_failed(self, write: str, owner: str, exc: ApiError) -> Written:
        self.metrics.surge_writes.labels(write, "error").inc()
        hint = {"hint": "the ServiceAccount may not write ReplicaSets: grant it with k8s/overlays/surge or "
                        "the chart's surge.enabled (docs/controller.md)"} if exc.status == 403 else {}
        log.warning("surge write failed", extra={"write": write, "owner": owner, "error": str(exc), **hint})
        return Written.ERROR

    async def event(self, about: ObjectRef, event_type: str, reason: str, message: str) -> None:
        """A Kubernetes Event; failing to write one is logged and counted, never fatal."""
        if self.dry_run:
            return
        try:
            await self.kube.post_event(about, event_type, reason, message, self.timeout)
        except ApiError as exc:
            self.metrics.loop_errors.labels("events").inc()
            log.warning("event not written", extra={"reason": reason, "error": str(exc)})
