"""What the index knows of one call's candidate nodes: which are going away, which are
on-demand, and each one's capacity pool. In full Nodes mode the nodes kube-scheduler
sent are classified instead: they are the freshest view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Container, Mapping

from ..cluster.index import Index
from ..cluster.nodes import Pool
from ..core import logs
from ..core.metrics import Metrics
from ..core.vocabulary import Capacity
from .wire import ExtenderArgs

log = logs.get("extender")


@dataclass(frozen=True, slots=True)
class NodeFacts:
    going_away: Mapping[str, str]
    on_demand: Container[str]
    pool_of: Mapping[str, Pool]


class _UnknownAsOnDemand:
    """`in` over the index's on-demand names plus names the index has never seen."""

    __slots__ = ("known", "unknown")

    def __init__(self, known: Container[str], unknown: set[str]):
        self.known, self.unknown = known, unknown

    def __contains__(self, name: object) -> bool:
        return name in self.known or name in self.unknown


class CandidateFacts:
    def __init__(self, index: Index, metrics: Metrics):
        self.index = index
        self.metrics = metrics
        self.unknown_pool = index.classifier.unknown_node("").pool
        self._warned = logs.Once()

    def of(self, args: ExtenderArgs, check_unknown: bool = True) -> NodeFacts:
        """Going-away reasons, on-demand membership and pools for the candidates.

        Only a filter for a pod bound for on-demand checks for names the index has not
        seen (5000 lookups cost 0.3 ms): anywhere else an unknown name passes or scores
        as the unknown class all the same.
        """
        if args.nodes is not None:
            records = [self.index.classifier.record(n) for n in args.nodes]
            return NodeFacts(
                {r.name: r.going_away for r in records if r.going_away},
                {r.name for r in records if r.effective == Capacity.ON_DEMAND},
                {r.name: r.pool for r in records},
            )
        index = self.index
        names = args.node_names
        on_demand: Container[str] = index.on_demand_nodes()
        pools = index.pools()
        # Counting in C first avoids building a set of every name in the common case.
        if check_unknown and sum(map(pools.__contains__, names)) < len(names):
            unknown = set(names).difference(index.node_names())
            self._note_unknown(unknown)
            if self.unknown_pool.capacity == Capacity.ON_DEMAND:
                on_demand = _UnknownAsOnDemand(on_demand, unknown)
        return NodeFacts(index.going_away(), on_demand, pools)

    def _note_unknown(self, names: set[str]) -> None:
        self.metrics.unknown_nodes.inc(len(names))
        new = sorted(n for n in names if self._warned.first(("unknown-node", n)))
        if new:
            log.warning(
                "candidate nodes not in the index, treated as unknown class",
                extra={"nodes": new[:20], "count": len(new), "treated_as": self.unknown_pool.capacity},
            )
