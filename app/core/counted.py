"""Tables that keep no empty entries: a count that reaches zero, or a set of members left
empty, is deleted, so tables keyed by names that churn (pods, groups) do not grow."""

from __future__ import annotations

from collections import Counter
from typing import Hashable


def add(counter: Counter, key: Hashable, delta: int) -> None:
    """Change a count; at zero (or below) its entry goes."""
    value = counter[key] + delta  # a Counter reads a missing key as 0 without storing it
    if value > 0:
        counter[key] = value
    elif key in counter:
        del counter[key]


def discard_member(table: dict, key: Hashable, member: Hashable) -> None:
    """Take member out of the set at key; an emptied set goes."""
    members = table.get(key)
    if members is not None:
        members.discard(member)
        if not members:
            del table[key]
