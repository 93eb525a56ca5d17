"""BASELINE, NOT PART OF SPOT-EXTENDER. Kept only so `make bench` has something to compare against.

Baseline d: a kube-scheduler extender written the way the common examples write one:
no cache, no informer. Every /filter and /prioritize call reads the pod's owner, the
workload's pods and any node it lacks from the API server with the typed
`kubernetes_asyncio` client, and parses bodies with stdlib `json`. The policy is
spot-extender's on-demand floor in its simplest form, so the benchmark compares designs.

    python -m tests.perf.baseline_extender --kubeconfig PATH --port N [--host 127.0.0.1] [--access-log]
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter

from aiohttp import web
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.rest import ApiException

CAPACITY_LABEL = "node.kubernetes.io/capacity"
TIMEOUT = 5  # seconds per API call, the same as the scheduler's httpTimeout
FLOOR_REASON = "on-demand floor not met"
log = logging.getLogger("baseline-extender")


def describe(exc: Exception) -> str:  # ApiException's str() spans lines with headers and body
    return f"API {exc.status} {exc.reason}" if isinstance(exc, ApiException) else repr(exc)


def is_spot(labels: dict | None) -> bool:
    return (labels or {}).get(CAPACITY_LABEL) == "spot"  # a missing label means on-demand


async def workload(apps: client.AppsV1Api, pod: dict) -> tuple[int, dict]:
    """(desired replicas, matchLabels) of the pod's controller. ({}: no siblings.)"""
    meta = pod.get("metadata") or {}
    ns = meta.get("namespace", "default")
    owner = next((o for o in meta.get("ownerReferences") or [] if o.get("controller")), None)
    if owner is None:
        return 1, {}
    if owner["kind"] == "StatefulSet":
        obj = await apps.read_namespaced_stateful_set(owner["name"], ns, _request_timeout=TIMEOUT)
    elif owner["kind"] == "ReplicaSet":
        obj = await apps.read_namespaced_replica_set(owner["name"], ns, _request_timeout=TIMEOUT)
        parent = next((o for o in obj.metadata.owner_references or [] if o.controller), None)
        if parent is not None and parent.kind == "Deployment":
            obj = await apps.read_namespaced_deployment(parent.name, ns, _request_timeout=TIMEOUT)
    else:
        return 1, {}
    replicas = obj.spec.replicas if obj.spec.replicas is not None else 1
    return replicas, obj.spec.selector.match_labels or {}


def request_nodes(args: dict) -> list:
    return (args.get("Nodes") or {}).get("items") or []


async def analyse(core: client.CoreV1Api, apps: client.AppsV1Api, args: dict) -> tuple[dict, bool, dict]:
    """(name -> spot?, floor met?, siblings per node name)."""
    pod = args.get("Pod") or {}
    items = request_nodes(args)
    spot = {n["metadata"]["name"]: is_spot(n["metadata"].get("labels")) for n in items}
    replicas, selector = await workload(apps, pod)
    meta = pod.get("metadata") or {}
    per_node: Counter = Counter()  # siblings per node name
    if selector:  # an empty selector would list the whole namespace
        listed = await core.list_namespaced_pod(
            meta.get("namespace", "default"),
            label_selector=",".join(f"{k}={v}" for k, v in selector.items()),
            _request_timeout=TIMEOUT,
        )
        per_node.update(p.spec.node_name for p in listed.items if p.metadata.name != meta.get("name")
                        and p.metadata.deletion_timestamp is None and p.spec.node_name)
    on_demand = 0
    for name, count in per_node.items():
        if name not in spot:  # a sibling's node the scheduler did not send: ask the API
            try:
                node = await core.read_node(name, _request_timeout=TIMEOUT)
                spot[name] = is_spot(node.metadata.labels)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                continue  # the node is gone; nothing on it counts
        if not spot[name]:
            on_demand += count
    # One replica on on-demand: for R == 1 the only one, for any other R still one.
    k = replicas if replicas == 1 else 1
    return spot, on_demand >= k, per_node


async def read_args(request: web.Request) -> dict:
    try:
        args = json.loads(await request.read())
    except ValueError:
        raise web.HTTPBadRequest(text="body is not valid JSON") from None
    if not isinstance(args, dict):
        raise web.HTTPBadRequest(text="body is not a JSON object")
    return args


async def filter_(request: web.Request) -> web.Response:
    args = await read_args(request)
    items = keep = request_nodes(args)
    failed, error = {}, ""
    try:
        spot, met, _ = await analyse(request.app["core"], request.app["apps"], args)
        # Narrow to on-demand only if that leaves something to schedule on.
        if not met and any(not spot[n["metadata"]["name"]] for n in items):
            keep = [n for n in items if not spot[n["metadata"]["name"]]]
            failed = {n["metadata"]["name"]: FLOOR_REASON for n in items if spot[n["metadata"]["name"]]}
    except Exception as exc:  # ignorable extender: report, and the scheduler goes on without us
        log.error("filter failed: %s", describe(exc))
        keep, failed, error = items, {}, f"baseline extender: {describe(exc)}"
    return web.json_response({"Nodes": {"metadata": {}, "items": keep}, "NodeNames": None, "FailedNodes": failed,
                              "FailedAndUnresolvableNodes": {}, "Error": error})


async def prioritize(request: web.Request) -> web.Response:
    args = await read_args(request)
    items = request_nodes(args)
    try:
        spot, met, per_node = await analyse(request.app["core"], request.app["apps"], args)
    except Exception as exc:
        log.error("prioritize failed: %s", describe(exc))
        return web.json_response([])
    scores = []
    for name in (n["metadata"]["name"] for n in items):
        if not met:
            score = 0 if spot[name] else 10
        else:  # floor met: spread over spot, on-demand last
            score = max(0, 10 - per_node.get(name, 0)) if spot[name] else 0
        scores.append({"Host": name, "Score": score})
    return web.json_response(scores)


async def healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")


def build_app(kubeconfig: str) -> web.Application:
    # aiohttp's default 1 MiB body limit answers 413 to full Nodes requests from a few hundred nodes.
    app = web.Application(client_max_size=512 * 1024 * 1024)

    async def api_client(app: web.Application):
        # One client for the process; no watch, no cache: each request reads afresh.
        await config.load_kube_config(config_file=kubeconfig)
        api = client.ApiClient()
        app["core"], app["apps"] = client.CoreV1Api(api), client.AppsV1Api(api)
        yield
        await api.close()

    app.cleanup_ctx.append(api_client)
    app.router.add_post("/filter", filter_)
    app.router.add_post("/prioritize", prioritize)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--access-log", action="store_true", help="one line per request (off for benchmarks)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log.info("starting on %s:%d (kubeconfig %s)", args.host, args.port, args.kubeconfig)
    # run_app turns SIGTERM and SIGINT into a graceful exit, which runs the cleanup above.
    web.run_app(build_app(args.kubeconfig), host=args.host, port=args.port, print=None,
                access_log=log if args.access_log else None)


if __name__ == "__main__":
    main()
