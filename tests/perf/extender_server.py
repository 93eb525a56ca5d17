"""The real extender app over a synthetic index, for the latency benchmark.

Run as a child process so its RSS is the extender's alone."""

from __future__ import annotations

import argparse
import gc
import sys

from aiohttp import web

from app.cli import build
from app.server import build_app
from app.settings import Settings
from tests.perf.synthetic import populate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=50_000)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = Settings(host="127.0.0.1", port=args.port, log_level="warning")
    index, extender, metrics = build(settings)
    populate(index, args.nodes, args.pods)
    gc.freeze()  # as `serve` does once the initial lists are in
    print("ready", flush=True)
    web.run_app(
        build_app(extender, metrics, settings), host="127.0.0.1", port=args.port, access_log=None, print=None
    )


if __name__ == "__main__":
    sys.exit(main())
