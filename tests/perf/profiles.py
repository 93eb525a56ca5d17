"""CPU profiles of the control plane's processes during one benchmark window.

Go components serve pprof (`/debug/pprof/profile?seconds=N`, on by default); spot-extender
is sampled from outside with py-spy, non-blocking so it is not paused. Each profile is
saved raw beside the report and summarised as the functions with the most self time.
"""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from pathlib import Path

TOP = 12  # functions per process in the summary


def go_profile(url: str, token: str, seconds: int, out: Path) -> None:
    """Fetch a pprof CPU profile (blocks for `seconds`)."""
    req = urllib.request.Request(f"{url}/debug/pprof/profile?seconds={seconds}")
    req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, context=ssl._create_unverified_context(), timeout=seconds + 30) as resp:
        out.write_bytes(resp.read())


def go_top(profile: Path) -> list[dict]:
    """The functions with the most self time, from `go tool pprof -top`."""
    go = shutil.which("go")
    if go is None:
        return [{"function": "go tool pprof unavailable: no go on PATH", "self_percent": 0.0}]
    text = subprocess.run([go, "tool", "pprof", "-top", f"-nodecount={TOP}", str(profile)], capture_output=True,
                          text=True, timeout=120, check=True).stdout
    # "   flat  flat%   sum%        cum   cum%" rows: 120ms 10.5% 10.5% 300ms 26.3% runtime.mallocgc
    row = re.compile(r"^\s*\S+\s+([\d.]+)%\s+[\d.]+%\s+\S+\s+[\d.]+%\s+(.+)$")
    return [{"function": m[2].strip(), "self_percent": float(m[1])} for m in map(row.match, text.splitlines()) if m]


def py_profile(pid: int, seconds: int, out: Path) -> None:
    """Sample a Python process with py-spy as collapsed stacks (blocks for `seconds`). Only
    samples holding the GIL count (--gil): the event loop waiting in epoll is not CPU."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    subprocess.run([spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200", "--nonblocking",
                    "--gil", "--format", "raw", "--output", str(out)], capture_output=True, timeout=seconds + 60,
                   check=True)


def py_top(collapsed: Path) -> list[dict]:
    """Self time per leaf function (line numbers dropped), from py-spy's collapsed stacks."""
    leaves: Counter[str] = Counter()
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            leaves[re.sub(r":\d+\)$", ")", stack.rsplit(";", 1)[-1])] += int(count)
    total = sum(leaves.values()) or 1
    return [{"function": name, "self_percent": round(100 * n / total, 1)} for name, n in leaves.most_common(TOP)]


class Profiler:
    """Profiles several processes at once over the same window, each in a thread."""

    def __init__(self, directory: Path, prefix: str, seconds: int):
        self.directory, self.prefix, self.seconds = directory, prefix, seconds
        directory.mkdir(parents=True, exist_ok=True)
        self.threads: list[threading.Thread] = []
        self.results: list[dict] = []

    def _run(self, process: str, take, summarise, path: Path) -> None:
        try:
            take(path)
            top = summarise(path)
        except (OSError, subprocess.SubprocessError) as exc:  # a missing profile is reported, not fatal
            top = [{"function": f"no profile: {exc}"[:200], "self_percent": 0.0}]
        self.results.append({"process": process, "seconds": self.seconds, "file": path.name, "top": top})

    def go(self, process: str, url: str, token: str) -> None:
        path = self.directory / f"{self.prefix}-{process}.pb.gz"
        self._start(process, lambda p: go_profile(url, token, self.seconds, p), go_top, path)

    def python(self, process: str, pid: int) -> None:
        path = self.directory / f"{self.prefix}-{process}.txt"
        self._start(process, lambda p: py_profile(pid, self.seconds, p), py_top, path)

    def _start(self, process: str, take, summarise, path: Path) -> None:
        thread = threading.Thread(target=self._run, args=(process, take, summarise, path), daemon=True)
        thread.start()
        self.threads.append(thread)

    def wait(self) -> list[dict]:
        for thread in self.threads:
            thread.join(self.seconds + 180)
        return sorted(self.results, key=lambda r: r["process"])
