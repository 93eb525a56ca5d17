"""`spot-extender` with its watch loop as it was before issue 30: a stream's buffered
events applied without handing the event loop back, whatever calls wait (listed pages
still go in by chunks). The benchmarks run it as a case of their own, the "before" arm
of the same run; never shipped.

`python -m tests.perf.unsliced serve ...` takes the same arguments as `spot-extender`."""

from __future__ import annotations

import sys

from spot_extender import cli
from spot_extender.cluster.reflector import Reflector


async def absorb_as_before(reflector: Reflector, stream) -> bool:
    delivered = False
    async for event_type, obj in stream:
        reflector._handle(event_type, obj)
        delivered = True
    return delivered


if __name__ == "__main__":
    Reflector.absorb = absorb_as_before
    sys.exit(cli.main(sys.argv[1:]))
