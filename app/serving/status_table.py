"""`spot-extender status` output: workload states (status.py's WorkloadState) as a table
or JSON, a summary line, and the exit code. Pure: the command fetches the states."""

from __future__ import annotations

from typing import Sequence

from .fleet import Totals, totals
from .status import WorkloadState

ALL_FLOORS_MET, SOME_FLOOR_UNMET = 0, 1

COLUMNS = ("KIND", "NAMESPACE/NAME", "R", "K", "WHY", "FLOOR-ROLE", "SPOT-ROLE", "ON-DEMAND", "SPOT", "FLOOR",
           "LAST ACTION")


def select(states: Sequence[WorkloadState], namespace: str | None) -> list[WorkloadState]:
    return [s for s in states if namespace is None or s.namespace == namespace]


def last_action(state: WorkloadState) -> str:
    """A surge in progress (every replica sees it); else what the leader's controller is
    doing, or last said it would not do; '-' when the states came from the cluster
    directly or from a replica that is not the leader."""
    controller = state.controller
    if state.surge_pods:
        return f"surge: {state.surge_ready}/{state.surge_pods} Ready"
    if controller is None:
        return "-"
    if controller.moving is not None:
        return f"moving: {controller.moving.cause}"
    if controller.failed_moves:
        return (f"backing off after {controller.failed_moves} failed move(s), next in "
                f"{controller.next_move_in_seconds:.0f}s: {controller.last_failure or '?'}")
    if controller.last_skip:
        return f"skipped: {controller.last_skip}"
    return "none"


def row(state: WorkloadState) -> list[str]:
    why = state.floor_source + (f" (clamped: {state.floor_clamp})" if state.floor_clamp else "")
    return [
        state.kind, f"{state.namespace}/{state.name}", str(state.replicas), str(state.floor), why,
        str(state.floor_role_pods), str(state.spot_role_pods), str(state.on_demand), str(state.spot),
        "met" if state.floor_met else "UNMET", last_action(state),
    ]


def table(states: Sequence[WorkloadState]) -> str:
    rows = [list(COLUMNS), *map(row, states)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)


def summary(t: Totals, spot_price_ratio: float) -> dict:
    """Spot share of what the floors allow, and the hourly cost in on-demand replica-hours:
    an all-on-demand fleet costs one per replica, a spot replica spot_price_ratio of one."""
    placed = t.on_demand + t.spot
    cost = t.on_demand + t.spot * spot_price_ratio
    return {
        "workloads": t.workloads, "floorsUnmet": t.floors_unmet, "onDemand": t.on_demand, "spot": t.spot,
        "spotAllowed": t.spot_allowed, "spotShare": t.spot_share, "spotPriceRatio": spot_price_ratio,
        "hourlyCost": round(cost, 3), "hourlyCostAllOnDemand": placed,
        "savingsRatio": t.savings_ratio,
    }


def summary_line(s: dict) -> str:
    share = f"{s['spotShare']:.2f}" if s["spotShare"] is not None else "n/a (the floors allow no spot)"
    savings = f", {s['savingsRatio']:.0%} saved" if s["savingsRatio"] is not None else ""
    return (f"{s['workloads']} workloads, {s['floorsUnmet']} below their floor; spot share of what the floors "
            f"allow: {share} ({s['spot']} of {s['spotAllowed']}); estimated hourly cost: {s['hourlyCost']:g} "
            f"on-demand replica-hours against {s['hourlyCostAllOnDemand']} all on on-demand{savings} "
            f"(spot at {s['spotPriceRatio']:g} x on-demand)")


def report(states: Sequence[WorkloadState], spot_price_ratio: float) -> tuple[dict, int]:
    """The JSON document (each workload as /debug/workloads shows it) and the exit code: 0
    when every floor is met."""
    s = summary(totals(states, spot_price_ratio), spot_price_ratio)
    document = {"workloads": [state.to_json() for state in states], "summary": s}
    return document, ALL_FLOORS_MET if s["floorsUnmet"] == 0 else SOME_FLOOR_UNMET
