"""Drain: evict managed pods from spot nodes that are going away, at once, with bounded
concurrency, retrying while a PodDisruptionBudget says no."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from .. import logs
from ..index import Index
from ..moves import RECLAIM, drainable
from ..nodes import NOT_READY, SPOT
from ..supervisor import Supervisor
from ..workloads import PodRecord
from .evictor import Evictor
from .scope import Scope

log = logs.get("drain")

# How long an evicted pod's claim is held waiting for the watch to show it leaving.
SEEN_LEAVING_TIMEOUT = 30.0
# Above this share of nodes not Ready at once, not-Ready means the control plane or the
# network is in trouble (an API server outage leaves every node's heartbeat stale), not
# that these nodes are going away: draining them would evict for nothing. The same rule
# as kube-controller-manager's --unhealthy-zone-threshold.
MASS_NOT_READY_SHARE = 0.55
# Not-Ready alone drains a node only once it has lasted this long: nodes turn NotReady one
# watch event at a time, and a mass event must be seen whole before the first is acted on.
NOT_READY_GRACE = 5.0


class Drain:
    name = "drain"
    period = 1.0  # it also wakes on every index change
    gap = 0.05  # least time between two passes

    def __init__(self, index: Index, evictor: Evictor, scope: Scope, supervisor: Supervisor,
                 clock: Callable[[], float] = time.monotonic):
        self.index = index
        self.evictor = evictor
        self.scope = scope
        self.supervisor = supervisor
        self.clock = clock
        self.evicting: dict[str, asyncio.Task] = {}  # pod uid -> its eviction task
        self.holding_not_ready = False
        self._not_ready_since: dict[str, float] = {}

    async def once(self) -> None:
        index = self.index
        hold_not_ready = self._mass_not_ready()
        for node, reason in list(index.going_away.items()):
            record = index.nodes.get(node)
            if record is None or record.effective != SPOT:
                continue
            if reason == NOT_READY and (hold_not_ready or self.clock() - self._not_ready_since[node] < NOT_READY_GRACE):
                continue
            for uid in list(index.pods_on_node(node)):
                pod = index.pods.get(uid)
                if pod is None or uid in self.evicting or not self.scope.may_touch(pod):
                    continue
                if not drainable(pod.owner_kind, pod.mirror, pod.terminating, pod.group is not None):
                    continue
                self.evicting[uid] = self.supervisor.spawn(
                    self._drain_pod(pod, f"spot node {node} is going away: {reason}"), name=f"evict-{uid}", loop="drain"
                )

    def _mass_not_ready(self) -> bool:
        """Also keeps when each node was first seen not Ready, for the grace."""
        now = self.clock()
        not_ready_now = {node for node, reason in self.index.going_away.items() if reason == NOT_READY}
        self._not_ready_since = {node: self._not_ready_since.get(node, now) for node in not_ready_now}
        nodes = len(self.index.nodes)
        not_ready = len(not_ready_now)
        holding = bool(nodes) and not_ready / nodes > MASS_NOT_READY_SHARE
        if holding != self.holding_not_ready:
            self.holding_not_ready = holding
            (log.warning if holding else log.info)(
                "most nodes are not Ready: not draining for that alone" if holding else "not-Ready drains resume",
                extra={"not_ready": not_ready, "nodes": nodes},
            )
        return holding

    async def _drain_pod(self, pod: PodRecord, reason: str) -> None:
        try:
            result = await self.evictor.evict_while(pod, RECLAIM, reason, lambda: self._still_draining(pod))
            if result is not None and result.done:
                # Hold the claim until the watch shows the pod leaving, or a pass in
                # between would evict it a second time.
                await self._until_seen_leaving(pod)
        finally:
            self.evicting.pop(pod.uid, None)

    def _still_draining(self, pod: PodRecord) -> bool:
        current = self.index.pods.get(pod.uid)
        return current is not None and not current.terminating and pod.node in self.index.going_away

    async def _until_seen_leaving(self, pod: PodRecord) -> None:
        deadline = self.clock() + SEEN_LEAVING_TIMEOUT
        while self.clock() < deadline:
            current = self.index.pods.get(pod.uid)
            if current is None or current.terminating:
                return
            await asyncio.sleep(0.05)

    async def settle(self) -> None:
        """Wait for every eviction under way (tests, and a clean stop)."""
        await asyncio.gather(*list(self.evicting.values()), return_exceptions=True)
