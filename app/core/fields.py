"""Fields every API object shares, read once: RFC 3339 times and status conditions."""

from __future__ import annotations

from datetime import datetime, timezone


def unix_time(stamp) -> float | None:
    """An RFC 3339 time (a creationTimestamp, a marker's value) as Unix time; None when
    absent or malformed."""
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def seconds_between(start, end) -> float | None:
    """RFC 3339 times apart, in seconds, never below 0; None when either is absent or malformed."""
    if not isinstance(start, str) or not isinstance(end, str):
        return None
    try:
        return max(0.0, (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds())
    except (ValueError, TypeError):  # TypeError: one has a zone, the other not
        return None


def rfc3339(now: float) -> str:
    """Unix time as RFC 3339 in UTC, to the second, as the API server writes times."""
    return datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(status, kind: str) -> dict | None:
    """The condition of this type in an object's status, None when absent."""
    if not isinstance(status, dict):
        return None
    for found in status.get("conditions") or ():  # a loop, not a generator: once per node of every full-Nodes call
        if isinstance(found, dict) and found.get("type") == kind:
            return found
    return None


def condition_true(status, kind: str) -> bool:
    found = condition(status, kind)
    return found is not None and found.get("status") == "True"
