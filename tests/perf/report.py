"""Where benchmark results go: build/bench/<benchmark>.json, its plot beside it, and
the machine and versions they were measured on."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Callable

from tests.cluster.controlplane import pinned

OUT_DIR = Path(__file__).resolve().parents[2] / "build" / "bench"


def environment() -> dict:
    meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(int(meminfo[1]) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "kubernetes": pinned("K8S_VERSION"),
        "etcd": pinned("ETCD_VERSION"),
        "kwok": pinned("KWOK_VERSION"),
    }


def publish(report: dict, out_dir: str | Path, draw: Callable[[dict, Path], None] | None = None) -> Path:
    """Write `report` (its "benchmark" names the file) and, given `draw`, its PNG."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {**report, "environment": environment()}
    path = out_dir / f"{report['benchmark']}.json"
    path.write_text(json.dumps(report, indent=2))
    if draw is not None:
        draw(report, path.with_suffix(".png"))
    print(f"written to {path}" + (f" and {path.with_suffix('.png').name}" if draw else ""), flush=True)
    return path
