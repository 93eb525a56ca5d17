import asyncio
import logging

from spot_extender.api import ApiError, TransportError
from spot_extender.core.metrics import Metrics
from spot_extender.core.supervisor import Supervisor, supervise
from tests.helpers.metrics import registry_value as sample
from tests.helpers.waiting import eventually


def errors(metrics, loop):
    return sample(metrics, "spot_extender_loop_errors_total", loop=loop)


async def test_a_task_that_fails_or_returns_is_logged_counted_and_restarted(caplog):
    metrics = Metrics()
    runs = []

    async def body():
        runs.append(asyncio.get_running_loop().time())
        if len(runs) == 1:
            raise RuntimeError("boom")
        if len(runs) == 2:
            raise TransportError("GET /x: ServerDisconnectedError()")
        if len(runs) == 3:
            return
        await asyncio.sleep(3600)

    with caplog.at_level(logging.WARNING, logger="spot_extender"):
        task = asyncio.create_task(supervise("work", body, metrics, backoff_max=0.2, quiet=(ApiError,)))
        for _ in range(200):
            if len(runs) == 4:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(runs) == 4 and errors(metrics, "work") == 3
    messages = [(r.getMessage(), bool(r.exc_info)) for r in caplog.records]
    # A bug gets a traceback; the API server's trouble does not.
    assert messages == [("task failed; restarting it", True), ("task failed; restarting it", False),
                        ("task returned on its own; restarting it", False)]
    assert all(later > earlier for earlier, later in zip(runs, runs[1:]))  # backed off between runs


async def test_backoff_grows_while_failures_are_quick():
    metrics = Metrics()
    runs = []

    async def body():
        runs.append(asyncio.get_running_loop().time())
        raise RuntimeError("again")

    task = asyncio.create_task(supervise("quick", body, metrics, backoff_max=0.4))
    await asyncio.sleep(1.5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    gaps = [b - a for a, b in zip(runs, runs[1:])]
    assert 3 <= len(runs) <= 8, runs  # 0.25-0.5 s, then up to 0.4 s each: never a busy loop
    assert min(gaps) >= 0.2


async def test_spawned_task_failures_are_logged_and_counted(caplog):
    metrics = Metrics()
    supervisor = Supervisor(metrics)

    async def fails():
        raise ValueError("lost")

    with caplog.at_level(logging.ERROR, logger="spot_extender"):
        task = supervisor.spawn(fails(), name="evict-x", loop="drain")
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0)
    assert errors(metrics, "drain") == 1
    assert [r.task for r in caplog.records if r.getMessage() == "task failed"] == ["evict-x"]


async def test_stop_cancels_everything_and_reports_stopped_tasks():
    supervisor = Supervisor(Metrics())
    forever = supervisor.start("forever", lambda: asyncio.sleep(3600))
    spawned = supervisor.spawn(asyncio.sleep(3600), name="one", loop="x")
    await asyncio.sleep(0)
    assert supervisor.stopped() == []
    await supervisor.stop()
    assert forever.cancelled() and spawned.cancelled()


async def test_a_wake_cuts_a_long_backoff_short():
    metrics = Metrics()
    wake = asyncio.Event()
    runs = []

    async def body():
        runs.append(1)
        raise TransportError("the API server is away")

    task = asyncio.create_task(supervise("watch-Node", body, metrics, backoff_max=3600, wake=wake,
                                         backoff_initial=600))
    await eventually(lambda: len(runs) == 1)
    await asyncio.sleep(0.05)
    assert len(runs) == 1  # sitting out a backoff of at least 300 s
    wake.set()
    wake.clear()
    await eventually(lambda: len(runs) == 2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
