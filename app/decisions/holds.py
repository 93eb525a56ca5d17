"""Floor holds: how long a floor pod is kept off spot while kube-scheduler's sample of
nodes leaves out an on-demand node that could take it.

kube-scheduler hands an extender only the first numFeasibleNodesToFind feasible nodes,
from a start index that moves on with every attempt; a pod rejected by the extender is
retried on the next cluster event, backing off from 1 s to 10 s. So a retry soon sees
other nodes, and one held a while sees them all. Kept in memory per replica: a replica
that never saw the pod starts its own hold, so several replicas hold a pod at most a few
retries longer than one would.
"""

from __future__ import annotations

import time
from typing import Callable

# How long a pod's hold is remembered after it began: past its end the pod falls back to
# spot, and a pod still rejected this much later (it never scheduled) may be held anew.
REMEMBER_FOR = 600.0


class FloorHolds:
    def __init__(self, hold: float, clock: Callable[[], float] = time.monotonic):
        self.hold = hold
        self.clock = clock
        self._since: dict[str, float] = {}  # pod uid -> when its hold began, oldest first
        self._expired: set[str] = set()

    def __len__(self) -> int:
        return len(self._since)

    def left(self, uid: str) -> tuple[float, bool]:
        """(seconds of the pod's hold left, whether this call began it)."""
        now = self.clock()
        self._forget_old(now)
        since = self._since.get(uid)
        if since is None:
            self._since[uid] = now
            return self.hold, True
        return self.hold - (now - since), False

    def expire(self, uid: str) -> bool:
        """Mark the pod's hold as run out: True the first time."""
        if uid in self._expired or uid not in self._since:
            return False
        self._expired.add(uid)
        return True

    def end(self, uid: str) -> bool:
        """The pod got an on-demand candidate: True if it was held and its hold had not run out."""
        since = self._since.pop(uid, None)
        expired = uid in self._expired
        self._expired.discard(uid)
        return since is not None and not expired

    def _forget_old(self, now: float) -> None:
        horizon = now - self.hold - REMEMBER_FOR
        while self._since:
            uid, since = next(iter(self._since.items()))
            if since > horizon:
                return
            del self._since[uid]
            self._expired.discard(uid)
