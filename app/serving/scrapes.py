"""/metrics answered one encode at a time: a scrape that arrives while an encode of the same
format runs shares its result, and encodes of other formats wait their turn. /metrics needs
no credentials, so a flood of scrapes must cost one encode's CPU, not one per request.

Sharing alone does not protect the verbs: under a flood the next encode starts as soon as
the last ends, and an encode holds the GIL (prometheus_client renders text in Python) and
the event loop (the fleet's states) most of the time. So a costly encode's result is
served again for COSTLY_REUSE times what it took (at most MAX_REUSE seconds): encoding
then takes at most about 1/20 of the process's time, however many scrape. An encode
cheaper than COSTLY is never reused: small clusters always see fresh counters.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, Hashable

COSTLY = 0.05  # seconds
COSTLY_REUSE = 20.0
MAX_REUSE = 10.0  # seconds: well under any scrape interval


class SharedScrapes:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._running: dict[Hashable, asyncio.Future] = {}
        self._reusable: dict[Hashable, tuple[float, bytes]] = {}  # key -> (until when, body)
        self._one_at_a_time = asyncio.Lock()
        self.encodes = 0  # how many ran: a test counts them

    async def get(self, key: Hashable, encode: Callable[[], Awaitable[bytes]]) -> bytes:
        reusable = self._reusable.get(key)
        if reusable is not None and self.clock() < reusable[0]:
            return reusable[1]
        running = self._running.get(key)
        if running is None:
            running = self._running[key] = asyncio.ensure_future(self._encode(key, encode))
            running.add_done_callback(lambda _, key=key: self._running.pop(key, None))
        # A scrape whose client hangs up must not cancel the encode the others wait for.
        return await asyncio.shield(running)

    async def _encode(self, key: Hashable, encode: Callable[[], Awaitable[bytes]]) -> bytes:
        async with self._one_at_a_time:
            self.encodes += 1
            started = self.clock()
            body = await encode()
            took = self.clock() - started
            if took >= COSTLY:
                self._reusable[key] = (self.clock() + min(MAX_REUSE, took * COSTLY_REUSE), body)
            else:
                self._reusable.pop(key, None)
            return body
