"""Node facts: capacity class, capacity pool and going-away signals, from a raw Node dict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from .constraints import BLOCKING_EFFECTS, Taint
from .resources import cpu_millis, memory_bytes
from .settings import Settings

SPOT = "spot"
ON_DEMAND = "on-demand"
UNKNOWN = "unknown"

NOT_READY = "node is not Ready"  # the going-away reason of a node whose Ready condition is not True

INSTANCE_TYPE_LABELS = ("node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type")
ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")


class Pool(str):
    """A capacity pool: spot capacity is reclaimed per instance type and zone.

    A str ("spot|m5.large|zone-a") rather than a tuple because CPython caches a
    string's hash: scoring counts one pool per candidate node, thousands a call.
    Label values cannot contain "|".
    """

    __slots__ = ()

    def __new__(cls, capacity: str, instance_type: str = "", zone: str = "") -> "Pool":
        return super().__new__(cls, f"{capacity}|{instance_type}|{zone}")

    @property
    def capacity(self) -> str:
        """The effective class: spot or on-demand."""
        return self.split("|", 1)[0]

    @property
    def instance_type(self) -> str:
        return self.split("|")[1]

    @property
    def zone(self) -> str:
        return self.split("|")[2]

    def __repr__(self) -> str:
        return f"Pool({self.capacity!r}, {self.instance_type!r}, {self.zone!r})"


@dataclass(frozen=True, slots=True)
class NodeRecord:
    name: str
    capacity: str  # spot, on-demand or unknown, as labelled
    pool: Pool  # pool.capacity is the effective class (unknown mapped by settings)
    going_away: str | None  # a readable reason, or None
    cpu: int = 0  # allocatable millicores
    memory: int = 0  # allocatable bytes
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()  # NoSchedule and NoExecute ones: what keeps pods off

    @property
    def effective(self) -> str:
        return self.pool.capacity


class NodeClassifier:
    """Turns raw Node dicts into NodeRecords according to the settings."""

    def __init__(self, settings: Settings):
        self.rules = settings.capacity_rules
        self.unknown_as = settings.unknown_class
        self.taints = frozenset(settings.going_away_taints)
        signals = set(settings.going_away_signals)
        self.check_taints = "taints" in signals
        self.check_cordon = "cordon" in signals
        self.check_ready = "not-ready" in signals
        self.check_deleting = "deleting" in signals

    def capacity(self, labels: dict) -> str:
        for key, value, cls in self.rules:
            if labels.get(key) == value:
                return cls
        return UNKNOWN

    def effective(self, capacity: str) -> str:
        return self.unknown_as if capacity == UNKNOWN else capacity

    def pool(self, capacity: str, labels: dict) -> Pool:
        return Pool(self.effective(capacity), _first(labels, INSTANCE_TYPE_LABELS), _first(labels, ZONE_LABELS))

    def unknown_node(self, name: str) -> NodeRecord:
        """A node named in a request but not (yet) in the index."""
        return NodeRecord(name, UNKNOWN, Pool(self.unknown_as, "", ""), None)

    def going_away(self, node: dict) -> str | None:
        meta = node.get("metadata") or {}
        spec = node.get("spec") or {}
        if self.check_deleting and meta.get("deletionTimestamp"):
            return "node is being deleted"
        if self.check_taints:
            for taint in spec.get("taints") or ():
                if isinstance(taint, dict) and taint.get("key") in self.taints:
                    return f"node has taint {taint['key']}"
        if self.check_cordon and spec.get("unschedulable"):
            return "node is cordoned"
        if self.check_ready and not _is_ready(node):
            return NOT_READY
        return None

    def record(self, node: dict) -> NodeRecord:
        meta = node.get("metadata") or {}
        labels = meta.get("labels") or {}
        capacity = self.capacity(labels)
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        return NodeRecord(
            meta.get("name", ""),
            capacity,
            self.pool(capacity, labels),
            self.going_away(node),
            cpu_millis(allocatable),
            memory_bytes(allocatable),
            labels,
            _blocking_taints((node.get("spec") or {}).get("taints")),
        )


def _blocking_taints(taints) -> tuple[Taint, ...]:
    return tuple(
        Taint(t["key"], str(t.get("value") or ""), t.get("effect"))
        for t in taints or ()
        if isinstance(t, dict) and isinstance(t.get("key"), str) and isinstance(t.get("effect"), str)
        and t["effect"] in BLOCKING_EFFECTS
    )


def _first(labels: dict, keys: tuple[str, ...]) -> str:
    for key in keys:
        value = labels.get(key)
        if value:
            return value
    return ""


def _is_ready(node: dict) -> bool:
    for cond in (node.get("status") or {}).get("conditions") or ():
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False
