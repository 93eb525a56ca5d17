"""Markers (app/controller/markers.py): a marker is written through the Writer, and `seen`
answers True once this replica's index shows it (after peers had a moment), False if it
does not within SEEN_TIMEOUT."""

import asyncio

from spot_extender.cluster.records import GroupKey
from spot_extender.controller import markers
from spot_extender.controller.markers import Markers
from spot_extender.core.vocabulary import ANNOTATION_FLOOR_FALLBACK, ANNOTATION_SPOT_SEEK
from tests.helpers import objects as f
from tests.helpers.controller import deploy, setup

WEB = GroupKey("ReplicaSet", "default", "web-1")


class StubWriter:
    """Records what it is asked to annotate, and answers `written`."""

    def __init__(self, written: bool):
        self.written = written
        self.calls: list[tuple] = []

    async def annotate(self, record, annotation, value, loop):
        self.calls.append((record, annotation, value, loop))
        return self.written


def marked(index, value):
    """The watch shows web-1 with the floor-fallback marker."""
    rs = f.replicaset("web-1", "web", 1)
    rs["metadata"]["annotations"][ANNOTATION_FLOOR_FALLBACK] = value
    index.apply("ReplicaSet", "MODIFIED", rs)


def falls_back(record):
    return record.floor_fallback is not None


async def test_write_delegates_to_the_writer_and_answers_as_it_does():
    _, index = setup()
    deploy(index, "web", ["s1"])
    record = index.workload(WEB)
    for written in (True, False):
        writer = StubWriter(written)
        assert await Markers(index, writer).write(record, ANNOTATION_SPOT_SEEK, None, "rebalance") is written
        assert writer.calls == [(record, ANNOTATION_SPOT_SEEK, None, "rebalance")]


async def test_seen_once_the_index_shows_the_marker_and_peers_had_a_moment(monkeypatch):
    monkeypatch.setattr(markers, "SEEN_TIMEOUT", 10.0)
    monkeypatch.setattr(markers, "PEERS_SETTLE", 0.2)
    _, index = setup()
    deploy(index, "web", ["s1"])
    loop = asyncio.get_running_loop()
    start = loop.time()
    loop.call_later(0.1, marked, index, "2026-01-01T00:01:00Z")  # the watch shows it a moment later
    assert await Markers(index, StubWriter(True)).seen(WEB, falls_back)
    assert 0.25 < loop.time() - start < 5  # 0.1 s to show it, then PEERS_SETTLE


async def test_not_seen_within_seen_timeout_is_false(monkeypatch):
    monkeypatch.setattr(markers, "SEEN_TIMEOUT", 0.2)
    monkeypatch.setattr(markers, "PEERS_SETTLE", 0.0)
    _, index = setup()
    deploy(index, "web", ["s1"])
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert not await Markers(index, StubWriter(True)).seen(WEB, falls_back)  # written, but never shown
    assert 0.15 < loop.time() - start < 5
    gone = GroupKey("ReplicaSet", "default", "gone-1")
    assert not await Markers(index, StubWriter(True)).seen(gone, lambda record: True)  # not in the index at all
