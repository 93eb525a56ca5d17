"""What both demos do around their acts: stop cleanly on Ctrl-C or SIGTERM, print the
components' logs when an act fails with an error, and always tear the cluster down."""

from __future__ import annotations

import signal
from typing import Callable

from tests.cluster.controlplane import ControlPlane


class Stopped(KeyboardInterrupt):
    def __init__(self, signum: int):
        super().__init__()
        self.signum = signum


def run(acts: Callable[[], int], cluster: ControlPlane, cleanup: Callable[[], None]) -> int:
    """acts()'s exit code; 128+signal when interrupted. cleanup() runs whatever happens,
    a second signal ignored so it cannot cut the teardown short."""
    def on_signal(signum, _frame):
        raise Stopped(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        return acts()
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Stopped) else signal.SIGINT
        print(f"\n==> interrupted ({signal.Signals(signum).name}), tearing down", flush=True)
        return 128 + signum
    except Exception:
        if any(c.running for c in cluster.components.values()):  # a failed start has dumped them already
            print(cluster.dump_logs(20), flush=True)
        raise
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cleanup()
