"""Reading the hash-checked locks in requirements/: what tests of the release and of the
image compare against."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name


def locked(path: Path, environment: dict | None = None) -> dict[str, tuple[str, int]]:
    """name -> (pinned version, number of hashes) from a pip-compile style lock, for this
    interpreter or the marker environment given: a universal lock pins some packages per
    Python version, behind markers."""
    pins: dict[str, tuple[str, int]] = {}
    name = None
    for line in path.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$", line):
            applies = match[3] is None or Marker(match[3]).evaluate(environment)
            name = canonicalize_name(match[1]) if applies else None
            if name:
                pins[name] = (match[2], 0)
        elif name and "--hash=sha256:" in line:
            pins[name] = (pins[name][0], pins[name][1] + 1)
    return pins
