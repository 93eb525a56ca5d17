"""Placement policy: pure functions over plain values, no I/O and no index.

Floor k: replicas that must run on on-demand so the workload survives every spot node
vanishing at once. o: its replicas already on on-demand. While o < k the pod is sent
to on-demand; once o >= k spot is preferred.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import compress, filterfalse
from operator import not_
from typing import Container, Iterable, Mapping, Sequence

from ..cluster.nodes import Pool
from ..cluster.records import PdbRecord
from ..core.vocabulary import Capacity, Placement, Role

MAX_SCORE = 10  # k8s.io/kube-scheduler extender/v1 MaxExtenderPriority
# The preferred class scores 6..10 and the other 0..4, so class always beats spread.
PREFERRED_TOP = MAX_SCORE
OTHER_TOP = 4
SPREAD_STEPS = 4
NEUTRAL_SCORE = 0



@dataclass(frozen=True, slots=True)
class Floor:
    k: int
    source: str  # why k has this value, for logs and /debug/workloads
    problems: tuple[str, ...] = ()  # annotations that were ignored, and why
    clamp: str = ""  # why k was lowered or raised to what the pods' constraints allow


def scaled(value: int | str, replicas: int) -> int | None:
    """An IntOrString ('2' or '30%') against R, rounding percentages up as the
    disruption controller does for minAvailable. None when it cannot be read."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            number = text[:-1]
            if number.isdigit():
                return math.ceil(int(number) * replicas / 100)
            return None
        if text.isdigit():
            return int(text)
    return None


def compute_floor(
    replicas: int,
    floor_annotation: str | None,
    placement_annotation: str | None,
    pdbs: Iterable[PdbRecord],
    default_floor: int,
    floor_from_max_unavailable: bool,
) -> Floor:
    problems: list[str] = []
    placement = Placement.AUTO
    if placement_annotation is not None:
        if placement_annotation in Placement.ALL:
            placement = placement_annotation
        else:
            problems.append(f"placement {placement_annotation!r} is not one of {', '.join(Placement.ALL)}")
    if placement == Placement.ON_DEMAND:
        return Floor(replicas, "placement on-demand", tuple(problems))
    if placement == Placement.SPOT:
        return Floor(0, "placement spot", tuple(problems))

    k, source = default_floor, "default"
    if floor_annotation is not None:
        value = scaled(floor_annotation, replicas)
        if value is None:
            problems.append(f"on-demand-floor {floor_annotation!r} is not a number or a percentage")
        else:
            k, source = value, "annotation"
    # A PDB states the capacity the service needs: keep it satisfiable with no spot.
    for pdb in pdbs:
        need = None
        if pdb.min_available is not None:
            need = scaled(pdb.min_available, replicas)
        elif floor_from_max_unavailable and pdb.max_unavailable is not None:
            unavailable = scaled(pdb.max_unavailable, replicas)
            need = None if unavailable is None else replicas - unavailable
        if need is not None and need > k:
            k, source = need, f"pdb {pdb.name}"
    return Floor(max(0, min(k, replicas)), source, tuple(problems))


def seeks_spot(mode: str, autoscaled_nodes: int) -> bool:
    """Whether an autoscaler adds spot nodes for pods that require spot (--seek-spot):
    auto, once some node says an autoscaler made it."""
    if mode != "auto":
        return mode == "on"
    return autoscaled_nodes > 0


def on_demand_reason(role: str, on_demand: int, floor: int) -> str | None:
    """Why a pod must go to on-demand, or None. A role written at admission decides: a floor
    pod goes to on-demand, a spot pod never has to. A pod without one (created while the
    webhook was down, or with no webhook) goes while its workload is below its floor."""
    if role == Role.FLOOR:
        return "floor-role pod"
    if role == Role.SPOT or on_demand >= floor:
        return None
    return f"on-demand floor {on_demand}/{floor}"


@dataclass(frozen=True, slots=True)
class FilterOutcome:
    passed: list[str]
    # Every refused node: preemption cannot make a spot node right for a floor pod, nor a
    # going-away node stay. (FailedNodes on nodes the in-tree filters passed would make
    # kube-scheduler run preemption for nothing: kubernetes issue 139270.)
    unresolvable: dict[str, str]
    fallback: bool  # the floor wanted on-demand but none was a candidate


def held(outcome: FilterOutcome, reason: str) -> FilterOutcome:
    """A floor hold (app/decisions/holds.py): the candidates a fallback would have passed are refused too."""
    return FilterOutcome([], {**outcome.unresolvable, **dict.fromkeys(outcome.passed, reason)}, False)


def filter_nodes(
    names: Sequence[str],
    going_away: Mapping[str, str],
    on_demand: Container[str],
    needs_on_demand: str | None,
) -> FilterOutcome:
    """Which candidates a managed pod may use.

    going_away maps names of nodes about to disappear to a reason; on_demand answers
    `name in on_demand` for nodes whose effective class is on-demand. Going-away
    nodes, and spot nodes refused to a pod that needs on-demand, go to the unresolvable
    map, so the scheduler does not preempt pods there for nothing. needs_on_demand is why the pod must go to on-demand (see
    on_demand_reason), or None when it may go anywhere.
    """
    # map/compress/fromkeys run in C, and each name is looked up once: candidate lists
    # hold thousands of names.
    unresolvable = {n: going_away[n] for n in going_away.keys() & set(names)} if going_away else {}
    alive = list(filterfalse(unresolvable.__contains__, names)) if unresolvable else list(names)
    if needs_on_demand is None:
        return FilterOutcome(alive, unresolvable, False)
    is_on_demand = list(map(on_demand.__contains__, alive))
    od_alive = list(compress(alive, is_on_demand))
    if not od_alive:
        return FilterOutcome(alive, unresolvable, bool(alive))
    refused = dict.fromkeys(compress(alive, map(not_, is_on_demand)), needs_on_demand)
    refused.update(unresolvable)
    return FilterOutcome(od_alive, refused, False)


@dataclass(frozen=True, slots=True)
class NodeScores:
    """Scores as two small tables rather than one entry per node: a score per pool,
    and scores for the few nodes whose own load sets them apart from their pool."""

    by_pool: dict  # Pool, or None for names the caller does not know -> score
    by_node: dict[str, int]


def score_nodes(
    pool_sizes: Mapping[Pool | None, int],
    candidates: Container[str],
    pool_of: Mapping[str, Pool],
    unknown_pool: Pool,
    prefer_spot: bool,
    pods_per_node: Mapping[str, int],
    pods_per_pool: Mapping[Pool, int],
) -> NodeScores:
    """Scores 0..10 for the candidates; same inputs, same scores.

    pool_sizes counts candidates per pool (None: names pool_of lacks, scored as
    unknown_pool). The preferred class scores 6..10, the other 0..4. Within a class
    a node loses a point for each replica of the workload it holds above the
    least-loaded candidate of its class, and a point for each replica its pool holds
    above the least-loaded candidate pool of its class: one spot pool reclaim takes
    as few replicas as possible, and the on-demand floor spreads over zones.
    """
    preferred = Capacity.SPOT if prefer_spot else Capacity.ON_DEMAND
    top = {True: PREFERRED_TOP, False: OTHER_TOP}
    pool_class = {pool: (pool or unknown_pool).capacity for pool in pool_sizes}

    least_pool: dict[str, int] = {}
    for pool, cls in pool_class.items():
        count = pods_per_pool.get(pool, 0)
        least_pool[cls] = min(count, least_pool.get(cls, count))
    pool_penalty = {pool: pods_per_pool.get(pool, 0) - least_pool[cls] for pool, cls in pool_class.items()}
    by_pool = {
        pool: top[cls == preferred] - min(SPREAD_STEPS, pool_penalty[pool]) for pool, cls in pool_class.items()
    }

    # Per-node spread: only candidates already holding replicas need a second look.
    loaded = {n: c for n, c in pods_per_node.items() if c and n in candidates}
    by_node: dict[str, int] = {}
    if loaded:
        candidates_per_class: dict[str, int] = {}
        for pool, size in pool_sizes.items():
            candidates_per_class[pool_class[pool]] = candidates_per_class.get(pool_class[pool], 0) + size
        loads_per_class: dict[str, list[int]] = {}
        for n, c in loaded.items():
            loads_per_class.setdefault(pool_class[pool_of.get(n)], []).append(c)
        # The least-loaded candidate holds none unless every candidate of its class is loaded.
        least_node = {
            cls: min(loads) if len(loads) >= candidates_per_class[cls] else 0 for cls, loads in loads_per_class.items()
        }
        for n, c in loaded.items():
            pool = pool_of.get(n)
            cls = pool_class[pool]
            by_node[n] = top[cls == preferred] - min(SPREAD_STEPS, pool_penalty[pool] + c - least_node[cls])
    return NodeScores(by_pool, by_node)


def favourite(scores: NodeScores, names_by_pool: Mapping[Pool | None, Sequence[str]]) -> str | None:
    """The best-scored candidate, chosen deterministically: highest score, then a node the
    index knows over one it has never seen (pool None: a node not yet watched must not win
    the floor replica on a tie), then the pool that sorts first, then the pool's first
    candidate in request order."""
    best: tuple[int, bool, str, str] | None = None
    for pool, names in names_by_pool.items():
        base = scores.by_pool[pool]
        # A pool's best member is one without a per-node score; those are few.
        unloaded = next((n for n in names if n not in scores.by_node), None)
        if unloaded is not None:
            options = [(base, unloaded)]
        else:
            options = [(scores.by_node[n], n) for n in names]
        for score, name in options:
            key = (-score, pool is None, pool or "", name)
            if best is None or key < best:
                best = key
    return best[3] if best else None


def steer(scores: NodeScores, chosen: str, chosen_pool: Pool | None) -> NodeScores:
    """Keep chosen's score and put every other candidate one point below its own.

    kube-scheduler binds asynchronously, so the index lags a burst of replicas; the
    extender records where it steered each pod, and a clear winner makes the
    scheduler actually go there rather than break a tie its own way."""
    top = scores.by_node.get(chosen, scores.by_pool[chosen_pool])
    by_pool = {pool: max(0, s - 1) for pool, s in scores.by_pool.items()}
    by_node = {name: max(0, s - 1) for name, s in scores.by_node.items()}
    by_node[chosen] = top
    return NodeScores(by_pool, by_node)
