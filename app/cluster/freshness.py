"""How current the index is: since when each watch has been unable to reach the API
server. While one has been down longer than the idle timeout, the index may be stale, so
/readyz says not-ready (the verbs keep answering from it) and a metric shows how long."""

from __future__ import annotations

import asyncio
import time
from typing import Callable


class Freshness:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._down_since: dict[str, float] = {}
        self._all_up = asyncio.Event()
        self._all_up.set()

    def up(self, kind: str) -> None:
        """A list succeeded, or a watch stream opened or delivered something."""
        if kind in self._down_since:
            del self._down_since[kind]
            if not self._down_since:
                self._all_up.set()

    def down(self, kind: str) -> None:
        """A list or watch failed; the first failure of a run of them counts."""
        self._down_since.setdefault(kind, self.clock())
        self._all_up.clear()

    async def wait_fresh(self) -> None:
        """Until no watch is down: what a new leader waits for before it acts."""
        await self._all_up.wait()

    def down_for(self, kind: str) -> float:
        since = self._down_since.get(kind)
        return 0.0 if since is None else self.clock() - since

    def stale(self, longer_than: float) -> list[str]:
        now = self.clock()
        return sorted(kind for kind, since in self._down_since.items() if now - since > longer_than)
