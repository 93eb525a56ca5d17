"""Waiting for a condition: polled from synchronous code (a real cluster), or awaited
in an event loop (unit tests)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from tests.cluster.api import ApiError


def wait_for(check: Callable[[], Any], timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    """Poll until check() returns something truthy and return it; raise TimeoutError naming
    `what`. An ApiError or OSError from check() counts as not yet, and is named if it was last."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (ApiError, OSError) as exc:
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}"
                       + (f" (last error: {last_error})" if last_error else ""))


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> None:
    """Yield to the event loop until check() is truthy; fail the test after `timeout` seconds of loop time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)
