"""Surge before evict, the leader's side (the numbers are decisions/surge.py's).

When spot nodes with a notice go away, a Deployment or Rollout that opts in gets a surge
ReplicaSet: its counted ReplicaSet's pod template, controlled by that ReplicaSet, pods
with their own revision hash and SURGE_LABEL (objects.surge_replicaset). The drain lets a
doomed pod go as a surge pod is Ready (drain.py asks `cover`); as the workload's own
replacements turn Ready the surge shrinks, and it is deleted once it has none left to
stand in for. Everything is read back from the index, so a new leader adopts the surges
a killed one left: it finds them by their label, as the watch shows them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Awaitable, Callable

from ..api import ApiError
from ..api.kinds import BY_NAME, REPLICASET
from ..api.objects import REPLICASETS, surge_replicaset
from ..cluster.records import UNSCHEDULABLE, GroupKey, PodRecord, WorkloadKey, WorkloadRecord
from ..core import logs
from ..core.backoff import Backoff
from ..core.vocabulary import SURGE_FOR_ANNOTATION, SURGE_LABEL
from ..decisions.pacing import wave_size
from ..decisions.policy import scaled
from ..decisions.surge import late_after, surge_bound, surge_wanted
from .context import LoopContext
from .writer import Written, workload_ref

log = logs.get("surge")

# A surge still there this long past its notice's end is removed, Ready or not: whatever
# keeps the workload's own replacements from being Ready is not the surge's to wait out.
OUTLAST = 300.0
# A surge asked for and not shown by the watch within this long is forgotten (the next
# pass may ask again; a 409 then says it exists after all).
UNSEEN_TIMEOUT = 30.0


@dataclass
class SurgeRun:
    """One workload's surge, as this term knows it."""

    started: float  # when this term created or adopted it
    ready_at: float  # when its pods are expected Ready: started + the workload's start-up
    ends: float  # the latest end of the notices it answers (its nodes' deadlines)
    size: int  # surge pods asked for at the start
    paced_wave: int  # replicas down at once the paced drain planned then: giving up never costs more
    doomed_seen: int = 0  # the most doomed replicas seen Ready: more nodes' notices widen the plan


@dataclass(frozen=True)
class Cover:
    """What a workload's surge offers the drain now."""

    ready: int  # surge pods Ready, on nodes that stay
    coming: int  # surge pods that may still be Ready: Ready, starting, or waiting for a node an autoscaler may add
    ready_at: float
    paced_wave: int
    on_track: bool  # none stuck, none late to be Ready: the drain may trust it


class Surges:
    def __init__(self, ctx: LoopContext, clock: Callable[[], float] = time.monotonic):
        self.index = ctx.index
        self.writer = ctx.writer
        self.tasks = ctx.tasks
        self.metrics = ctx.metrics
        self.scope = ctx.scope
        self.mode = ctx.settings.surge
        self.max_surge = ctx.settings.max_surge
        self.margin = ctx.settings.drain_margin
        self.timeout = ctx.settings.request_timeout
        self.clock = clock
        self.runs: dict[WorkloadKey, SurgeRun] = {}
        self.writing: set[WorkloadKey] = set()  # a write in flight: no other until it ends
        self.refused: set[WorkloadKey] = set()  # not created in this reclaim: never retried in it
        self.removed: set[str] = set()  # uids of surges deleted, until the watch shows them gone
        self.asked: dict[str, int] = {}  # replicas last written per surge uid, until the watch shows them
        self.backoffs: dict[WorkloadKey, tuple[Backoff, float]] = {}  # after a failed write: not before
        self._counted_at: float | None = None
        self._startup: Callable[[GroupKey], float] = lambda group: 0.0  # the drain's estimate, per pass

    def wants(self, workload: WorkloadRecord) -> bool:
        """Opted in, and a kind whose pods a ReplicaSet makes: never a StatefulSet, whose pods
        have identities and volumes a stand-in cannot have."""
        return BY_NAME[workload.kind].owns_replicasets and self.scope.may_move(workload) and (
            self.mode == "all" or self.mode == "annotated" and workload.surge)

    # ---- starting ------------------------------------------------------------------

    def start(self, doomed: dict[GroupKey, list[PodRecord]], now: float, startup: Callable[[GroupKey], float]) -> None:
        """A surge for each workload that wants one and whose doomed pods are in its counted
        ReplicaSet, on nodes with a notice not over yet. `startup`: the group's start-up estimate."""
        self._startup = startup
        if self.mode == "off":
            return
        reclaimed: set[WorkloadKey] = set()
        for group, pods in doomed.items():
            workload = self.index.workload_of(group)
            if workload is None or not self.wants(workload) or self.index.current_group(workload) != group:
                continue
            key = workload.key
            reclaimed.add(key)
            if key in self.runs or key in self.writing or key in self.refused or self._beside(workload):
                continue
            ends = [self.index.deadline(p.node) for p in pods]
            if any(end is None or end <= now for end in ends):
                continue  # no notice, or none left: the drain goes at once
            counted = self.index.workload(group)
            size = self._wanted(workload, group, None)
            if counted is None or size <= 0:
                continue
            took = startup(group)
            self.runs[key] = SurgeRun(now, now + took, max(ends), size, *self._paced_plan(pods, now, took))
            self._write(key, self._create(workload, counted, size, pods))
        # A reclaim over: a workload refused in it may surge in the next.
        self.refused &= reclaimed

    async def _create(self, workload: WorkloadRecord, counted: WorkloadRecord, size: int,
                      pods: list[PodRecord]) -> bool:
        owner = _owner(workload)
        try:
            beside = await self.writer.kube.get(REPLICASETS, counted.namespace, counted.name, self.timeout)
        except ApiError as exc:
            log.warning("surge not started: its ReplicaSet could not be read", extra={"owner": owner, "error": str(exc)})
            return self._not_started(workload, failed=True)
        if (beside.get("metadata") or {}).get("uid") != counted.uid:
            return self._not_started(workload, failed=False)  # replaced since the index saw it
        body = surge_replicaset(beside, f"{workload.kind}/{workload.name}", size, SURGE_LABEL, SURGE_FOR_ANNOTATION)
        written = await self.writer.create_surge(body, owner)
        if written is Written.EXISTS:
            return True  # a surge of that name the watch does not show yet: adopted once it does
        if written is not Written.DONE:
            return self._not_started(workload, failed=written is Written.ERROR)
        self.metrics.surges.labels("started").inc()
        nodes = sorted({p.node for p in pods})
        await self.writer.event(workload_ref(workload), "Normal", "SurgeStarted",
                                f"{size} surge pod(s) started beside ReplicaSet {counted.name}: "
                                f"{len(pods)} replica(s) on spot node(s) {', '.join(nodes[:5])} going away")
        return True

    def _not_started(self, workload: WorkloadRecord, failed: bool) -> bool:
        """No surge for this reclaim: the drain goes on paced. True: nothing to back off from."""
        self.runs.pop(workload.key, None)
        self.refused.add(workload.key)
        if failed:
            self.metrics.surges.labels("failed").inc()
        return True

    # ---- tending -------------------------------------------------------------------

    def tend(self, now: float) -> None:
        """Shrink each surge as the workload's own replacements turn Ready, remove it when
        done, past its notice without room, or outlasted; count what surges cost."""
        since = self._counted_at
        self._counted_at = now
        shown = {s.uid: s for key in self.index.surge_workloads() for s in self.index.surges_of(key)}
        self.removed &= shown.keys()
        self.asked = {uid: n for uid, n in self.asked.items() if uid in shown and shown[uid].replicas != n}
        keys = set(self.index.surge_workloads()) | set(self.runs)
        self.metrics.surges_running.set(len(keys))
        for key in keys:
            if not self.scope.acts_in(key.namespace):
                continue  # not the controller's to tend
            surges = self._surges(key)
            if since is not None:
                live = sum(self.index.live_count(_group_of(s)) for s in surges)
                self.metrics.surge_pod_seconds.inc(live * max(0.0, now - since))
            if key in self.writing or now < self.backoffs.get(key, (None, 0.0))[1]:
                continue
            if surges:
                self._tend_one(key, surges, now)
            elif key in self.runs and now - self.runs[key].started > UNSEEN_TIMEOUT:
                del self.runs[key]

    def _tend_one(self, key: WorkloadKey, surges: list[WorkloadRecord], now: float) -> None:
        workload = self.index.workload(key)
        if workload is None:  # deleted and its surge orphaned, or never known: nothing to stand in for
            self._write(key, self._remove(key, None, surges[0], "its workload is gone", completed=False))
            return
        counted = self.index.workload(self.index.current_group(workload))
        stale = [s for s in surges if counted is None or s.surge_beside != counted.uid]
        if stale:  # beside a ReplicaSet no longer counted (a rollout): its template is the old one
            self._write(key, self._remove(key, workload, stale[0], "a newer revision is counted", completed=False))
            return
        surge = surges[0]
        group = self.index.current_group(workload)
        run = self.runs.get(key) or self._adopt(workload, surge, now)
        doomed = self._doomed(group)
        run.ends = max([run.ends] + [e for p in doomed if (e := self.index.deadline(p.node))])
        healthy = self._healthy(group)
        wanted = surge_wanted(surge.replicas, len(doomed), self._bound(workload), workload.replicas, healthy)
        going_away = self.index.going_away()
        ready = sum(1 for p in self.index.live_pods(_group_of(surge)) if p.ready and p.node not in going_away)
        if now > run.ends:
            wanted = min(wanted, ready)  # Pending past the notice: no room came; an autoscaler may still add some
        if wanted <= 0 or now > run.ends + OUTLAST:
            done = healthy >= workload.replicas
            reason = "done" if done else "its notice is over and its workload is not all Ready"
            self._write(key, self._remove(key, workload, surge, reason, completed=done))
        elif wanted != surge.replicas and self.asked.get(surge.uid) != wanted:
            self._write(key, self._scale(surge, wanted, workload))

    async def _scale(self, surge: WorkloadRecord, replicas: int, workload: WorkloadRecord) -> bool:
        written = await self.writer.scale_surge(surge, replicas, _owner(workload))
        if written is Written.DONE:
            self.asked[surge.uid] = replicas
        return written is not Written.ERROR

    async def _remove(self, key: WorkloadKey, workload: WorkloadRecord | None, surge: WorkloadRecord, reason: str,
                      completed: bool) -> bool:
        written = await self.writer.delete_surge(surge, _owner(workload) if workload else f"{key.kind}/{key.name}")
        if written is Written.ERROR:
            return False
        if written is Written.DRY_RUN:
            return True
        self.removed.add(surge.uid)  # the watch may show it a while yet: neither adopted nor removed again
        run = self.runs.pop(key, None)
        if written is not Written.DONE:
            return True  # gone already, or the name is another's now: not this term's to count
        outcome = "completed" if completed else "abandoned"
        self.metrics.surges.labels(outcome).inc()
        if workload is not None:
            took = f" after {self.clock() - run.started:.0f}s" if run is not None else ""
            await self.writer.event(workload_ref(workload), "Normal" if completed else "Warning",
                                    "SurgeCompleted" if completed else "SurgeAbandoned",
                                    f"surge ReplicaSet {surge.name} removed{took}: {reason}")
        return True

    def _write(self, key: WorkloadKey, write: Awaitable[bool]) -> None:
        """One write at a time per workload; after a failed one, the next waits (backing off)."""
        self.writing.add(key)

        async def run() -> None:
            try:
                if await write:
                    self.backoffs.pop(key, None)
                else:
                    backoff = self.backoffs.get(key, (Backoff(initial=2.0, maximum=120.0), 0.0))[0]
                    self.backoffs[key] = (backoff, self.clock() + backoff.next_delay())
            finally:
                self.writing.discard(key)

        self.tasks.spawn(run(), name=f"surge-{key.namespace}-{key.name}", loop="drain")

    # ---- what the drain reads ---------------------------------------------------------

    def _adopt(self, workload: WorkloadRecord, surge: WorkloadRecord, now: float) -> SurgeRun:
        """A surge a past term left (its leader was killed): this term's from now on."""
        group = self.index.current_group(workload)
        took = self._startup(group)
        doomed = self._doomed(group)
        ends = [e for p in doomed if (e := self.index.deadline(p.node)) is not None]
        ready = any(p.ready for p in self.index.live_pods(_group_of(surge)))
        run = self.runs[workload.key] = SurgeRun(
            now, now if ready else now + took, max(ends, default=now + took), surge.replicas,
            *self._paced_plan(doomed, now, took))
        log.info("surge adopted", extra={"owner": _owner(workload), "replicaset": surge.name, "replicas": surge.replicas})
        return run

    def cover(self, workload: WorkloadRecord, serving: int, paced_now: int) -> Cover | None:
        """The surge's offer to the drain for the workload's counted ReplicaSet; None: no
        surge. `serving`: its doomed replicas that are Ready, `paced_now` the paced wave for
        them now: when more nodes got their notice, the paced drain would have planned that."""
        surge = self._beside(workload)
        run = self.runs.get(workload.key)
        if run is None and surge is not None:
            run = self._adopt(workload, surge, self.clock())
        if run is None:
            return None
        if serving > run.doomed_seen:
            run.doomed_seen = serving
            run.paced_wave = max(run.paced_wave, paced_now)
        group = self.index.current_group(workload)
        # What the next pass will ask for (more nodes may have got their notice since), or,
        # while the ReplicaSet is not shown yet, what was asked for.
        wanted = self._wanted(workload, group, surge.replicas if surge is not None else run.size)
        now = self.clock()
        took = self._startup(group)
        on_time = now <= late_after(run.ready_at, took)
        if surge is None:
            return Cover(0, wanted, run.ready_at, run.paced_wave, on_time)
        going_away = self.index.going_away()
        pods = [p for p in self.index.live_pods(_group_of(surge)) if p.node not in going_away]
        ready = sum(1 for p in pods if p.ready)
        autoscaled = self.index.autoscaled_nodes > 0
        stuck = sum(1 for p in pods if not p.ready and p.unscheduled == UNSCHEDULABLE and not autoscaled)
        late = not on_time and ready < min(len(pods), wanted)
        # None Ready past the slack: expect them a whole start-up from now.
        ready_at = run.ready_at if ready or on_time else now + took
        # The ReplicaSet controller may not have made every pod yet: the count asked for comes.
        return Cover(ready, max(len(pods), wanted) - stuck, ready_at, run.paced_wave, not stuck and not late)

    # ---- reading the index ----------------------------------------------------------

    def _paced_plan(self, doomed: list[PodRecord], now: float, took: float) -> tuple[int, int]:
        """(paced wave, doomed Ready): the replicas the paced drain plans to take down at once
        for the doomed pods serving now, and how many those are."""
        serving = [p for p in doomed if p.ready]
        if not serving:
            return 0, 0
        first_latest = min((self.index.deadline(p.node) or now) - p.grace - self.margin for p in serving)
        return wave_size(len(serving), first_latest, now, took), len(serving)

    def _surges(self, key: WorkloadKey) -> list[WorkloadRecord]:
        return [s for s in self.index.surges_of(key) if s.uid not in self.removed]

    def _beside(self, workload: WorkloadRecord) -> WorkloadRecord | None:
        counted = self.index.workload(self.index.current_group(workload))
        return next((s for s in self._surges(workload.key) if counted is not None and s.surge_beside == counted.uid),
                    None)

    def _wanted(self, workload: WorkloadRecord, group: GroupKey, current: int | None) -> int:
        return surge_wanted(current, len(self._doomed(group)), self._bound(workload), workload.replicas,
                            self._healthy(group))

    def _bound(self, workload: WorkloadRecord) -> int:
        """The workload's spot-extender.io/max-surge if it reads, else --max-surge."""
        if workload.max_surge is not None and scaled(workload.max_surge, workload.replicas) is not None:
            return surge_bound(workload.max_surge, workload.replicas)
        return surge_bound(self.max_surge, workload.replicas)

    def _doomed(self, group: GroupKey) -> list[PodRecord]:
        going_away = self.index.going_away()
        return [p for p in self.index.live_pods(group) if p.node in going_away]

    def _healthy(self, group: GroupKey) -> int:
        """Ready pods of the group that stay: not on a node going away."""
        going_away = self.index.going_away()
        return sum(1 for p in self.index.live_pods(group) if p.ready and p.node not in going_away)


def _group_of(surge: WorkloadRecord) -> GroupKey:
    return GroupKey(REPLICASET, surge.namespace, surge.name)


def _owner(workload: WorkloadRecord) -> str:
    return f"{workload.kind}/{workload.namespace}/{workload.name}"
