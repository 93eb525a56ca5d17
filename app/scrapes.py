"""/metrics answered one encode at a time: a scrape that arrives while an encode of the same
format runs shares its result, and encodes of other formats wait their turn. /metrics needs
no credentials, so a flood of scrapes must cost one encode's CPU, not one per request."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Hashable


class SharedScrapes:
    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future] = {}
        self._one_at_a_time = asyncio.Lock()
        self.encodes = 0  # how many ran: a test counts them

    async def get(self, key: Hashable, encode: Callable[[], Awaitable[bytes]]) -> bytes:
        running = self._running.get(key)
        if running is None:
            running = self._running[key] = asyncio.ensure_future(self._encode(encode))
            running.add_done_callback(lambda _, key=key: self._running.pop(key, None))
        # A scrape whose client hangs up must not cancel the encode the others wait for.
        return await asyncio.shield(running)

    async def _encode(self, encode: Callable[[], Awaitable[bytes]]) -> bytes:
        async with self._one_at_a_time:
            self.encodes += 1
            return await encode()
