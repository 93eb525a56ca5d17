"""Groups whose unconfirmed state (admissions, in-flight holds) is not trusted for a while:
a forged call, or a create denied after admission, was found out there. Shared by
app/cluster/admitted.py and app/cluster/inflight.py; checking membership is O(1) and expiry FIFO, so a
hot path pays nothing for a long list of groups."""

from __future__ import annotations

from collections import deque
from typing import Callable, Hashable

DISTRUST_SECONDS = 300.0


class Distrust:
    def __init__(self, clock: Callable[[], float], seconds: float = DISTRUST_SECONDS):
        self.clock = clock  # read on every call: owners swap their clock in tests
        self.seconds = seconds
        self._until: dict[Hashable, float] = {}  # group -> until when
        self._ends: deque[tuple[float, Hashable]] = deque()  # one item per distrusted group

    def add(self, group: Hashable) -> None:
        """Distrust the group from now for `seconds`, extending a distrust under way."""
        until = self.clock() + self.seconds
        if group not in self._until:
            self._ends.append((until, group))  # an extension is read from _until when it comes up
        self._until[group] = until

    def __contains__(self, group: Hashable) -> bool:
        self._expire()
        until = self._until.get(group)
        return until is not None and self.clock() < until  # exact, though the queue may lag an extension

    def __len__(self) -> int:
        self._expire()
        now = self.clock()
        return sum(1 for until in self._until.values() if now < until)

    def _expire(self) -> None:
        now = self.clock()
        ends = self._ends
        while ends and ends[0][0] <= now:
            _, group = ends.popleft()
            until = self._until.get(group)
            if until is not None and until <= now:
                del self._until[group]
            elif until is not None:
                ends.append((until, group))  # extended since: FIFO order is kept to within `seconds`
