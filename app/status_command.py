"""`spot-extender status`: every workload's floor and placement, read from the cluster with
the user's kubeconfig (one list of each kind, as `serve` starts) or from a running
instance's /debug/workloads, printed as a table or JSON. The exit code says whether every
floor is met."""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys

import aiohttp
import orjson

from .api import ApiError, ConfigError
from .assembly import build
from .core.settings import ENV_PREFIX, Settings, SettingsError, parse_duration
from .serving import status_table
from .serving.status import WorkloadState

FAILED = 3  # could not read the states: distinct from 1 (a floor unmet) and 2 (a usage error)
USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("where the states come from (default: the cluster, with your kubeconfig)")
    source.add_argument("--kubeconfig", dest="kubeconfig", default=None, help="kubeconfig file (default $KUBECONFIG "
                        "or ~/.kube/config)")
    source.add_argument("--context", dest="context", default=None, help="kubeconfig context")
    source.add_argument("--url", default=None, help="a running instance instead, e.g. http://127.0.0.1:8888: its "
                        "/debug/workloads, with the controller's last action when it is the leader")
    source.add_argument("--ca-file", default=None, help="with an https --url: the CA that signed its certificate")
    source.add_argument("--client-cert", default=None, help="with --url: a client certificate, when it runs with "
                        "--tls-client-ca-file")
    source.add_argument("--client-key", default=None, help="the key of --client-cert")
    parser.add_argument("-n", "--namespace", default=None, help="only this namespace")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table",
                        help="a table and a summary line, or the JSON document (default table)")
    parser.add_argument("--spot-price-ratio", dest="spot_price_ratio", default=None, metavar="RATIO",
                        help="spot price as a fraction of on-demand, for the cost estimate (default 0.3; above 0, "
                        f"at most 1; env {ENV_PREFIX}SPOT_PRICE_RATIO)")
    parser.add_argument("--timeout", type=_timeout, default=60.0, metavar="DURATION",
                        help="how long reading the states may take (default 1m; a duration: 250ms, 30s, 5m, 2h)")


def _timeout(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text!r}")
    return seconds


async def states_from_cluster(settings: Settings) -> list[WorkloadState]:
    """Every kind listed once into a fresh index, then the same states /debug/workloads shows."""
    parts = build(settings)
    try:
        await parts.kube.open()
        for reflector in parts.reflectors:
            await reflector.list()
    finally:
        await parts.kube.close()
    return parts.status.workloads()


async def states_from_url(args: argparse.Namespace) -> list[WorkloadState]:
    context = None
    if args.url.startswith("https://"):
        context = ssl.create_default_context(cafile=args.ca_file)
        if args.client_cert:
            context.load_cert_chain(args.client_cert, args.client_key)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.get(args.url.rstrip("/") + "/debug/workloads", ssl=context) as response:
            body = await response.read()
            if response.status != 200:
                raise ValueError(f"{args.url} answered {response.status}: {body[:200].decode(errors='replace')}")
    document = orjson.loads(body)
    if not isinstance(document, dict) or not isinstance(document.get("workloads"), list):
        raise ValueError(f"{args.url}/debug/workloads is not a spot-extender workload view")
    try:
        return [WorkloadState.from_json(w) for w in document["workloads"]]
    except ValueError as exc:
        raise ValueError(f"{args.url}/debug/workloads: {exc}") from None


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.client_cert and not args.client_key or args.client_key and not args.client_cert:
        print("spot-extender status: --client-cert and --client-key go together", file=sys.stderr)
        return USAGE
    read = states_from_url(args) if args.url else states_from_cluster(settings)
    try:
        states = asyncio.run(asyncio.wait_for(read, args.timeout))
    except (ConfigError, ApiError, aiohttp.ClientError, OSError, ssl.SSLError, ValueError,
            asyncio.TimeoutError) as exc:
        where = args.url or "the cluster"
        print(f"spot-extender status: cannot read the workloads from {where}: {str(exc) or type(exc).__name__}",
              file=sys.stderr)
        return FAILED
    states = status_table.select(states, args.namespace)
    document, code = status_table.report(states, settings.spot_price_ratio)
    if args.output == "json":
        sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(status_table.table(states))
        print()
        print(status_table.summary_line(document["summary"]))
    return code
