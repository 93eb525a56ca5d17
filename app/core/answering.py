"""Calls being answered right now. The scheduler's and kube-apiserver's calls share the
event loop with the watches; while any call is open, a watch hands the loop back after
every event rather than after a slice, so the call waits for one event, not a slice."""

from __future__ import annotations


class Answering:
    def __init__(self) -> None:
        self.open = 0

    def __enter__(self) -> "Answering":
        self.open += 1
        return self

    def __exit__(self, *exc) -> None:
        self.open -= 1
