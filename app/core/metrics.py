"""Prometheus metrics, on a registry of our own so tests can build fresh ones."""

from __future__ import annotations

import asyncio
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Fine around the 5 ms a healthy loop stays under.
LAG_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.request_seconds = Histogram(
            "spot_extender_request_duration_seconds",
            "Time to answer an extender call, by verb",
            ["verb"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "spot_extender_decisions_total",
            "Extender answers by verb and outcome",
            ["verb", "outcome"],
            registry=r,
        )
        self.fallbacks = Counter(
            "spot_extender_fallbacks_total",
            "Pods whose on-demand floor was unmet but that were let onto spot because no on-demand node was a "
            "candidate (and none the index knows could take them, or their --floor-hold ran out)",
            registry=r,
        )
        self.floor_holds = Counter(
            "spot_extender_floor_holds_total",
            "Floor pods kept off spot because the scheduler's sample left out an on-demand node that could "
            "take them: started, ended (an on-demand candidate came), expired (--floor-hold ran out)",
            ["result"],
            registry=r,
        )
        self.bad_requests = Counter(
            "spot_extender_bad_requests_total",
            "Requests answered with a 4xx, by path",
            ["path", "status"],
            registry=r,
        )
        self.admissions = Counter(
            "spot_extender_admissions_total",
            "Pod admissions answered by the webhook, by outcome: floor, spot (the role given), spot-seek (a "
            "spot pod that must run on spot during a spot seek), pinned (the "
            "pod's spec already chooses a class), unmanaged, excluded, ignored (not a pod CREATE, or a pod "
            "bound already), not-ready (index syncing), "
            "bad-request, error; all but floor, spot and spot-seek are admitted unpatched",
            ["outcome"],
            registry=r,
        )
        self.admission_seconds = Histogram(
            "spot_extender_admission_duration_seconds",
            "Time to answer a pod admission, from the body read to the answer built",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.unverified = Counter(
            "spot_extender_unverified_total",
            "Calls whose state was not kept because the index could not vouch for them, by what "
            "(admission; inflight: a filter or prioritize call's hold) and why (unknown-owner, owner-uid, "
            "revision, no-room, expired: an admission or a hold whose pod the watch never showed, "
            "unconfirmed: such entries were what would have made a pod spot, and the watch did not show "
            "them in time; for inflight also other-group, not-pending, full): forged calls, or creates "
            "denied after admission",
            ["what", "reason"],
            registry=r,
        )
        self.owner_waits = Counter(
            "spot_extender_admission_owner_waits_total",
            "Admissions that waited for the watch to show the pod's owner, by result (seen, timeout: "
            "admitted as floor)",
            ["result"],
            registry=r,
        )
        self.unknown_nodes = Counter(
            "spot_extender_unknown_nodes_total",
            "Candidate node names the index had not seen, in filter calls for pods bound for on-demand",
            registry=r,
        )
        self.watch_restarts = Counter(
            "spot_extender_watch_restarts_total",
            "Watch streams restarted, by kind and reason",
            ["kind", "reason"],
            registry=r,
        )
        self.watch_events = Counter(
            "spot_extender_watch_events_total",
            "Watch events applied to the index, by kind",
            ["kind"],
            registry=r,
        )
        self.loop_errors = Counter(
            "spot_extender_loop_errors_total",
            "Unexpected errors caught in background loops, by loop",
            ["loop"],
            registry=r,
        )
        self.loop_lag = Histogram(
            "spot_extender_event_loop_lag_seconds",
            "How much later than asked a 10 ms timer fires: what every request and watch event waits "
            "behind whatever holds the event loop",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.loop_lag_max = Gauge(
            "spot_extender_event_loop_lag_max_seconds",
            "The largest event-loop lag of the last minute (six 10 s slots, the current one included)",
            registry=r,
        )
        self.leader = Gauge(
            "spot_extender_leader",
            "1 while this replica holds the leader lease and runs the controller loops",
            registry=r,
        )
        self.leader_transitions = Counter(
            "spot_extender_leader_transitions_total",
            "Leadership changes of this replica: acquired, lost or released",
            ["event"],
            registry=r,
        )
        self.watch_down = Gauge(
            "spot_extender_watch_down_seconds",
            "How long each watch has been unable to reach the API server (0 while connected): "
            "the index may be that stale",
            ["kind"],
            registry=r,
        )
        self.certificates_issued = Counter(
            "spot_extender_certificates_issued_total",
            "Self-managed webhook certificates this replica issued into the Secret: ca or cert",
            ["what"],
            registry=r,
        )
        self.certificate_expiry = Gauge(
            "spot_extender_certificate_expiry_timestamp_seconds",
            "When the serving certificate this replica serves expires (self-managed certificates only)",
            registry=r,
        )
        self.index_objects = Gauge(
            "spot_extender_index_objects",
            "Objects held in the index, by kind",
            ["kind"],
            registry=r,
        )

        # Controller (the leader's loops)
        self.evictions = Counter(
            "spot_extender_evictions_total",
            "Evictions by cause (reclaim, floor-repair, return-to-spot) and result "
            "(evicted, gone, blocked, error, dry-run)",
            ["cause", "result"],
            registry=r,
        )
        self.drain_waves = Counter(
            "spot_extender_drain_waves_total",
            "Batches of reclaim evictions, by what let them go: room in a paced drain, as earlier "
            "replacements turned Ready (paced), Ready surge pods standing in for them (surge), or pods "
            "that had to go now (due: no notice, their latest eviction time reached, or not Ready)",
            ["trigger"],
            registry=r,
        )
        self.surges = Counter(
            "spot_extender_surges_total",
            "Surges (replacements started before a reclaim's evictions), by outcome: started; completed "
            "(every surge pod removed as the workload's own replacements turned Ready); abandoned (removed "
            "with some not Ready: no room past the notice, or the reclaim outlasted); failed (not created)",
            ["outcome"],
            registry=r,
        )
        self.surge_pod_seconds = Counter(
            "spot_extender_surge_pod_seconds_total",
            "Seconds surge pods existed, summed over surge pods: what surges cost",
            registry=r,
        )
        self.surges_running = Gauge(
            "spot_extender_surges_in_progress",
            "Workloads with a surge ReplicaSet now",
            registry=r,
        )
        self.surge_writes = Counter(
            "spot_extender_surge_writes_total",
            "Writes to surge ReplicaSets, by write (create, scale, delete) and result (done, error)",
            ["write", "result"],
            registry=r,
        )
        self.drain_ready_deficit = Gauge(
            "spot_extender_drain_ready_deficit",
            "Ready replicas short of R, surge pods counted, summed over the workloads being drained now",
            registry=r,
        )
        self.below_floor = Gauge(
            "spot_extender_workloads_below_floor",
            "Workloads with fewer replicas on on-demand than their floor, at the last rebalance pass",
            registry=r,
        )
        self.floor_fallbacks = Counter(
            "spot_extender_floor_pending_fallbacks_total",
            "Floor pods evicted after --floor-pending-timeout Pending, so that their replacements are "
            "admitted as spot pods",
            registry=r,
        )
        self.spot_seeks = Counter(
            "spot_extender_spot_seeks_total",
            "Moves back to spot while no spot node had room, the replacement requiring spot for an "
            "autoscaler to add a node, by result: started, placed (it runs on spot), timeout (still "
            "Pending after --spot-seek-timeout, evicted to only prefer spot again)",
            ["result"],
            registry=r,
        )
        self.moves_deferred = Counter(
            "spot_extender_moves_deferred_total",
            "Moves held back by the per-workload cooldown, its backoff, or the global rate limit",
            ["reason"],
            registry=r,
        )
        self.moves_failed = Counter(
            "spot_extender_moves_failed_total",
            "Moves whose replacement did not land where the move meant it to, by cause: each one doubles "
            "the workload's wait before its next move, up to --move-backoff-max",
            ["cause"],
            registry=r,
        )
        self.moves_skipped = Counter(
            "spot_extender_moves_skipped_total",
            "Moves a workload needed but could not make, by cause and reason",
            ["cause", "reason"],
            registry=r,
        )
        self.cost_patches = Counter(
            "spot_extender_deletion_cost_patches_total",
            "pod-deletion-cost annotations written, by result",
            ["result"],
            registry=r,
        )
        self.tasks = Gauge(
            "spot_extender_asyncio_tasks",
            "asyncio tasks alive in the process: flat over time unless something leaks",
            registry=r,
        )

        # Series that exist at 0 from the start, so that rate() counts the first reclaim or
        # hold too, not only the ones after it (the names are app/decisions/moves.py's and holds').
        for cause in ("reclaim", "floor-repair", "return-to-spot"):
            self.evictions.labels(cause, "evicted")
        for result in ("started", "ended", "expired"):
            self.floor_holds.labels(result)
        for outcome in ("started", "completed", "abandoned", "failed"):
            self.surges.labels(outcome)

    def track_tasks(self, loop: asyncio.AbstractEventLoop) -> None:
        self.tasks.set_function(lambda: len(asyncio.all_tasks(loop)))

    def track_watches(self, down_for: Callable[[str], float], kinds: tuple[str, ...]) -> None:
        for kind in kinds:
            self.watch_down.labels(kind).set_function(lambda kind=kind: down_for(kind))

    def track_index_sizes(self, sizes: Callable[[], dict[str, int]], kinds: tuple[str, ...]) -> None:
        """Read sizes at scrape time rather than updating gauges on every event."""
        for kind in kinds:
            self.index_objects.labels(kind).set_function(lambda kind=kind: sizes().get(kind, 0))
