"""Answers pod admissions: AdmissionReview + index facts -> role policy -> JSONPatch.

It never rejects a pod. Whatever goes wrong (a request it cannot read, an error of its
own) is answered allowed and unpatched, logged and counted: the pod is then created
without a role and handled as pods created while the webhook was down.
"""

from __future__ import annotations

import asyncio
import time

from ..api.kinds import STATEFULSET
from ..cluster.index import Index
from ..cluster.needs import claim_names
from ..cluster.records import WorkloadRecord, group_of, unverified
from ..core import logs
from ..core.fields import unix_time
from ..core.metrics import Metrics
from ..core.settings import Settings
from ..core.vocabulary import Capacity, Role
from ..decisions.floors import Floors
from ..decisions.policy import seeks_spot
from ..decisions.roles import RoleRules, choose, patch, pinned_reason, statefulset_ordinal
from . import admission

log = logs.get("webhook")

OWNER_POLL = 0.005  # how often the owner wait looks at the index again


class Webhook:
    def __init__(self, index: Index, floors: Floors, settings: Settings, metrics: Metrics):
        self.index = index
        self.floors = floors
        self.metrics = metrics
        self.excluded = frozenset(settings.excluded_namespaces)
        self.owner_wait = settings.webhook_owner_wait
        self.confirm_wait = settings.webhook_confirm_wait
        self.seek_timeout = settings.spot_seek_timeout
        self.seek_mode = settings.seek_spot
        self.wall = time.time
        self.rules = RoleRules.from_rules(settings.capacity_rules, settings.unknown_class,
                                          settings.spot_preference_weight, settings.spot_toleration_rules,
                                          settings.spread_topology_keys)
        self._narrowed: dict[frozenset, RoleRules] = {}  # by the capacity keys nodes carry
        self._warned = logs.Once()

    async def review(self, body: bytes) -> bytes:
        """Always an allowed answer with the request's uid when it can be read, whatever raised."""
        started = time.perf_counter()
        try:
            request = admission.parse_review(body)
        except admission.BadReview as exc:
            self.metrics.admissions.labels("bad-request").inc()
            if self._warned.first(("bad-request", str(exc))):
                log.warning("unreadable admission request, admitted unpatched", extra={"error": str(exc)})
            return admission.allowed(exc.uid)
        except Exception as exc:  # noqa: BLE001 - e.g. nesting past the decoder's depth limit
            self.metrics.admissions.labels("bad-request").inc()
            if self._warned.first(("unreadable", type(exc).__name__)):
                log.warning("unreadable admission request, admitted unpatched", extra={"error": repr(exc)[:200]})
            return admission.allowed("")
        try:
            outcome, ops = await self.decide(request)
            answer = admission.allowed(request.uid, ops)
        except Exception:  # noqa: BLE001 - a pod is never refused for an error of ours
            # The patch copies the pod's labels and annotations: one nested past what the
            # encoder takes fails here, and the pod still goes in, unpatched.
            log.exception("admission failed, admitted unpatched", extra={"namespace": request.namespace})
            outcome, answer = "error", admission.allowed(request.uid)
        self.metrics.admissions.labels(outcome).inc()
        self.metrics.admission_seconds.observe(time.perf_counter() - started)
        return answer

    async def decide(self, request: admission.PodAdmission) -> tuple[str, list[dict] | None]:
        """(outcome for the metric, the patch or None)."""
        if not request.is_pod or request.operation != "CREATE":
            return "ignored", None
        if request.namespace in self.excluded:
            return "excluded", None
        if not self.index.ready:
            return "not-ready", None  # counts are unknown: the pod is handled as one created while down
        pod = request.pod
        meta = pod.get("metadata") or {}
        group = group_of({**meta, "namespace": request.namespace})
        if group is None:
            return "unmanaged", None
        if (pod.get("spec") or {}).get("nodeName"):
            return "ignored", None  # placed already: the kubelet would refuse a floor pod bound to spot
        pinned = pinned_reason(pod.get("spec") or {}, self.rules)
        if pinned is not None:
            if self._warned.first(("pinned", group)):
                log.info("pod left as it is: its spec already chooses spot or on-demand",
                         extra={"owner": f"{group.kind}/{group.namespace}/{group.name}", "reason": pinned})
            return "pinned", None
        workload = await self._owner(group)
        seeking = False
        counted = None
        if workload is None:
            role, spread_labels = Role.FLOOR, None  # unseen owner: the safe answer
            if self._warned.first(("unseen", group)):  # a stalled watch would log it for every pod
                log.info("owner not in the index in time, admitted as floor",
                         extra={"owner": f"{group.kind}/{group.namespace}/{group.name}", "waited_s": self.owner_wait})
        else:
            counted = self.index.workload(group)
            if counted is not None and counted.floor_fallback is not None:
                role = Role.SPOT  # its floor pods could not be placed in time: controller/fallback.py
            else:
                if counted is not None and self.index.admitted.unseen(group) >= self.index.room(group):
                    # The owner has no room for this pod beside the admissions not seen yet:
                    # some of those are not what they claim. Count by the watch alone.
                    self.index.admitted.distrust(group)
                name = meta.get("name")
                ordinal = statefulset_ordinal(name, counted.ordinal_start) if (
                    group.kind == STATEFULSET and isinstance(name, str) and counted is not None) else None
                k = self.floors.of_workload(workload, roles=True).k
                # A StatefulSet's pods go by ordinal: no count to wait for.
                role = choose(k, await self._floor_pods(group, k) if ordinal is None else 0, ordinal)
            role = self._as_volumes_allow(role, request.namespace, pod.get("spec") or {})
            seeking = role == Role.SPOT and counted is not None and self._seeking(counted.spot_seek)
            spread_labels = workload.template_labels
        if not request.dry_run:
            self._record(request.uid, group, role, meta, counted)
        outcome = "spot-seek" if seeking else role
        autoscaled = seeks_spot(self.seek_mode, self.index.autoscaled_nodes)
        return outcome, patch(pod, role, self._rules_now(), spread_labels, request.uid, autoscaled=autoscaled,
                              require_spot=seeking)

    def _as_volumes_allow(self, role: str, namespace: str, spec: dict) -> str:
        """A pod whose claims are bound to volumes that attach only to nodes of the other
        class (a zonal volume in a zone with no on-demand node) takes that class's role: a
        floor pod there would wait for good. The floor it cannot meet is reported by the
        controller, not chased. Unbound claims decide nothing yet."""
        claims = claim_names(spec)
        if not claims:
            return role
        classes = self.floors.volume_classes(namespace, claims)
        if classes is None or not classes:
            return role
        wanted = Capacity.ON_DEMAND if role == Role.FLOOR else Capacity.SPOT
        if wanted in classes:
            return role
        return Role.SPOT if role == Role.FLOOR else Role.FLOOR

    def _record(self, uid: str, group, role: str, meta: dict, counted: WorkloadRecord | None) -> None:
        """Count the admission until the watch shows its pod, if it checks out against what
        the index knows of its owner (a forged review copying a real owner must still match
        its uid and revision, and fit in the room the owner has left)."""
        why = unverified(meta, counted)
        if why is None:
            if self.index.admitted.record(uid, group, role, self.index.room(group)):
                return
            why = "no-room"
        self.metrics.unverified.labels("admission", why).inc()

    def _rules_now(self) -> RoleRules:
        """The rules on the capacity label keys this cluster's nodes carry (RoleRules.narrowed)."""
        keys = self.index.capacity_keys()
        rules = self._narrowed.get(keys)
        if rules is None:
            if len(self._narrowed) > 64:  # key sets churn only as providers come and go
                self._narrowed.clear()
            rules = self._narrowed[keys] = self.rules.narrowed(keys)
        return rules

    def _seeking(self, marker: str | None) -> bool:
        """A spot seek is on (controller/rebalance.py): spot pods must run on spot, for now."""
        since = unix_time(marker) if marker else None
        return since is not None and self.wall() - since < self.seek_timeout

    async def _floor_pods(self, group, k: int) -> int:
        """The group's floor pods, for this pod's role. Floor admissions the watch has not shown
        yet count only once it shows them, when they are what would make this pod spot: in a
        burst they show within milliseconds, a forged review never does. Past confirm_wait the
        unseen ones count for nothing, the pod becomes floor and the group stops trusting them."""
        deadline = None
        while True:
            shown = self.index.shown_role_pods(group, Role.FLOOR)
            unseen = self.index.admitted.count(group, Role.FLOOR)
            if shown >= k or shown + unseen < k:
                return shown + unseen  # the unseen ones do not decide this pod's role
            now = time.monotonic()
            if deadline is None:
                deadline = now + self.confirm_wait
            elif now >= deadline:
                self.index.admitted.distrust(group)
                self.metrics.unverified.labels("admission", "unconfirmed").inc()
                return shown
            await asyncio.sleep(OWNER_POLL)

    async def _owner(self, group) -> WorkloadRecord | None:
        """The workload the pod belongs to, waiting a few milliseconds for a brand-new one."""
        workload = self.index.workload_of(group)
        if workload is not None:
            return workload
        deadline = time.monotonic() + self.owner_wait
        while time.monotonic() < deadline:
            await asyncio.sleep(OWNER_POLL)
            workload = self.index.workload_of(group)
            if workload is not None:
                self.metrics.owner_waits.labels("seen").inc()
                return workload
        self.metrics.owner_waits.labels("timeout").inc()
        return None
