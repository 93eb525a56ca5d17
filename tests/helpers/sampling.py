"""Ready replicas per app, sampled from the API server or counted on every watch event:
the floors the end-to-end tests assert, the availability benchmark's timeline and the
demo's monitor."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from tests.cluster.api import Api, ApiError
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


class WatchedReady:
    """Each app's fewest Ready pods in one namespace, recounted on every watch event of its
    pods and of the nodes, so a dip shorter than any polling interval still counts (a pod on
    a node that no longer exists is not Ready, as in placement())."""

    def __init__(self, api: Api, namespace: str, apps: list[str]):
        self.api, self.namespace, self.apps = api, namespace, list(apps)
        self.minimum: dict[str, int | None] = dict.fromkeys(self.apps)
        self.events = 0
        self.errors: list[str] = []
        self._pods: dict[str, dict] = {}  # by uid
        self._nodes: dict[str, dict] = {}  # by name
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> WatchedReady:
        pods = self.api.get(f"/api/v1/namespaces/{self.namespace}/pods")
        nodes = self.api.get("/api/v1/nodes")
        with self._lock:
            self._pods = {p["metadata"]["uid"]: p for p in pods["items"]}
            self._nodes = {n["metadata"]["name"]: n for n in nodes["items"]}
            self._recount()
        for path, listed, store, key in (
            (f"/api/v1/namespaces/{self.namespace}/pods", pods, self._pods, "uid"),
            ("/api/v1/nodes", nodes, self._nodes, "name"),
        ):
            version = listed["metadata"]["resourceVersion"]
            thread = threading.Thread(target=self._watch, args=(path, version, store, key), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _watch(self, path: str, version: str, store: dict, key: str) -> None:
        while not self._done.is_set():
            try:
                for event in self.api.watch(path, timeout=1, resourceVersion=version):
                    obj = event["object"]
                    if event["type"] == "ERROR":
                        raise RuntimeError(f"watch of {path}: {obj}")
                    version = obj["metadata"]["resourceVersion"]
                    with self._lock:
                        if event["type"] == "DELETED":
                            store.pop(obj["metadata"][key], None)
                        else:
                            store[obj["metadata"][key]] = obj
                        self._recount()
                    if self._done.is_set():
                        return
            except TimeoutError:  # nothing for a second: watch again from where it was
                continue
            except Exception as exc:  # noqa: BLE001 - recorded, and the test fails on it
                self.errors.append(repr(exc))
                return

    def _recount(self) -> None:
        ready = dict.fromkeys(self.apps, 0)
        for pod in self._pods.values():
            app = pod["metadata"].get("labels", {}).get("app")
            placed = placement(pod, self._nodes)
            if app in ready and placed.ready and not placed.terminating:
                ready[app] += 1
        for app, count in ready.items():
            low = self.minimum[app]
            self.minimum[app] = count if low is None else min(low, count)
        self.events += 1

    def stop(self) -> None:
        self._done.set()
        for thread in self._threads:
            thread.join(5)


class ReadyWatch:
    """One namespace's app (pods labelled app=<name>): its Ready pods not being deleted,
    counted again on every pod watch event, not sampled; the fewest seen and the count
    after each event, from start() until stop(). Errors of the stream are kept in `errors`."""

    def __init__(self, api, namespace: str, app: str, also: str = ""):
        """`also`: more of a label selector, e.g. "!spot-extender.io/surge-of" for the app's own pods."""
        self.api, self.namespace, self.app = api, namespace, app
        self.selector = f"app={app}" + (f",{also}" if also else "")
        self.ready: dict[str, bool] = {}
        self.minimum: int | None = None
        self.timeline: list[tuple[float, int]] = []  # (seconds since start, Ready count) after each event
        self.events = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "ReadyWatch":
        listed = self.api.get(f"/api/v1/namespaces/{self.namespace}/pods", labelSelector=self.selector)
        for pod in listed["items"]:
            self._see(pod)
        self.version = listed["metadata"]["resourceVersion"]
        self.minimum = self.count()
        self.began = time.monotonic()
        self.timeline.append((0.0, self.minimum))
        self._thread.start()
        return self

    def count(self) -> int:
        return sum(self.ready.values())

    def _see(self, pod: dict, deleted: bool = False) -> None:
        uid = pod["metadata"]["uid"]
        conditions = (pod.get("status") or {}).get("conditions") or []
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        if deleted:
            self.ready.pop(uid, None)
        else:
            self.ready[uid] = ready and not pod["metadata"].get("deletionTimestamp")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for event in self.api.watch(f"/api/v1/namespaces/{self.namespace}/pods", 5,
                                            labelSelector=self.selector, resourceVersion=self.version,
                                            timeoutSeconds="30"):
                    self._see(event["object"], deleted=event["type"] == "DELETED")
                    self.version = event["object"]["metadata"]["resourceVersion"]
                    self.events += 1
                    self.minimum = min(self.minimum, self.count())
                    self.timeline.append((time.monotonic() - self.began, self.count()))
                    if self._stop.is_set():
                        return
            except (OSError, ApiError) as exc:  # a read timeout ends a quiet stream: watch again
                if "timed out" not in str(exc):
                    self.errors.append(repr(exc))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def fewest(self, start: float, end: float) -> int:
        """The fewest Ready between two moments, seconds from start()."""
        before = [count for t, count in self.timeline if t <= start]
        return min([before[-1]] + [count for t, count in self.timeline if start < t <= end])
