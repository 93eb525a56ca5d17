"""How many modules two walks through the code touch, and how often each returns to a
module it had left: a going-away taint from the watch event to the eviction, and an
admission from the /mutate body to the patch (issue 27). Traced, not counted by hand:
sys.setprofile follows every call and return into app/, and the walk is the sequence of
modules the running code is in, with repeats in a row merged.

    python -m tests.perf.walks          # JSON on stdout

Runs against this checkout's code; for the layout before issue 27 it also knows the old
builder (spot_extender.parts) and the old Controller signature."""

from __future__ import annotations

import asyncio
import json
import pathlib
import sys

import orjson

import spot_extender
from tests.helpers import objects as f

APP = pathlib.Path(spot_extender.__file__).resolve().parent

try:
    from spot_extender.assembly import build
except ImportError:  # before issue 27
    from spot_extender.parts import build  # type: ignore[no-redef]


class Tracer:
    """Every visit to a module of ours, in order. A visit is a leaf when the module
    answered and returned without calling into another module of ours (a query, a parser):
    the main line of a walk is what is left without leaves."""

    def __init__(self) -> None:
        self.visits: list[list] = []  # [module, leaf]
        self._stack: list[str] = []

    def _module(self, frame) -> str | None:
        path = pathlib.Path(frame.f_code.co_filename)
        try:
            return str(path.resolve().relative_to(APP))
        except ValueError:
            return None

    def __call__(self, frame, event, arg) -> None:
        if event not in ("call", "return"):
            return
        module = self._module(frame)
        if module is None:
            return
        if event == "call":
            if self._stack and self._stack[-1] != module and self.visits:
                self.visits[-1][1] = False  # the caller's visit hands on: not a leaf
            self._stack.append(module)
            self._visit(module)
        else:
            if self._stack:
                self._stack.pop()
            if self._stack:
                self._visit(self._stack[-1])

    def _visit(self, module: str) -> None:
        if not self.visits or self.visits[-1][0] != module:
            self.visits.append([module, True])

    def summary(self) -> dict:
        # The main line leaves out leaves, and the ground floor (core/): the supervisor shows
        # up only because the event loop resumes a task through its frame.
        return {"traced": _walk([m for m, _ in self.visits]),
                "main_line": _walk([m for i, (m, leaf) in enumerate(self.visits)
                                    if (not leaf or i in (0, len(self.visits) - 1)) and not _ground(m)])}


def _ground(module: str) -> bool:
    return module.startswith("core/") or "/" not in module and module in (
        "supervisor.py", "backoff.py", "counted.py", "logs.py", "metrics.py", "settings.py")  # the old flat layout


def _walk(modules: list[str]) -> dict:
    merged = [m for i, m in enumerate(modules) if i == 0 or modules[i - 1] != m]
    distinct = list(dict.fromkeys(merged))
    return {"modules": len(distinct), "returns": len(merged) - len(distinct), "touched": distinct, "walk": merged}


class StandInKube:
    """Records the eviction and stops the trace there: the walk ends at the API call."""

    def __init__(self, done: asyncio.Event):
        self.done = done

    async def evict(self, namespace, name, timeout, uid=""):
        sys.setprofile(None)
        self.done.set()

    async def post_event(self, *args, **kwargs):
        pass

    async def annotate_pod(self, *args, **kwargs):
        pass


def cluster(parts) -> None:
    index = parts.index
    for kind in ("Node", "Pod", "Deployment", "ReplicaSet", "StatefulSet", "Rollout", "PodDisruptionBudget",
                 "PersistentVolume", "PersistentVolumeClaim"):
        index.replace(kind, [])
    index.apply("Node", "ADDED", f.node("s1", "spot"))
    index.apply("Node", "ADDED", f.node("o1", "on-demand"))
    index.apply("Deployment", "ADDED", f.deployment("web", 2))
    index.apply("ReplicaSet", "ADDED", f.replicaset("web-1", "web", 2))
    for name, node in (("web-1-a", "o1"), ("web-1-b", "s1")):
        index.apply("Pod", "ADDED", f.pod(name, owner=("ReplicaSet", "web-1"), node_name=node, labels={"app": "web"}))


async def going_away_walk() -> dict:
    Settings = _settings()
    done = asyncio.Event()
    kube = StandInKube(done)
    settings = Settings(leader_elect=False)
    try:
        parts = build(settings, kube=kube)
        controller = parts.controller
    except TypeError:  # before issue 27: no kube for build, and no controller in the parts
        from spot_extender.controller import Controller  # noqa: PLC0415
        parts = build(settings)
        controller = Controller(kube, parts.index, parts.floors, settings, parts.metrics)
    cluster(parts)
    reflector = _node_reflector(parts, kube, settings)
    running = asyncio.create_task(controller.run())
    await asyncio.sleep(0.3)  # the loops' first passes, with nothing to do yet
    tracer = Tracer()
    sys.setprofile(tracer)
    reflector._handle("MODIFIED", f.node("s1", "spot", taints=[f.RECLAIM_TAINT]))
    await asyncio.wait_for(done.wait(), 10)
    sys.setprofile(None)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    return tracer.summary()


def _node_reflector(parts, kube, settings):
    reflectors = getattr(parts, "reflectors", None)
    if reflectors:
        return next(r for r in reflectors if r.kind == "Node")
    try:
        from spot_extender.api.kinds import WATCHED  # noqa: PLC0415
        from spot_extender.cluster.reflector import Reflector  # noqa: PLC0415
    except ImportError:
        from spot_extender.kinds import WATCHED  # type: ignore[no-redef]  # noqa: PLC0415
        from spot_extender.reflector import Reflector  # type: ignore[no-redef]  # noqa: PLC0415
    return Reflector(kube, next(k for k in WATCHED if k.name == "Node"), parts.index, settings, parts.metrics)


async def admission_walk() -> dict:
    Settings = _settings()
    parts = build(Settings(leader_elect=False))
    cluster(parts)
    pod = f.pod("", owner=("ReplicaSet", "web-1"), labels={"app": "web", "pod-template-hash": "web-1"})
    del pod["metadata"]["name"], pod["metadata"]["uid"]
    body = orjson.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "req-1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
        "namespace": "default", "object": pod}})
    await parts.webhook.review(body)  # warm: first-call caches are not the walk
    tracer = Tracer()
    sys.setprofile(tracer)
    answer = await parts.webhook.review(body.replace(b"req-1", b"req-2"))
    sys.setprofile(None)
    assert b'"patch"' in answer, answer
    return tracer.summary()


def _settings():
    try:
        from spot_extender.core.settings import Settings  # noqa: PLC0415
    except ImportError:  # before issue 27
        from spot_extender.settings import Settings  # type: ignore[no-redef]  # noqa: PLC0415
    return Settings


def main() -> None:
    result = {"going_away": asyncio.run(going_away_walk()), "admission": asyncio.run(admission_walk())}
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
