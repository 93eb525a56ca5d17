"""The node table: pools, classes, going-away nodes and their deadlines, and the
generations that tell caches when what they derived from nodes is stale."""

from spot_extender.cluster.node_table import NodeTable
from spot_extender.cluster.nodes import NodeClassifier
from spot_extender.core.settings import Settings
from tests.helpers import objects as f

ITN = {"key": "aws-node-termination-handler/spot-itn", "effect": "NoSchedule"}  # a 120 s notice


class Nodes:
    """A NodeTable fed raw Node dicts, as the index feeds it."""

    def __init__(self, settings: Settings | None = None, **clocks):
        self.classifier = NodeClassifier(settings or Settings())
        self.table = NodeTable(self.classifier, **clocks)

    def put(self, raw: dict) -> bool:
        return self.table.put(self.classifier.record(raw))

    def drop(self, name: str) -> bool:
        return self.table.drop(name)

    def deadline(self, name: str) -> float | None:
        return self.table.deadline(name)

    def deadlines(self) -> dict[str, float]:
        return {name: self.table.deadline(name) for name in self.table.going_away()}


def test_a_pool_change_is_a_new_generation_and_a_taint_a_new_placement_generation():
    nodes = Nodes()
    assert nodes.put(f.node("s1", "spot")) is True  # new: pods on it are counted from now
    generation, placement = nodes.table.generation, nodes.table.placement_generation
    assert nodes.put(f.node("s1", "spot")) is False  # the same node again: nothing derived is stale
    assert (nodes.table.generation, nodes.table.placement_generation) == (generation, placement)
    assert nodes.put(f.node("s1", "spot", taints=[{"key": "gpu", "effect": "NoSchedule"}])) is False
    assert (nodes.table.generation, nodes.table.placement_generation) == (generation, placement + 1)
    assert nodes.put(f.node("s1", "on-demand")) is True  # its pool changed: its pods count elsewhere
    assert nodes.table.generation == generation + 1 and list(nodes.table.on_demand()) == ["s1"]
    assert nodes.drop("s1") is True and nodes.drop("s1") is False
    assert len(nodes.table) == 0 and not nodes.table.on_demand() and "s1" not in nodes.table.pools()


def test_capacity_keys_and_autoscaled_nodes_are_counted_while_a_node_has_them():
    nodes = Nodes()
    nodes.put(f.node("k1", None, labels={"karpenter.sh/capacity-type": "spot", "karpenter.sh/nodepool": "default"}))
    nodes.put(f.node("k2", None, labels={"karpenter.sh/capacity-type": "on-demand"}))
    nodes.put(f.node("e1", None, labels={"eks.amazonaws.com/capacityType": "SPOT"}))
    assert nodes.table.capacity_keys() == {"karpenter.sh/capacity-type", "eks.amazonaws.com/capacityType"}
    assert nodes.table.autoscaled == 1
    nodes.drop("k1")
    nodes.put(f.node("k2", None, labels={"eks.amazonaws.com/capacityType": "ON_DEMAND"}))  # relabelled
    assert nodes.table.capacity_keys() == {"eks.amazonaws.com/capacityType"} and nodes.table.autoscaled == 0


def test_going_away_and_back():
    nodes = Nodes(clock=lambda: 10.0)
    nodes.put(f.node("s1", taints=[ITN]))
    assert dict(nodes.table.going_away()) == {"s1": "node has taint aws-node-termination-handler/spot-itn"}
    assert nodes.deadline("s1") == 130.0
    nodes.put(f.node("s1"))  # the taint went: not going away, and no deadline is kept
    assert not nodes.table.going_away() and nodes.deadline("s1") is None


def test_going_away_deadlines_run_from_first_sight_and_never_grow():
    clock, wall = [100.0], [1_000_000.0]
    nodes = Nodes(clock=lambda: clock[0], wall=lambda: wall[0])
    nodes.put(f.node("s1", taints=[ITN]))
    assert nodes.deadlines() == {"s1": 220.0}
    clock[0] += 50
    nodes.put(f.node("s1", taints=[ITN], unschedulable=True))  # a later event: same deadline
    nodes.put(f.node("s1", taints=[ITN]))  # a re-list too
    assert nodes.deadlines() == {"s1": 220.0}
    nodes.put(f.node("s1", taints=[ITN], deleting=True))  # deletion: now
    assert nodes.deadlines() == {"s1": 150.0}
    nodes.put(f.node("s1"))
    assert nodes.deadlines() == {}
    # A taint that says when it came (timeAdded) counts from then, at most the whole notice back.
    nodes.put(f.node("s2", taints=[{**ITN, "timeAdded": "1970-01-12T13:46:10Z"}]))  # 30 s ago
    nodes.put(f.node("s3", taints=[{**ITN, "timeAdded": "1970-01-01T00:00:00Z"}]))
    assert nodes.deadlines() == {"s2": 150.0 + 90, "s3": 150.0}
    nodes.drop("s2")
    assert nodes.deadline("s2") is None


def test_a_cordon_before_the_notice_taint_gets_the_notice_as_the_reverse_order_does():
    clock = [100.0]
    nodes = Nodes(clock=lambda: clock[0], wall=lambda: 1_000_000.0)
    nodes.put(f.node("a", unschedulable=True))  # cordon, then taint
    nodes.put(f.node("b", taints=[ITN]))  # taint, then cordon
    assert nodes.deadlines() == {"a": 100.0, "b": 220.0}
    clock[0] += 1
    nodes.put(f.node("a", taints=[ITN], unschedulable=True))
    nodes.put(f.node("b", taints=[ITN], unschedulable=True))
    assert nodes.deadlines() == {"a": 221.0, "b": 220.0}
    # A deletion or a node NotReady means now, and a notice taint after it changes nothing.
    nodes.put(f.node("c", deleting=True))
    nodes.put(f.node("d", ready=False))
    clock[0] += 1
    nodes.put(f.node("c", taints=[ITN], deleting=True))
    nodes.put(f.node("d", taints=[ITN], ready=False))
    assert (nodes.deadline("c"), nodes.deadline("d")) == (101.0, 101.0)
    # And a notice once given is never lengthened by another: the taint again, later.
    clock[0] += 5
    nodes.put(f.node("a", taints=[ITN]))
    assert nodes.deadline("a") == 221.0


