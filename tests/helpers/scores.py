"""Scores node by node, from policy.NodeScores' two small tables: what the tests compare
the extender's answers against."""

from __future__ import annotations

from typing import Mapping, Sequence


def node_scores(scores, names: Sequence[str], pool_of: Mapping) -> dict[str, int]:
    return {n: scores.by_node.get(n, scores.by_pool[pool_of.get(n)]) for n in names}
