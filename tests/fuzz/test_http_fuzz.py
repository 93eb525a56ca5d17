"""An HTTP fuzz run against a live spot-extender process (the real app over a synthetic
index of 500 nodes and 5,000 pods): at least 2,000 cases to each verb, to the admission
webhook (which must admit whatever it is sent) and to /debug/workloads, 50 in flight at once, while /healthz is sampled throughout.

Cases: random JSON, valid requests mutated at one place, every place of a valid request
given every wrong type, absurd quantities, deep nesting, invalid UTF-8, bodies over the
limit, wrong methods and content types. The run holds when there is no 5xx, no call over
1 s, /healthz under 100 ms but for 1% of samples (one at least) and never near the 2 s probe timeout
(under 1 s), RSS grows by under 30 MB, and valid calls still get
the right answers afterwards. It prints its figures either way.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import random
import time
import urllib.request
from pathlib import Path

import aiohttp
import orjson

from tests.fuzz._live import FLOOR_POD, NAMES, ON_DEMAND, live_extender, valid_requests, valid_reviews
from tests.helpers import objects as f
from tests.helpers.metrics import sample_value

PODS = 5000
MAX_BODY = 1 << 20  # the server's --max-body-bytes for this run
CASES_PER_TARGET = 2000
IN_FLIGHT = 50
WRONG_TYPES = (None, True, 0, -1, 1.5, "", "x", [], [1], {}, {"a": 1})
ABSURD = ("1e300000", "1e999999999", "-1", "9" * 400, "1Ei" * 3, "NaN", "Infinity", "0x10", "١٢", "1e-999999")
VERBS = ("/filter", "/prioritize")
MUTATE = "/mutate"  # the admission webhook: it answers everything it reads with allowed: true

def random_json(rng: random.Random, depth: int = 0):
    roll = rng.random()
    if depth > 4 or roll < 0.4:
        return rng.choice([None, True, False, rng.randint(-2**63, 2**63 - 1), rng.random() * 1e6,
                           "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 12)))])
    if roll < 0.7:
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = ["Pod", "NodeNames", "Nodes", "metadata", "items", "name", "labels", "x"]
    return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def positions(node, path=()):
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield (*path, key)
        yield from positions(value, (*path, key))


def replaced(doc: dict, path: tuple, value) -> dict:
    doc = orjson.loads(orjson.dumps(doc))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def verb_cases(rng: random.Random, valid=valid_requests) -> list[tuple[str, bytes, str]]:
    """(method, body, content type) for one verb (or the webhook, with valid_reviews)."""
    cases: list[tuple[str, bytes, str]] = []
    json_type = "application/json"
    for base in valid(rng):  # every place, every wrong type
        for path in positions(base):
            for value in WRONG_TYPES:
                cases.append(("POST", orjson.dumps(replaced(base, path, value)), json_type))
    bases = valid(rng)
    for _ in range(600):  # one place given a random value
        base = rng.choice(bases)
        path = rng.choice(list(positions(base)))
        cases.append(("POST", orjson.dumps(replaced(base, path, random_json(rng))), json_type))
    for _ in range(300):
        cases.append(("POST", orjson.dumps(random_json(rng)), json_type))
    for value in ABSURD * 10:  # absurd quantities on full Nodes
        node = f.node("node-00001", "spot")
        node["status"]["allocatable"] = {"cpu": value, "memory": value, "pods": value}
        cases.append(("POST", orjson.dumps({"Pod": FLOOR_POD, "Nodes": {"items": [node]}}), json_type))
    for depth in (10, 100, 1000, 5000, 100_000):  # deep nesting
        cases.append(("POST", b"[" * depth + b"]" * depth, json_type))
        cases.append(("POST", b'{"Pod":' * depth + b"{}" + b"}" * depth, json_type))
        deep = b'{"metadata":{"name":"p","labels":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}}"
        cases.append(("POST", b'{"NodeNames":[],"Pod":' + deep + b"}", json_type))
    for _ in range(100):  # invalid UTF-8
        raw = bytearray(orjson.dumps(rng.choice(bases)))
        for _ in range(3):
            raw[rng.randrange(len(raw))] = rng.choice([0x80, 0xC0, 0xFF, 0xFE, 0xED])
        cases.append(("POST", bytes(raw), json_type))
    for size in (MAX_BODY + 1, MAX_BODY * 2, MAX_BODY * 4):  # over the limit
        cases.append(("POST", b'{"Pod":{"metadata":{}},"NodeNames":["' + b"n" * size + b'"]}', json_type))
    for method in ("GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"):  # wrong methods
        for _ in range(5):
            cases.append((method, orjson.dumps(rng.choice(bases)), json_type))
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "", "a/b; x"):
        for _ in range(10):
            cases.append(("POST", orjson.dumps(rng.choice(bases)), content_type))
    while len(cases) < CASES_PER_TARGET:
        cases.append(("POST", orjson.dumps(random_json(rng)), json_type))
    return cases


def debug_cases(rng: random.Random) -> list[tuple[str, str, bytes]]:
    """(method, path with query, body) for /debug/workloads."""
    cases = []
    for _ in range(CASES_PER_TARGET):
        query = "&".join(f"{rng.choice(['ns', 'kind', 'x', '%ff', ''])}={rng.randint(0, 9) * 'v'}"
                         for _ in range(rng.randint(0, 3)))
        method = rng.choice(["GET"] * 8 + ["POST", "PUT", "DELETE"])
        body = orjson.dumps(random_json(rng)) if method != "GET" else b""
        cases.append((method, "/debug/workloads" + (f"?{query}" if query else ""), body))
    return cases


def sample_healthz(url: str, stop, results) -> None:
    """Every 20 ms until stopped: (every answer's time in ms, answers other than 200)."""
    times, failures = [], 0
    while not stop.is_set():
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                resp.read()
                failures += resp.status != 200
        except OSError:
            failures += 1
        times.append((time.perf_counter() - started) * 1000)
        time.sleep(0.02)
    results.put((times, failures))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run_fuzz(base_url: str, pid: int) -> dict:
    rng = random.Random(20261202)
    timeout = aiohttp.ClientTimeout(total=10)
    figures: dict = {"statuses": {}, "slowest_call_s": 0.0, "cases": {}, "mutate_refused": 0}
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=IN_FLIGHT + 5)) as http:
        async def valid_answers_are_right() -> bool:
            names = NAMES[:5] + NAMES[-5:]
            async with http.post(base_url + "/filter", data=orjson.dumps({"Pod": FLOOR_POD, "NodeNames": names})) as r:
                passed = (await r.json())["NodeNames"]
            async with http.post(base_url + "/prioritize", data=orjson.dumps({"Pod": FLOOR_POD, "NodeNames": names})) as r:
                scores = {e["Host"]: e["Score"] for e in await r.json()}
            best = max(scores.values())
            return set(passed) == set(names[5:]) and all(n in ON_DEMAND for n, s in scores.items() if s == best)

        assert await valid_answers_are_right(), "valid calls were answered wrongly before the run"
        await valid_answers_are_right()
        rss_before = rss_mb(pid)
        # /healthz is timed from a process of its own, so the fuzzing client's own busy
        # event loop does not count against the server.
        stop = multiprocessing.Event()
        results = multiprocessing.Queue()
        sampler = multiprocessing.Process(target=sample_healthz, args=(base_url + "/healthz", stop, results))

        slots = asyncio.Semaphore(IN_FLIGHT)

        async def call(target: str, method: str, path: str, body: bytes, content_type: str) -> None:
            async with slots:
                headers = {"Content-Type": content_type} if content_type else {}
                started = time.perf_counter()
                try:
                    async with http.request(method, base_url + path, data=body or None, headers=headers) as r:
                        answer = await r.read()
                        status = r.status
                    if target == MUTATE and status == 200 and not orjson.loads(answer)["response"]["allowed"]:
                        figures["mutate_refused"] += 1  # the webhook must admit whatever it is sent
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    status = f"client error {type(exc).__name__}"
                took = time.perf_counter() - started
                figures["slowest_call_s"] = max(figures["slowest_call_s"], took)
                key = f"{target} {status}"
                figures["statuses"][key] = figures["statuses"].get(key, 0) + 1

        jobs = []
        for verb in VERBS:
            cases = verb_cases(rng)
            figures["cases"][verb] = len(cases)
            jobs += [call(verb, m, verb, body, ct) for m, body, ct in cases]
        cases = verb_cases(rng, valid_reviews)
        figures["cases"][MUTATE] = len(cases)
        jobs += [call(MUTATE, m, MUTATE, body, ct) for m, body, ct in cases]
        cases = debug_cases(rng)
        figures["cases"]["/debug/workloads"] = len(cases)
        jobs += [call("/debug/workloads", m, p, body, "application/json") for m, p, body in cases]
        rng.shuffle(jobs)
        sampler.start()
        started = time.perf_counter()
        await asyncio.gather(*jobs)
        figures["run_seconds"] = round(time.perf_counter() - started, 1)
        stop.set()
        times, figures["healthz_failures"] = results.get(timeout=30)
        times.sort()
        figures["healthz_samples"] = len(times)
        figures["healthz_p99_ms"] = round(times[math.ceil(len(times) * 0.99) - 1], 1) if times else None
        figures["healthz_max_ms"] = round(times[-1], 1) if times else None
        figures["healthz_over_100ms"] = sum(t >= 100 for t in times)
        sampler.join(10)
        figures["rss_growth_mb"] = round(rss_mb(pid) - rss_before, 1)
        async with http.get(base_url + "/metrics") as r:
            figures["mutate_errors"] = sample_value(await r.text(), "spot_extender_admissions_total", {"outcome": "error"})
        figures["valid_answers_right_after"] = await valid_answers_are_right()
    figures["slowest_call_s"] = round(figures["slowest_call_s"], 3)
    return figures


def test_http_fuzz_run():
    with live_extender("--pods", str(PODS), "--max-body-bytes", str(MAX_BODY)) as server:
        figures = asyncio.run(run_fuzz(server.url, server.pid))
    print("\nHTTP fuzz run:", orjson.dumps(figures, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
    server_errors = {k: v for k, v in figures["statuses"].items() if not k.split()[-1].isdigit()
                     or int(k.split()[-1]) >= 500}
    assert all(n >= CASES_PER_TARGET for n in figures["cases"].values()), figures["cases"]
    assert server_errors == {}, server_errors
    assert figures["mutate_refused"] == 0
    assert not figures["mutate_errors"]  # every hostile review was read, or refused as unreadable
    mutate_answers = {k: v for k, v in figures["statuses"].items() if k.startswith(MUTATE + " ")}
    assert set(mutate_answers) <= {f"{MUTATE} 200", f"{MUTATE} 405", f"{MUTATE} 413"}, mutate_answers
    assert figures["slowest_call_s"] < 1.0
    # One slow sample may be the loaded 2-core machine's own stall; more than 1% of them
    # (one, in a run of a few seconds) would be the server's. The slowest stays far inside
    # the liveness probe's 2 s timeout.
    assert figures["healthz_samples"] >= 20 and figures["healthz_failures"] == 0
    assert figures["healthz_over_100ms"] <= max(1, figures["healthz_samples"] // 100), figures
    assert figures["healthz_max_ms"] < 1000, figures
    assert figures["rss_growth_mb"] < 30
    assert figures["valid_answers_right_after"]
