"""Candidate node lists grouped by capacity pool, cached between calls.

Every score is a pool's score except for the few nodes that already hold replicas of
the workload, so an answer is a handful of per-pool chunks plus a few patched
entries. Whenever kube-scheduler sends the same feasible list pod after pod (below 100
nodes it sends them all), the grouping and the encoded chunks are built once per list
rather than walked node by node on every call. Above that its sample starts where the
last one ended, so lists seldom repeat; a miss costs one walk of the list.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Mapping, Sequence

from ..cluster.nodes import Pool
from . import wire


class CandidateView:
    """One candidate list: its names per pool and encoded answer chunks."""

    __slots__ = ("names", "by_pool", "members", "_chunks")

    def __init__(self, names: Sequence[str], pool_of: Mapping[str, Pool]):
        self.names = names
        self.by_pool: dict[Pool | None, list[str]] = {}  # None: names pool_of does not know
        for name, pool in zip(names, map(pool_of.get, names)):
            self.by_pool.setdefault(pool, []).append(name)
        self.members = frozenset(names)
        self._chunks: dict[tuple[Pool | None, int], bytes] = {}

    @property
    def pool_sizes(self) -> dict[Pool | None, int]:
        return {pool: len(names) for pool, names in self.by_pool.items()}

    def priority_list(self, by_pool: Mapping[Pool | None, int], by_node: Mapping[str, int], pool_of) -> bytes:
        """The HostPriorityList: each pool's names at its score, then per-node scores patched in."""
        patches: dict[Pool | None, list[tuple[str, int]]] = {}
        for name, score in by_node.items():
            if name in self.members:
                patches.setdefault(pool_of.get(name), []).append((name, score))
        chunks = []
        for pool, names in self.by_pool.items():
            score = by_pool[pool]
            chunk = self._chunk(pool, score, names)
            for name, new_score in patches.get(pool, ()):
                if new_score != score:
                    chunk = chunk.replace(wire.host_entry(name, score), wire.host_entry(name, new_score))
            chunks.append(chunk)
        return wire.join_entries(chunks)

    def _chunk(self, pool: Pool | None, score: int, names: list[str]) -> bytes:
        key = (pool, score)
        chunk = self._chunks.get(key)
        if chunk is None:
            # pool None holds the names the index does not know: never remembered.
            chunk = self._chunks[key] = wire.encode_entries(names, score, remember=pool is not None)
        return chunk


class CandidateCache:
    """A few recent candidate lists, dropped whenever any node's pool changes. Only lists of
    nodes the index knows are kept, so the cache is bounded by size x the node count however
    many names callers send."""

    def __init__(self, size: int = 8):
        self.size = size
        self._views: OrderedDict[tuple[int, str], CandidateView] = OrderedDict()
        self._generation = -1

    def view(self, names: Sequence[str], pool_of: Mapping[str, Pool], generation: int) -> CandidateView:
        if generation != self._generation:
            self._views.clear()
            self._generation = generation
        # One joined string hashes and compares ~3x faster than a tuple of thousands of
        # fresh strings. With the count in the key, only lists holding NULs (no node
        # name does) could collide, and only with each other.
        key = (len(names), "\x00".join(names))
        view = self._views.get(key)
        if view is None:
            view = CandidateView(names, pool_of)
            if None in view.by_pool:
                return view  # names the index has not seen: answer, but do not keep
            self._views[key] = view
            if len(self._views) > self.size:
                self._views.popitem(last=False)
        else:
            self._views.move_to_end(key)
        return view
