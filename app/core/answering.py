"""Calls being answered right now, counted from when their body is in. The scheduler's
and kube-apiserver's calls share the event loop with the watches; while any is being
answered, a watch hands the loop back after every event rather than after a slice, so
the call waits for one event, not a slice. A call waiting for the watch to confirm a pod
(at most --webhook-owner-wait or the filter's confirm wait) still counts: the watch then
goes on one event per turn of the loop."""

from __future__ import annotations


class Answering:
    def __init__(self) -> None:
        self.open = 0

    def __enter__(self) -> "Answering":
        self.open += 1
        return self

    def __exit__(self, *exc) -> None:
        self.open -= 1
