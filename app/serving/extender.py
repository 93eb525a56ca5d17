"""Answers filter and prioritize calls: wire args + index facts -> policy -> wire result.

Nothing here awaits: every answer comes from memory, so the event loop is never held
up by the API server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from ..cluster.index import Index
from ..cluster.nodes import Pool
from ..cluster.records import GroupKey, admitted_role, group_of, unverified
from ..cluster.resources import pod_requests
from ..core import logs
from ..core.metrics import Metrics
from ..core.settings import Settings
from ..core.vocabulary import Capacity
from ..decisions.floors import Floors
from ..decisions.holds import FloorHolds
from ..decisions.policy import NEUTRAL_SCORE, Floor, favourite, filter_nodes, held, on_demand_reason, score_nodes, steer
from ..decisions.room import Pod, node_with_room
from .candidates import CandidateCache, CandidateView
from .node_facts import CandidateFacts, NodeFacts
from .wire import ExtenderArgs, filter_error, filter_result

CONFIRM_WAIT = 0.2  # seconds: kube-scheduler's cycle waits too, so well under the webhook's
CONFIRM_POLL = 0.005

log = logs.get("extender")


@dataclass(frozen=True, slots=True)
class PodContext:
    """What the policy needs to know about the pod being scheduled."""

    pod_ref: str  # namespace/name, for logs
    uid: str
    group: GroupKey | None  # None: pass untouched
    unmanaged_reason: str
    floor: Floor | None = None
    on_demand: int = 0  # o, including pods sent to on-demand but not yet bound
    role: str = ""  # floor or spot when the webhook gave it one
    room: int | None = None  # pods of the group the watch may not show yet: its replicas less its live pods

    @property
    def needs_on_demand(self) -> str | None:
        """Why this pod must go to on-demand, or None: see policy.on_demand_reason."""
        return on_demand_reason(self.role, self.on_demand, self.floor.k if self.floor else 0)


class Extender:
    def __init__(self, index: Index, floors: Floors, settings: Settings, metrics: Metrics):
        self.index = index
        self.floors = floors
        self.metrics = metrics
        self.excluded = frozenset(settings.excluded_namespaces)
        self.facts = CandidateFacts(index, metrics)
        self.unknown_pool = self.facts.unknown_pool
        self._candidates = CandidateCache()
        self.holds = FloorHolds(settings.floor_hold)

    # ---- verbs ---------------------------------------------------------------------

    async def filter_confirmed(self, args: ExtenderArgs) -> bytes:
        """filter, after waiting (at most CONFIRM_WAIT) for the watch to show the pods whose
        unconfirmed on-demand holds are what would send this one to spot: in a burst they
        show within milliseconds, a forged call's never do. Those still unseen then stop
        counting, and this pod goes to on-demand."""
        inflight = self.index.inflight
        if inflight.any_unseen() and self.index.ready:
            ctx = self.context(args.pod)
            deadline = time.monotonic() + CONFIRM_WAIT
            while ctx.group is not None and self._unseen_decide(ctx):
                if time.monotonic() >= deadline:
                    inflight.unconfirmed(ctx.group)
                    break
                await asyncio.sleep(CONFIRM_POLL)
                ctx = self.context(args.pod)
        return self.filter(args)

    def _unseen_decide(self, ctx: PodContext) -> bool:
        """Whether holds the watch has not confirmed are what keeps this pod off on-demand."""
        if ctx.role or ctx.floor is None:
            return False  # a role from the webhook decides, or nothing is counted
        unseen = self.index.inflight.unseen_on_demand(ctx.group, excluding_uid=ctx.uid)
        return unseen > 0 and ctx.on_demand - unseen < ctx.floor.k <= ctx.on_demand

    def filter(self, args: ExtenderArgs) -> bytes:
        if not self.index.ready:
            self.metrics.decisions.labels("filter", "not-ready").inc()
            return filter_error("spot-extender index is still syncing")
        ctx = self.context(args.pod)
        names = args.names
        if ctx.group is None:
            self.metrics.decisions.labels("filter", "unmanaged").inc()
            return filter_result(args, names, {}, {})
        k = ctx.floor.k
        needs_on_demand = ctx.needs_on_demand
        # Unknown names change the answer only for a pod bound for on-demand.
        facts = self.facts.of(args, check_unknown=needs_on_demand is not None)
        outcome = filter_nodes(names, facts.going_away, facts.on_demand, needs_on_demand)
        hold = self._hold(ctx, args.pod) if outcome.fallback else None
        if hold is not None:
            decision = "hold"
            outcome = held(outcome, hold)
        elif outcome.fallback:
            decision = "fallback"
            self.metrics.fallbacks.inc()
            log.warning(
                "floor fallback to spot: no on-demand candidate",
                extra={"pod": ctx.pod_ref, "on_demand": ctx.on_demand, "floor": k, "candidates": len(names),
                       "reason": needs_on_demand},
            )
        elif not outcome.passed:
            decision = "no-node"
        elif needs_on_demand is not None:
            decision = "floor"
            self._in_flight(ctx, args.pod)
            if self.holds.end(ctx.uid):
                self.metrics.floor_holds.labels("ended").inc()
        else:
            decision = "free"
        self.metrics.decisions.labels("filter", decision).inc()
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "filter",
                extra={
                    "pod": ctx.pod_ref,
                    "decision": decision,
                    "on_demand": ctx.on_demand,
                    "floor": k,
                    "passed": len(outcome.passed),
                    "unresolvable": len(outcome.unresolvable),
                },
            )
        return filter_result(args, outcome.passed, {}, outcome.unresolvable)

    def _hold(self, ctx: PodContext, pod: dict) -> str | None:
        """Why the pod's spot candidates are refused for now (app/decisions/holds.py), or None to
        let it fall back: no on-demand node the index knows could take it, or its hold ran out."""
        if self.holds.hold <= 0:
            return None
        # Where it may run is judged by its template in the index, not by the spec the call
        # carries, which a caller could fill with terms that take seconds to judge.
        template = self.index.workload(ctx.group)
        if template is None:
            return None
        meta = pod.get("metadata") or {}
        cpu, memory = pod_requests(pod.get("spec") or {})
        node = node_with_room(self.index, Capacity.ON_DEMAND, Pod(
            cpu, memory, template.constraints, template.needs, template.namespace, str(meta.get("name") or ""),
            ctx.uid, template.template_labels))
        if node is None:
            return None
        known = self.index.pod(ctx.uid)
        if known is None or known.group != ctx.group or known.node:
            # Remembered only for a pod the watch shows Pending: a caller could send any number
            # of made-up uids. A real one is refused spot until an attempt after the watch shows it.
            return (f"floor hold: on-demand node {node} could take this floor pod but is not a candidate; "
                    f"waiting for the watch to show the pod")
        left, began = self.holds.left(ctx.uid)
        if began:
            self.metrics.floor_holds.labels("started").inc()
            log.info("floor pod held off spot: an on-demand node outside the scheduler's sample could take it",
                     extra={"pod": ctx.pod_ref, "node": node, "hold_s": self.holds.hold})
        if left <= 0:
            if self.holds.expire(ctx.uid):
                self.metrics.floor_holds.labels("expired").inc()
                log.warning("floor hold ran out: falling back to spot",
                            extra={"pod": ctx.pod_ref, "node": node, "hold_s": self.holds.hold})
            return None
        return (f"floor hold: on-demand node {node} could take this floor pod but is not a candidate; "
                f"waiting up to {left:.0f}s more for a scheduling attempt that has it")

    def prioritize(self, args: ExtenderArgs) -> bytes:
        ctx = self.context(args.pod) if self.index.ready else None
        facts = self.facts.of(args, check_unknown=False)
        view = self.candidate_view(args, facts)
        pool_sizes = view.pool_sizes
        if ctx is None or ctx.group is None:
            self.metrics.decisions.labels("prioritize", "neutral").inc()
            return view.priority_list(dict.fromkeys(pool_sizes, NEUTRAL_SCORE), {}, facts.pool_of)
        prefer_spot = ctx.needs_on_demand is None
        counts = self.index.counts(ctx.group)
        expected_nodes, expected_pools = self.index.inflight.expected(ctx.group, excluding_uid=ctx.uid)
        per_node, per_pool = expected_nodes, expected_pools
        if counts:
            per_node, per_pool = counts.per_node + expected_nodes, counts.per_pool + expected_pools
        scores = score_nodes(pool_sizes, view.members, facts.pool_of, self.unknown_pool, prefer_spot, per_node, per_pool)
        # Filter already failed these; should the scheduler ask anyway, they come last.
        # Overrides for non-candidates are never read, so no membership test is needed.
        scores.by_node.update(dict.fromkeys(facts.going_away, 0))
        chosen = favourite(scores, view.by_pool)
        if chosen is not None:
            chosen_pool = facts.pool_of.get(chosen)
            scores = steer(scores, chosen, chosen_pool)
            self._in_flight(ctx, args.pod, chosen, chosen_pool or self.unknown_pool)
        self.metrics.decisions.labels("prioritize", "prefer-spot" if prefer_spot else "prefer-on-demand").inc()
        return view.priority_list(scores.by_pool, scores.by_node, facts.pool_of)

    def candidate_view(self, args: ExtenderArgs, facts: "NodeFacts") -> CandidateView:
        if args.node_names is None:
            return CandidateView(args.names, facts.pool_of)  # request-local pools: nothing to reuse
        return self._candidates.view(args.node_names, facts.pool_of, self.index.node_generation)

    # ---- inputs --------------------------------------------------------------------

    def context(self, pod: dict) -> PodContext:
        meta = pod["metadata"]
        namespace = meta.get("namespace") or "default"
        pod_ref = f"{namespace}/{meta.get('name', '')}"
        uid = meta.get("uid") or pod_ref
        if namespace in self.excluded:
            return PodContext(pod_ref, uid, None, "excluded namespace")
        group = group_of({**meta, "namespace": namespace})
        if group is None:
            return PodContext(pod_ref, uid, None, "not a pod of a managed workload kind")
        floor = self.floors.of(self.index.workload_of(group), namespace, meta.get("labels") or {})
        counts = self.index.counts(group)
        placed = counts.on_demand if counts else 0
        room = self.index.room(group)
        on_demand = placed + self.index.inflight.on_demand(group, excluding_uid=uid, room=room)
        return PodContext(pod_ref, uid, group, "", floor, on_demand,
                          admitted_role(meta.get("labels"), meta.get("annotations")), room)

    def _in_flight(self, ctx: PodContext, pod: dict, node: str | None = None, pool: Pool | None = None) -> None:
        """Remember the filter's on-demand decision (or prioritize's node) until the watch shows
        the binding, if the index can vouch for the pod (app/cluster/inflight.py): the call may be forged."""
        why, seen = self._vouch(ctx, pod)
        if why is None:
            inflight, room = self.index.inflight, ctx.room or 0
            why = (inflight.hold_on_demand(ctx.uid, ctx.group, seen, room) if node is None
                   else inflight.expect(ctx.uid, ctx.group, node, pool, seen, room))
        if why is not None:
            self.metrics.unverified.labels("inflight", why).inc()

    def _vouch(self, ctx: PodContext, pod: dict) -> tuple[str | None, bool]:
        """(why the pod's in-flight state may not be kept, or None; whether the watch has shown
        the pod). A pod the index knows must be Pending in the same group; one it does not know
        yet (the watch lags the scheduler) must name its owner as the index knows it: its uid,
        and its revision where the index can tell (as the webhook checks admissions)."""
        known = self.index.pod(ctx.uid)
        if known is not None:
            if known.group != ctx.group:
                return "other-group", True
            if known.node or known.terminating:
                return "not-pending", True
            return None, True
        return unverified(pod.get("metadata") or {}, self.index.workload(ctx.group)), False

