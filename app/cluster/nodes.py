"""Node facts: capacity class, capacity pool and going-away signals, from a raw Node dict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ..core.fields import condition_true, unix_time
from ..core.settings import Settings
from ..core.vocabulary import INSTANCE_TYPE_LABELS, ZONE_LABELS, Capacity
from .constraints import BLOCKING_EFFECTS, Taint
from .resources import cpu_millis, extended_amounts, memory_bytes, pod_count

NOT_READY = "node is not Ready"  # the going-away reason of a node whose Ready condition is not True
DELETING = "node is being deleted"



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
    # A going-away node's notice: seconds from its signal to its end (0: it goes now), and
    # when the signal came (Unix time) if its taint says so (timeAdded).
    notice: float = 0.0
    signalled_at: float | None = None
    pods: int = 0  # allocatable pods, 0 for no limit known
    extended: tuple[tuple[str, int], ...] = ()  # allocatable GPUs and such (resources.extended_amounts)

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
        self.notices = settings.drain_notices

    def capacity(self, labels: dict) -> str:
        for key, value, cls in self.rules:
            if labels.get(key) == value:
                return cls
        return Capacity.UNKNOWN

    def capacity_key(self, labels: Mapping[str, str]) -> str | None:
        """The label key whose value classified the node, None if none did."""
        for key, value, _ in self.rules:
            if labels.get(key) == value:
                return key
        return None

    def effective(self, capacity: str) -> str:
        return self.unknown_as if capacity == Capacity.UNKNOWN else capacity

    def pool(self, capacity: str, labels: dict) -> Pool:
        return Pool(self.effective(capacity), _first(labels, INSTANCE_TYPE_LABELS), _first(labels, ZONE_LABELS))

    def unknown_node(self, name: str) -> NodeRecord:
        """A node named in a request but not (yet) in the index."""
        return NodeRecord(name, Capacity.UNKNOWN, Pool(self.unknown_as, "", ""), None)

    def going_away(self, node: dict) -> str | None:
        meta = node.get("metadata") or {}
        spec = node.get("spec") or {}
        if self.check_deleting and meta.get("deletionTimestamp"):
            return DELETING
        if self.check_taints:
            keys = [key for key, _ in self._going_away_taints(spec)]
            if keys:
                # The taint that gives a notice names the reason: handlers cordon as they taint.
                return f"node has taint {next((k for k in keys if k in self.notices), keys[0])}"
        if self.check_cordon and spec.get("unschedulable"):
            return "node is cordoned"
        if self.check_ready and not condition_true(node.get("status"), "Ready"):
            return NOT_READY
        return None

    def notice(self, node: dict) -> tuple[float, float | None]:
        """(seconds, signalled at) of a going-away node: the shortest notice among its taints
        that give one. A cordon, and its node.kubernetes.io/unschedulable taint, shorten
        nothing: termination handlers cordon as they taint. Deletion means now."""
        if self.check_deleting and (node.get("metadata") or {}).get("deletionTimestamp"):
            return 0.0, None
        if not self.check_taints:
            return 0.0, None
        noticed = [(self.notices[key], unix_time(taint.get("timeAdded")))
                   for key, taint in self._going_away_taints(node.get("spec") or {}) if key in self.notices]
        return min(noticed, key=lambda n: n[0]) if noticed else (0.0, None)

    def _going_away_taints(self, spec: dict) -> list[tuple[str, dict]]:
        return [(taint["key"], taint) for taint in spec.get("taints") or ()
                if isinstance(taint, dict) and isinstance(taint.get("key"), str) and taint["key"] in self.taints]

    def record(self, node: dict) -> NodeRecord:
        meta = node.get("metadata") or {}
        labels = meta.get("labels") or {}
        capacity = self.capacity(labels)
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        going_away = self.going_away(node)
        notice, signalled_at = self.notice(node) if going_away else (0.0, None)
        return NodeRecord(
            meta.get("name", ""),
            capacity,
            self.pool(capacity, labels),
            going_away,
            cpu_millis(allocatable),
            memory_bytes(allocatable),
            labels,
            _blocking_taints((node.get("spec") or {}).get("taints")),
            notice,
            signalled_at,
            pod_count(allocatable),
            extended_amounts(allocatable),
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
