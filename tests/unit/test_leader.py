import asyncio
import logging
import re

import pytest

from spot_extender.api import micro_time
from spot_extender.controller.leader import LeaderElector
from spot_extender.core.metrics import Metrics
from tests.fakeapi import FakeApi
from tests.helpers.metrics import registry_value as sample
from tests.helpers.waiting import eventually

NS, NAME = "default", "spot-extender"
FAST = dict(lease_duration=0.6, renew_deadline=0.4, retry_period=0.1)
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def now() -> float:
    return asyncio.get_running_loop().time()




class Lead:
    """A lead() that records (time, event) and can crash or return on chosen calls."""

    def __init__(self):
        self.events: list[tuple[float, str]] = []
        self.script: list[str] = []  # per call: "raise", "return"; then it waits forever
        self.leader_when_cancelled: list[bool] = []
        self.elector: LeaderElector | None = None

    async def __call__(self):
        self.events.append((now(), "start"))
        action = self.script.pop(0) if self.script else "wait"
        if action == "raise":
            raise RuntimeError("boom")
        if action == "return":
            return
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.events.append((now(), "stop"))
            self.leader_when_cancelled.append(self.elector.is_leader if self.elector else None)
            raise

    def times(self, event: str) -> list[float]:
        return [t for t, e in self.events if e == event]

    @property
    def running(self) -> bool:
        return len(self.times("start")) > len(self.times("stop"))


class Peer:
    """One replica: an elector on its own client, its lead and its run() task."""

    def __init__(self, api: FakeApi, identity: str, **overrides):
        self.kube = api.kube()
        self.metrics = Metrics()
        self.elector = LeaderElector(self.kube, NS, NAME, identity, metrics=self.metrics, **{**FAST, **overrides})
        self.lead = Lead()
        self.lead.elector = self.elector
        self.task: asyncio.Task | None = None

    def start(self, script=()) -> "Peer":
        self.lead.script = list(script)
        self.task = asyncio.create_task(self.elector.run(self.lead))
        return self

    async def stop(self) -> None:
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task
        await self.kube.close()

    def leading(self) -> bool:
        """Elected and its lead task has started (is_leader turns True just before)."""
        return self.elector.is_leader and self.lead.running

    def errors(self, loop: str = "leader") -> float:
        return sample(self.metrics, "spot_extender_loop_errors_total", loop=loop)

    def transitions(self, event: str) -> float:
        return sample(self.metrics, "spot_extender_leader_transitions_total", event=event)


def spec(api) -> dict:
    return api.lease(NS, NAME)["spec"]


def writes(api, method="PUT") -> list[tuple[float, dict]]:
    return [(t, body) for t, m, _, body in api.lease_requests if m == method]


async def test_first_acquire_creates_the_lease_then_renews_it_in_place():
    async with FakeApi() as api:
        a = Peer(api, "a").start()
        await eventually(a.leading)
        created = dict(spec(api))
        assert created["holderIdentity"] == "a"
        assert created["leaseDurationSeconds"] == 1 and type(created["leaseDurationSeconds"]) is int
        assert created["leaseTransitions"] == 0
        assert MICRO_TIME.match(created["acquireTime"]) and created["renewTime"] == created["acquireTime"]
        assert [m for _, m, _, _ in api.lease_requests] == ["GET", "POST"]
        assert sample(a.metrics, "spot_extender_leader") == 1
        await eventually(lambda: len(writes(api)) >= 3)
        renewed = spec(api)
        assert renewed["renewTime"] > created["renewTime"]
        assert renewed["acquireTime"] == created["acquireTime"] and renewed["leaseTransitions"] == 0
        # Renewals go straight to a PUT from our last copy, each guarded by its resourceVersion.
        assert [m for _, m, _, _ in api.lease_requests[2:]] == ["PUT"] * (len(api.lease_requests) - 2)
        assert all(body["metadata"]["resourceVersion"] for _, body in writes(api))
        assert len(a.lead.times("start")) == 1 and a.lead.running
        await a.stop()
    assert sample(a.metrics, "spot_extender_leader") == 0


async def test_a_second_elector_does_not_lead_while_the_first_renews():
    async with FakeApi() as api:
        a = Peer(api, "a").start()
        await eventually(a.leading)
        b = Peer(api, "b").start()
        await asyncio.sleep(2.0)  # > 3x both our lease duration and the record's 1 s
        assert not b.elector.is_leader and not b.lead.events
        assert spec(api)["holderIdentity"] == "a" and spec(api)["leaseTransitions"] == 0
        assert len(a.lead.times("start")) == 1
        assert b.errors() == 0 and a.errors() == 0
        await b.stop()
        await a.stop()


async def test_the_second_takes_over_only_after_the_first_stops_renewing():
    async with FakeApi() as api:
        a = Peer(api, "a").start()
        await eventually(a.leading)
        b = Peer(api, "b").start()
        await asyncio.sleep(0.3)
        await a.kube.close()  # a is cut off from the API server: its renewals fail
        await eventually(b.leading, timeout=5)
        last_a_write = max(t for t, body in writes(api) if body["spec"]["holderIdentity"] == "a")
        a_stopped, b_started = a.lead.times("stop")[0], b.lead.times("start")[0]
        # a gave up within its renew deadline; b waited out the full lease (the record's 1 s).
        assert a_stopped - last_a_write <= FAST["renew_deadline"] + 0.05
        assert b_started - last_a_write >= 1.0
        assert a_stopped < b_started and a.lead.leader_when_cancelled == [False]
        assert not a.elector.is_leader and a.errors() >= 1 and a.transitions("lost") == 1
        assert spec(api)["holderIdentity"] == "b" and spec(api)["leaseTransitions"] == 1
        await b.stop()
        await a.stop()  # its release fails (client closed): logged, not raised


async def test_lead_is_cancelled_at_once_when_the_lease_shows_another_holder():
    async with FakeApi() as api:
        a = Peer(api, "a").start()
        await eventually(a.leading)
        api.put_lease(NS, NAME, {"holderIdentity": "usurper", "renewTime": micro_time(), "leaseDurationSeconds": 30})
        taken = now()
        await eventually(lambda: a.lead.times("stop"))
        # One retry period, not the renew deadline: the conflict was read and acted on.
        assert a.lead.times("stop")[0] - taken < 0.25
        assert a.lead.leader_when_cancelled == [False] and sample(a.metrics, "spot_extender_leader") == 0
        await asyncio.sleep(0.5)
        assert not a.elector.is_leader and spec(api)["holderIdentity"] == "usurper"
        await a.stop()
        assert spec(api)["holderIdentity"] == "usurper"  # not ours: left alone at shutdown


async def test_lead_is_cancelled_when_renewals_hang_past_the_deadline_then_leadership_resumes():
    async with FakeApi() as api:
        # Slow answers and a retry period near the deadline: the deadline must run from when the
        # last good renewal was sent, and a hung request must be cut short at the deadline.
        api.lease_delay = 0.1
        a = Peer(api, "a", retry_period=0.25).start()
        await eventually(a.leading)
        await asyncio.sleep(0.5)
        api.lease_hang = True
        hung_at = now()
        await eventually(lambda: a.lead.times("stop"))
        last_ok = max(t for t, m, _, _ in api.lease_requests if m == "PUT" and t < hung_at - 0.1)
        assert a.lead.times("stop")[0] - last_ok <= FAST["renew_deadline"] + 0.03
        assert a.lead.leader_when_cancelled == [False]
        api.lease_hang = False
        # The record still names us, so the next successful try takes it back.
        await eventually(lambda: a.elector.is_leader and a.lead.running)
        assert a.transitions("lost") == 1 and a.transitions("acquired") == 2
        assert spec(api)["leaseTransitions"] == 0
        await a.stop()


async def test_lead_is_restarted_while_leading_if_it_crashes_or_returns(caplog):
    caplog.set_level(logging.INFO, logger="spot_extender")
    async with FakeApi() as api:
        a = Peer(api, "a").start(script=["raise", "return"])
        await eventually(lambda: len(a.lead.times("start")) == 3)
        assert a.lead.running and a.elector.is_leader and a.transitions("lost") == 0
        assert a.errors("leader-lead") == 2
        failed = [r for r in caplog.records if r.getMessage() == "task failed; restarting it"]
        assert failed and failed[0].exc_info and "boom" in str(failed[0].exc_info[1])
        assert failed[0].task == "leader-lead"
        assert any(r.getMessage() == "task returned on its own; restarting it" for r in caplog.records)
        await a.stop()


async def test_shutdown_stops_lead_releases_the_lease_and_a_peer_takes_over_at_once():
    async with FakeApi() as api:
        a = Peer(api, "a").start()
        await eventually(a.leading)
        b = Peer(api, "b").start()
        await asyncio.sleep(0.3)
        assert not b.elector.is_leader
        stopping = now()
        await a.stop()
        release_at, release = next((t, body) for t, body in writes(api) if body["spec"]["holderIdentity"] is None)
        assert release["spec"]["holderIdentity"] is None and release["spec"]["leaseDurationSeconds"] == 1
        assert release["metadata"]["resourceVersion"]
        assert a.lead.times("stop")[0] < release_at  # lead ended before the lease was handed back
        assert a.transitions("released") == 1 and not a.elector.is_leader
        await eventually(b.leading, timeout=1)
        assert b.lead.times("start")[0] - stopping < 0.4  # well under the 1 s lease
        assert spec(api)["holderIdentity"] == "b" and spec(api)["leaseTransitions"] == 1
        await b.stop()
        assert "holderIdentity" not in spec(api)  # released again, as the real server stores a null


async def test_a_create_race_lost_with_409_is_not_an_error_and_the_winner_is_respected():
    async with FakeApi() as api:
        rival = {"holderIdentity": "rival", "renewTime": micro_time(), "leaseDurationSeconds": 1}
        api.before_lease_write = lambda method: bool(api.put_lease(NS, NAME, rival))
        a = Peer(api, "a").start()
        await eventually(lambda: len(api.lease_requests) >= 3)
        assert [m for _, m, _, _ in api.lease_requests[:3]] == ["GET", "POST", "GET"]
        raced = now()
        assert not a.elector.is_leader and a.errors() == 0
        # The rival never renews: a takes over once its record has sat unchanged for 1 s.
        await eventually(a.leading, timeout=3)
        assert now() - raced >= 0.8
        assert spec(api)["holderIdentity"] == "a" and spec(api)["leaseTransitions"] == 1
        await a.stop()


async def test_an_update_conflict_while_leading_rereads_and_keeps_leading():
    async with FakeApi() as api:
        a = Peer(api, "a").start()
        await eventually(a.leading)
        api.put_lease(NS, NAME, dict(spec(api)))  # someone touched it: same holder, new resourceVersion
        bumped = len(api.lease_requests)
        await eventually(lambda: len(api.lease_requests) >= bumped + 4)
        assert [m for _, m, _, _ in api.lease_requests[bumped : bumped + 3]] == ["PUT", "GET", "PUT"]
        assert a.elector.is_leader and len(a.lead.times("start")) == 1 and a.lead.running
        assert a.errors() == 0 and spec(api)["holderIdentity"] == "a"
        await a.stop()


async def test_a_deleted_lease_is_recreated_by_its_leader_unless_a_peer_creates_it_first():
    async with FakeApi() as api:
        a = Peer(api, "a").start()
        await eventually(a.leading)
        del api.leases[(NS, NAME)]
        await eventually(lambda: api.lease(NS, NAME) is not None)
        assert spec(api)["holderIdentity"] == "a" and a.elector.is_leader and len(a.lead.times("start")) == 1
        # Deleted again, and this time a peer's create lands first: a steps down at once.
        del api.leases[(NS, NAME)]
        peer = {"holderIdentity": "b", "leaseDurationSeconds": 1, "renewTime": micro_time()}
        api.before_lease_write = lambda method: method == "POST" and bool(api.put_lease(NS, NAME, peer))
        gone, sent = now(), len(api.lease_requests)
        await eventually(lambda: a.lead.times("stop"))
        assert a.lead.times("stop")[0] - gone < 0.25 and not a.elector.is_leader
        # PUT and GET: 404; POST: 409; GET: held by b
        assert [m for _, m, _, _ in api.lease_requests[sent : sent + 4]] == ["PUT", "GET", "POST", "GET"]
        assert a.errors() == 0
        await a.stop()


async def test_api_errors_are_retried_logged_and_counted_without_ending_run(caplog):
    caplog.set_level(logging.WARNING, logger="spot_extender.controller.leader")
    async with FakeApi() as api:
        api.lease_failures = [500, 503, 500]
        a = Peer(api, "a").start()
        await eventually(a.leading)
        assert a.errors() == 3
        assert len([r for r in caplog.records if r.getMessage() == "lease request failed"]) == 3
        # A failed renewal or two inside the renew deadline does not cost leadership.
        api.lease_failures = [500, 500]
        await eventually(lambda: a.errors() == 5)
        await asyncio.sleep(0.3)
        assert a.elector.is_leader and len(a.lead.times("start")) == 1 and a.lead.running
        assert not a.task.done()
        await a.stop()


async def test_expiry_is_timed_by_our_clock_from_first_sight_not_by_the_record_time():
    clock = [1000.0]
    async with FakeApi() as api:
        # Ancient renewTime (as if the holder's clock were years behind): not expired to us yet.
        api.put_lease(NS, NAME, {"holderIdentity": "ghost", "renewTime": "2001-01-01T00:00:00.000000Z",
                                 "leaseDurationSeconds": 5, "leaseTransitions": 4})
        a = Peer(api, "a", lease_duration=2.0, renew_deadline=1.0, clock=lambda: clock[0]).start()
        await eventually(lambda: len(api.lease_requests) >= 3)
        assert not a.elector.is_leader
        clock[0] += 4.9  # past our 2 s, short of the holder's own 5 s
        seen = len(api.lease_requests)
        await eventually(lambda: len(api.lease_requests) >= seen + 2)
        assert not a.elector.is_leader
        clock[0] += 0.1
        await eventually(a.leading)
        assert spec(api)["holderIdentity"] == "a" and spec(api)["leaseTransitions"] == 5
        await a.stop()


def test_durations_must_be_ordered():
    with pytest.raises(ValueError):
        LeaderElector(None, NS, NAME, "a", lease_duration=1, renew_deadline=1, retry_period=0.1)
