"""What every controller loop is handed: the one index, floors, writer, markers and scope,
the controller's task scope, metrics and settings."""

from __future__ import annotations

from dataclasses import dataclass

from ..cluster.index import Index
from ..core.metrics import Metrics
from ..core.settings import Settings
from ..core.supervisor import Supervisor
from ..decisions.floors import Floors
from .markers import Markers
from .scope import Scope
from .writer import Writer


@dataclass(frozen=True)
class LoopContext:
    index: Index
    floors: Floors
    writer: Writer
    markers: Markers
    scope: Scope  # the namespaces and workloads the loops may act on
    tasks: Supervisor  # the controller's task scope: ends with the term as leader
    metrics: Metrics
    settings: Settings
