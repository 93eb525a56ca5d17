"""Ready replicas per app, sampled from the API server: the floors the end-to-end tests
assert, the availability benchmark's timeline and the demo's monitor."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from tests.cluster.api import Api
from tests.helpers.kube import Placement, node_facts, placement


@dataclass(frozen=True)
class Sample:
    """One look at the API server."""

    t: float  # seconds since the sampler was made
    nodes: dict[str, dict]  # the nodes that exist, by name
    pods: dict[str, list[Placement]]  # each app's pods by name, terminating ones included

    def ready(self, app: str, terminating: bool = False) -> int:
        """The app's pods that are Ready on a node that exists; with `terminating`, ones
        being deleted count too while they are still Ready."""
        return sum(p.ready and (terminating or not p.terminating) for p in self.pods[app])

    def on(self, capacity: str) -> int:
        """Pods of every app, not being deleted, on existing nodes of that capacity class."""
        return sum(p.capacity == capacity and not p.terminating for pods in self.pods.values() for p in pods)


class ReadySampler:
    """Samples one namespace's apps (pods labelled app=<name>) every `interval` seconds.

    Keeps each app's fewest ready pods in `minimum` (terminating ones counted while
    Ready when `count_terminating`) and hands every sample to `on_sample`. Sample in
    the caller's thread (sample, sample_for, sample_until), or in a background thread
    between start() and stop(), which keeps errors in `errors` instead of raising them.
    """

    def __init__(self, api: Api, namespace: str, apps: list[str], interval: float = 0.5, *,
                 count_terminating: bool = False, on_sample: Callable[[Sample], None] | None = None):
        self.api, self.namespace, self.apps, self.interval = api, namespace, list(apps), interval
        self.count_terminating = count_terminating
        self.on_sample = on_sample
        self.started = time.monotonic()
        self.minimum: dict[str, int | None] = dict.fromkeys(self.apps)
        self.count = 0  # samples taken
        self.errors: list[str] = []
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> Sample:
        nodes = node_facts(self.api)
        pods: dict[str, list[Placement]] = {app: [] for app in self.apps}
        for pod in self.api.get(f"/api/v1/namespaces/{self.namespace}/pods")["items"]:
            app = pod["metadata"].get("labels", {}).get("app")
            if app in pods:
                pods[app].append(placement(pod, nodes))
        for placed in pods.values():
            placed.sort(key=lambda p: p.pod)
        sample = Sample(time.monotonic() - self.started, nodes, pods)
        for app in self.apps:
            ready, low = sample.ready(app, self.count_terminating), self.minimum[app]
            self.minimum[app] = ready if low is None else min(low, ready)
        self.count += 1
        if self.on_sample is not None:
            self.on_sample(sample)
        return sample

    def sample_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.sample()
            time.sleep(self.interval)

    def sample_until(self, done: Callable[[Sample], bool], timeout: float, stall: float | None = None) -> float | None:
        """Sample until done(sample) holds; seconds it took, or None at the timeout or,
        given `stall`, once the number of pods on spot has not changed for that long."""
        start = changed = time.monotonic()
        last = None
        while time.monotonic() - start < timeout:
            sample = self.sample()
            if done(sample):
                return round(time.monotonic() - start, 2)
            if sample.on("spot") != last:
                last, changed = sample.on("spot"), time.monotonic()
            elif stall is not None and time.monotonic() - changed > stall:
                return None
            time.sleep(self.interval)
        return None

    def start(self) -> ReadySampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._done.is_set():
            try:
                self.sample()
            except Exception as exc:  # noqa: BLE001 - recorded, and the test fails on it
                self.errors.append(repr(exc))
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(10)
