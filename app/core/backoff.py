"""Exponential backoff with jitter for loops that retry; jitter keeps restarting peers out of step."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, initial: float = 0.5, maximum: float = 30.0, rng: random.Random | None = None):
        self.initial = initial
        self.maximum = maximum
        self.failures = 0
        self.rng = rng or random.Random()

    def next_delay(self) -> float:
        """Wait before the next try: uniform in [c/2, c] with c = min(max, initial * 2^failures)."""
        ceiling = min(self.maximum, self.initial * (2 ** min(self.failures, 32)))
        self.failures += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0
