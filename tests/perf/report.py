"""Where benchmark results go: build/bench/<benchmark>.json, its plot beside it, and
the machine and versions they were measured on."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from tests.cluster.controlplane import pinned

OUT_DIR = Path(__file__).resolve().parents[2] / "build" / "bench"


ROOT = Path(__file__).resolve().parents[2]
# The harness's kube-scheduler keeps percentageOfNodesToScore unset, as it ships
# (tests/cluster/controlplane.py): the figures depend on it.
SCHEDULER_SAMPLING = "adaptive"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def revision() -> dict:
    """The commit the run was made from, and whether the checkout differed from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()

    return {"commit": git("rev-parse", "--short=7", "HEAD") or "unknown",
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def environment() -> dict:
    meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gb": round(int(meminfo[1]) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "kubernetes": pinned("K8S_VERSION"),
        "etcd": pinned("ETCD_VERSION"),
        "kwok": pinned("KWOK_VERSION"),
        "scheduler_sampling": SCHEDULER_SAMPLING,
    }


def publish(report: dict, out_dir: str | Path, draw: Callable[[dict, Path], None] | None = None) -> Path:
    """Write `report` (its "benchmark" names the file) and, given `draw`, its PNG."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {**report, **revision(), "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "environment": environment()}
    path = out_dir / f"{report['benchmark']}.json"
    path.write_text(json.dumps(report, indent=2))
    if draw is not None:
        draw(report, path.with_suffix(".png"))
    print(f"written to {path}" + (f" and {path.with_suffix('.png').name}" if draw else ""), flush=True)
    return path
