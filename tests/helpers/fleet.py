"""The end-to-end session's nodes, and what tests do to them and check against them."""

from __future__ import annotations

import math
from collections import Counter

from tests.cluster.api import Api
from tests.helpers.kube import Placement
from tests.helpers.objects import RECLAIM_TAINT, fake_node

# Three spot pools of two nodes each, across two zones, and three on-demand nodes.
SPOT_NODES = [
    ("spot-m5-a-1", "zone-a", "m5.large"), ("spot-m5-a-2", "zone-a", "m5.large"),
    ("spot-m5-b-1", "zone-b", "m5.large"), ("spot-m5-b-2", "zone-b", "m5.large"),
    ("spot-c5-a-1", "zone-a", "c5.large"), ("spot-c5-a-2", "zone-a", "c5.large"),
]
ON_DEMAND_NODES = [("od-a-1", "zone-a", "m5.large"), ("od-b-1", "zone-b", "m5.large"), ("od-a-2", "zone-a", "m5.large")]
SPOT_POOLS = {(z, t) for _, z, t in SPOT_NODES}


def spot_nodes() -> list[dict]:
    return [fake_node(n, "spot", z, t) for n, z, t in SPOT_NODES]


def on_demand_nodes() -> list[dict]:
    return [fake_node(n, "on-demand", z, t) for n, z, t in ON_DEMAND_NODES]


def taint_spot(api: Api, taint: dict | None = RECLAIM_TAINT) -> None:
    """Give every spot node this taint as its only one, or no taint with None."""
    for name, _, _ in SPOT_NODES:
        api.merge_patch(f"/api/v1/nodes/{name}", {"spec": {"taints": [taint] if taint else None}})


def assert_spread(spot: list[Placement]) -> None:
    """No spot node and no spot pool holds more than its even share, rounded up."""
    per_node = Counter(p.node for p in spot)
    per_pool = Counter(p.pool for p in spot)
    assert max(per_node.values()) <= math.ceil(len(spot) / len(SPOT_NODES)), per_node
    assert max(per_pool.values()) <= math.ceil(len(spot) / len(SPOT_POOLS)), per_pool
