"""`spot-extender` with its watch loop as it was before issue 30: a stream's buffered
events applied without handing the event loop back, whatever calls wait (listed pages
still go in by chunks). The benchmarks run it as a case of their own, the "before" arm
of the same run; never shipped.

`python -m tests.perf.unsliced serve ...` takes the same arguments as `spot-extender`.
With BENCH_WATCH_ARM=slices, the watches keep their slices but do not yield after
every event while a call is open: what that part costs and buys on its own."""

from __future__ import annotations

import os
import sys

from spot_extender import cli
from spot_extender.cluster.reflector import Reflector
from spot_extender.core.answering import Answering


async def absorb_as_before(reflector: Reflector, stream) -> bool:
    delivered = False
    async for event_type, obj in stream:
        reflector._handle(event_type, obj)
        delivered = True
    return delivered


def slices_only() -> None:
    built = Reflector.__init__

    def init(self, *args, **kwargs) -> None:
        built(self, *args, **kwargs)
        self.answering = Answering()  # a counter no handler holds

    Reflector.__init__ = init


if __name__ == "__main__":
    if os.environ.get("BENCH_WATCH_ARM") == "slices":
        slices_only()
    else:
        Reflector.absorb = absorb_as_before
    sys.exit(cli.main(sys.argv[1:]))
