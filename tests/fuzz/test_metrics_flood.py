"""A flood of /metrics scrapes against a live spot-extender process must leave the latency
of /filter and /mutate where it was (issue 26, item 5).

The process is the real app over a synthetic index of 500 nodes, 10,000 pods and 2,000
Deployments (tests/fuzz/_live.py), so one scrape encodes about 14,000 per-workload series:
1.5 MB of text, 46 kB gzipped, about 0.2 s of CPU. One serial client, as kube-scheduler
and kube-apiserver call, times valid /filter and /mutate calls in turn for a fixed time:
with nothing else running, then while CLIENTS scrapers fetch /metrics back to back from a
process of their own, then with nothing else running again, so that the two quiet runs
bracket the noise. Per verb, the flood's p99 must stay under P99_RATIO times the larger
of the two quiet p99s of the same process, plus SLACK_MS so that a sub-millisecond
baseline does not flake on a busy 2-core machine, and the flood must have been answered
(200s, many of them). The figures are printed either way, with the number of distinct
scrape bodies: every scrape that shares an encode gets the same bytes, and the timed calls
change the counters between two encodes, so that number counts the encodes.

Either way of serving /metrics without sharing takes the flood's p99 to hundreds of times
the quiet one: an encode per scrape in the default executor (up to 6 at once, each holding
the GIL in pure Python), or one encoded on the event loop itself. Sharing alone is not
enough either when a shared encode starts again as soon as the last one ends: the
executor thread then holds the GIL nearly all the time, and calls wait up to 150 ms for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import multiprocessing
import os
import random
import statistics
import time
from urllib.parse import urlsplit

import aiohttp
import orjson

from tests.fuzz._live import live_extender, valid_requests, valid_reviews

PODS, WORKLOADS = 10_000, 2_000
CLIENTS = 32  # scrapers in the flood, each fetching /metrics again as soon as it has an answer
QUIET_SECONDS, FLOOD_SECONDS = 3.0, 8.0  # the flood's run spans many encodes, however long one takes
PAUSE_S = 0.001  # between two timed calls: a steady sequence, not a second flood
P99_RATIO = 3.0
# A paced, shared encode measured 11.5 ms p99 on a loaded CI machine (quiet: 1.4-1.9 ms);
# the regressions this guards against measured 98-154 ms, so 20 ms of slack still catches them.
SLACK_MS = 20.0
VERBS = ("/filter", "/mutate")


def timed_run(url: str, rng: random.Random, seconds: float) -> dict[str, list[float]]:
    """Valid calls to each verb, in turn, on one keep-alive connection, for `seconds`: ms per call."""
    filters = [orjson.dumps(valid_requests(rng)[0]) for _ in range(100)]
    took: dict[str, list[float]] = {verb: [] for verb in VERBS}
    address = urlsplit(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    deadline = time.perf_counter() + seconds
    try:
        while time.perf_counter() < deadline:
            for verb in VERBS:
                body = rng.choice(filters) if verb == "/filter" else orjson.dumps(valid_reviews(rng)[0])
                started = time.perf_counter()
                connection.request("POST", verb, body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                answer = response.read()
                took[verb].append((time.perf_counter() - started) * 1000)
                assert response.status == 200, (verb, response.status, answer[:200])
                time.sleep(PAUSE_S)
    finally:
        connection.close()
    return took


def flood(url: str, clients: int, started, stop, results) -> None:
    """`clients` scrapers until `stop`, in a process of its own. Puts the scrapes served,
    their statuses and bytes, the distinct bodies (the encodes) and the slowest scrape."""

    # A flood comes from elsewhere: on this machine's 2 cores its own client work should
    # not be what slows the extender down, so it runs at the lowest priority.
    os.nice(19)

    async def run() -> dict:
        figures = {"scrapes": 0, "statuses": {}, "bytes": 0, "slowest_scrape_s": 0.0}
        bodies: set[bytes] = set()
        timeout = aiohttp.ClientTimeout(total=30)
        # Prometheus asks for gzip; the body is kept compressed, as the server made it.
        async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False,
                                         connector=aiohttp.TCPConnector(limit=clients)) as http:
            async def scraper() -> None:
                while not stop.is_set():
                    began = time.perf_counter()
                    try:
                        async with http.get(url + "/metrics", headers={"Accept-Encoding": "gzip"}) as r:
                            body = await r.read()
                            status = str(r.status)
                    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                        body, status = b"", f"client error {type(exc).__name__}"
                    figures["slowest_scrape_s"] = max(figures["slowest_scrape_s"], time.perf_counter() - began)
                    figures["statuses"][status] = figures["statuses"].get(status, 0) + 1
                    if status == "200":
                        figures["scrapes"] += 1
                        figures["bytes"] += len(body)
                        bodies.add(hashlib.blake2b(body, digest_size=16).digest())
                        started.set()

            await asyncio.gather(*(scraper() for _ in range(clients)))
        figures["distinct_bodies"] = len(bodies)
        return figures

    results.put(asyncio.run(run()))


def measure(module: str = "tests.perf.extender_server") -> dict:
    """Quiet, flooded and quiet again against one live process (`module`: the server, or a
    variant of it to compare with): p50/p99 per verb and run, the flood's ratios to the
    quiet runs, and what the flood was served."""
    rng = random.Random(20261206)
    figures: dict = {"runs": {}}
    with live_extender("--pods", str(PODS), "--workloads", str(WORKLOADS), module=module) as server:
        figures["server"] = server.loaded
        probe = http.client.HTTPConnection(urlsplit(server.url).hostname, urlsplit(server.url).port, timeout=30)
        started = time.perf_counter()
        probe.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
        response = probe.getresponse()
        size = len(response.read())
        figures["one_scrape"] = {"ms": round((time.perf_counter() - started) * 1000, 1), "gzip_bytes": size}
        probe.close()
        timed_run(server.url, rng, 0.5)  # warm up: connections, caches, the first admissions

        took = {"quiet_before": timed_run(server.url, rng, QUIET_SECONDS)}
        started_event, stop, results = multiprocessing.Event(), multiprocessing.Event(), multiprocessing.Queue()
        flooder = multiprocessing.Process(target=flood, args=(server.url, CLIENTS, started_event, stop, results))
        flooder.start()
        flood_began = time.perf_counter()
        try:
            assert started_event.wait(30), "the flood got no scrape answered in 30 s"
            took["flood"] = timed_run(server.url, rng, FLOOD_SECONDS)
        finally:
            stop.set()
            figures["flood"] = results.get(timeout=60)
            flooder.join(10)
        figures["flood"]["seconds"] = round(time.perf_counter() - flood_began, 1)
        figures["flood"]["slowest_scrape_s"] = round(figures["flood"]["slowest_scrape_s"], 3)
        figures["flood"]["scrapes_per_encode"] = round(
            figures["flood"]["scrapes"] / max(figures["flood"]["distinct_bodies"], 1), 1)
        time.sleep(0.5)  # the last encode of the flood ends
        took["quiet_after"] = timed_run(server.url, rng, QUIET_SECONDS)

    for run, by_verb in took.items():
        figures["runs"][run] = {verb: {"calls": len(ms), "p50_ms": round(statistics.median(ms), 2),
                                       "p99_ms": round(statistics.quantiles(ms, n=100, method="inclusive")[98], 2),
                                       "max_ms": round(max(ms), 2)}
                                for verb, ms in by_verb.items()}
    figures["p99_ratio"] = {}
    for verb in VERBS:
        flooded = figures["runs"]["flood"][verb]["p99_ms"]
        figures["p99_ratio"][verb] = {
            run: round(flooded / max(figures["runs"][run][verb]["p99_ms"], 1e-3), 2)
            for run in ("quiet_before", "quiet_after")}
    return figures


def within_bound(figures: dict) -> dict[str, bool]:
    """Per verb: the flood's p99 under P99_RATIO times the larger quiet p99, plus SLACK_MS."""
    runs = figures["runs"]
    return {verb: runs["flood"][verb]["p99_ms"]
            <= P99_RATIO * max(runs["quiet_before"][verb]["p99_ms"], runs["quiet_after"][verb]["p99_ms"]) + SLACK_MS
            for verb in VERBS}


def test_metrics_flood_leaves_filter_and_mutate_latency():
    figures = measure()
    print("\n/metrics flood:", orjson.dumps(figures, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
    assert within_bound(figures) == dict.fromkeys(VERBS, True), (figures["runs"], figures["p99_ratio"])
    # And the flood was a flood: every scrape answered, not refused, and many of them.
    flood_figures = figures["flood"]
    assert set(flood_figures["statuses"]) == {"200"}, flood_figures["statuses"]
    assert flood_figures["scrapes"] >= CLIENTS * 5, flood_figures
