"""Whether some node of a class could take a pod now: not going away, its node selector,
required affinity and taints allowing the pod, and room for its requests. Read from the
index; the controller's moves and the extender's floor hold both ask it."""

from __future__ import annotations

from .constraints import NONE, Constraints, admits
from .index import Index
from .nodes import ON_DEMAND


def node_with_room(index: Index, capacity: str, cpu: int, memory: int, constraints: Constraints = NONE,
                   besides: str = "") -> str | None:
    """The first such node of that class other than `besides`, or None."""
    names = index.on_demand_names if capacity == ON_DEMAND else index.nodes.keys()
    for name in names:
        node = index.nodes.get(name)
        if node is None or node.effective != capacity or name == besides or name in index.going_away:
            continue
        if not admits(constraints, name, node.labels, node.taints):
            continue
        used_cpu, used_memory = index.requested.get(name, (0, 0))
        if node.cpu - used_cpu >= cpu and node.memory - used_memory >= memory:
            return name
    return None
