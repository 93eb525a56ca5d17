"""The one builder: every part built once from settings and linked at construction, and
one Supervisor owning every task."""

import asyncio

from spot_extender.api.kinds import WATCHED
from spot_extender.assembly import build, serving_tls
from spot_extender.core.settings import Settings


def test_every_part_is_built_once_and_linked_at_construction():
    parts = build(Settings())
    assert parts.kube.api is None  # opened by whoever runs the parts, in the event loop
    assert [r.kind for r in parts.reflectors] == [k.name for k in WATCHED]
    assert all(r.index is parts.index and r.kube is parts.kube for r in parts.reflectors)
    assert parts.elector is not None and parts.status.leadership is parts.elector
    assert parts.status.controller is parts.controller
    assert parts.extender.index is parts.webhook.index is parts.controller.index is parts.index
    assert parts.fleet in parts.metrics.registry._collector_to_names
    assert parts.tls is None and parts.certificates is None


def test_without_leader_election_there_is_no_elector_and_no_leadership_to_show():
    parts = build(Settings(leader_elect=False))
    assert parts.elector is None and parts.status.leadership is None


def test_a_self_managed_certificate_comes_with_its_rotation():
    settings = Settings(webhook_cert_secret="spot-extender-webhook-tls")
    parts = build(settings, tls=serving_tls(settings))
    assert parts.tls is not None and parts.certificates is not None and parts.certificates.tls is parts.tls


async def test_the_controllers_and_electors_tasks_belong_to_the_one_supervisor():
    parts = build(Settings())
    task = parts.controller.tasks.start("probe", lambda: asyncio.sleep(3600))
    task.cancel()  # only cancellation ends a supervised task
    await asyncio.sleep(0)
    assert "controller/probe" in parts.supervisor.stopped()
    await parts.supervisor.stop()
    assert parts.supervisor.stopped() == []
