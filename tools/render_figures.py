"""Render every benchmark figure in the docs from the reports in docs/figures/.

`make bench` writes build/bench/<benchmark>.json (and a plot beside each); `--collect`
copies those reports into docs/figures/ and their plots into docs/img/, where they are
kept with the docs. Each report carries its commit, date, machine and settings. The
tables of docs/performance.md and the headline figures of the README are rendered from
them between `<!-- generated:NAME -->` markers; tests/unit/test_docs.py fails when one
differs from its report, and when a figure outside them cites no report.

    .venv/bin/python tools/render_figures.py --collect  # take the reports of the last make bench
    .venv/bin/python tools/render_figures.py --write    # regenerate the figures in the docs
    .venv/bin/python tools/render_figures.py --check    # exit 1 when they are out of date
"""

from __future__ import annotations

import json
import pathlib
import shutil
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.perf import tables  # noqa: E402
from tools import generated  # noqa: E402

FIGURES = ROOT / "docs" / "figures"
BUILD = ROOT / "build" / "bench"
IMAGES = ROOT / "docs" / "img"
PERFORMANCE = ROOT / "docs" / "performance.md"
README = ROOT / "README.md"
DOCS = (PERFORMANCE, README)
REGENERATE = ".venv/bin/python tools/render_figures.py --write"
BENCHMARKS = ("throughput", "burst", "http_stack", "availability", "pacing", "autoscaled", "reclaim", "extender")
# The index size the shipped memory request is sized for, and the largest one measured.
SIZED_FOR_PODS, LARGEST_PODS = 50_000, 150_000


def reports() -> dict[str, dict]:
    return {name: json.loads((FIGURES / f"{name}.json").read_text()) for name in BENCHMARKS
            if (FIGURES / f"{name}.json").exists()}


def source(report: dict) -> str:
    """Where a report's figures come from: its file, commit, date and machine."""
    env = report["environment"]
    dirty = " with local changes" if report.get("dirty") else ""
    return (f"`docs/figures/{report['benchmark']}.json`: commit {report['commit']}{dirty}, {report['date'][:10]}, "
            f"{env['cpus']} cores ({env['cpu_model']}), Kubernetes {env['kubernetes']}, kube-scheduler sampling "
            f"{env['scheduler_sampling']}")


def settings(report: dict, *names: str) -> str:
    chosen = report.get("settings", {})
    return ", ".join(f"`--{name.replace('_', '-')}={chosen[name]}`" for name in names if name in chosen)


def block(report: dict, *setting_names: str) -> str:
    shown = settings(report, *setting_names)
    head = f"From {source(report)}" + (f"; {shown}" if shown else "") + "."
    name = report["benchmark"]
    plot = f"\n\n![{name}](img/{name}.png)" if (IMAGES / f"{name}.png").exists() else ""
    return head + plot + "\n\n" + getattr(tables, name)(report)


SETTINGS_SHOWN = {
    "throughput": ("rounds", "cases"),
    "burst": ("nodes", "deployments", "pods", "rounds"),
    "http_stack": ("calls", "candidates", "rounds"),
    "availability": ("workloads", "notice", "startup", "rebalance_interval", "move_cooldown"),
    "pacing": ("workloads", "notice", "startups", "grace", "margin", "max_surge"),
    "autoscaled": ("workloads", "startup", "consolidate_after"),
    "reclaim": ("sizes",),
    "extender": ("nodes", "index_sizes"),
}


def by(results: list[dict], field: str, value) -> dict:
    return next(r for r in results if r[field] == value)


def maybe(results: list[dict], field: str, value) -> dict | None:
    """The row whose field has this value, or None when the run left it out."""
    return next((r for r in results if r[field] == value), None)


def run_of(report: dict, pods: int) -> dict:
    return next(run for run in report["runs"] if run["index"]["pods"] == pods)


def judged(value, target: float, at_least: bool, unit: str = "") -> str:
    """A figure beside its target, and whether it meets it."""
    met = value is not None and (value >= target if at_least else value < target)
    bound = "at least" if at_least else "under"
    return f"**{value}{unit}** (target {bound} {target:g}{unit}: {'met' if met else '**not met**'})"


def cell(run: dict, verb: str, mode: str, candidates: int) -> dict:
    return next(r for r in run["results"] if (r["verb"], r["mode"], r["candidates"]) == (verb, mode, candidates))


def headline(found: dict[str, dict]) -> str:
    """The few figures the README and the top of docs/performance.md show, each beside its
    target where it has one, and with the report it comes from."""
    lines = []
    if "availability" in found:
        r = found["availability"]
        ext = by(r["results"], "approach", "spot-extender")
        native = by(r["results"], "approach", "native")
        lines.append(
            f"- Every spot node reclaimed at once, {len(r['workloads'])} workloads, extender mode: workloads "
            f"without a ready replica {judged(ext['all_at_once']['workloads_with_zero_ready'], 1, False)}, below "
            f"their floor {judged(ext['all_at_once']['workloads_below_floor'], 1, False)}; natively (spot "
            f"preferred by node affinity) {native['all_at_once']['workloads_with_zero_ready']} without one. Spot "
            f"share of what the floors allow {judged(ext['steady_spot_share'], 0.98, True)}, back "
            f"{ext['seconds_to_steady_share_after_return']} s after spot returned. (availability.json)")
        if any(x["approach"] == "webhook" for x in r["results"]):
            webhook = by(r["results"], "approach", "webhook")
            lines.append(
                f"- The same, webhook only with kube-scheduler as it ships: workloads without a ready replica "
                f"{judged(webhook['all_at_once']['workloads_with_zero_ready'], 1, False)}, below their floor "
                f"{judged(webhook['all_at_once']['workloads_below_floor'], 1, False)}. (availability.json)")
    if "autoscaled" in found:
        r = found["autoscaled"]
        webhook, native = by(r["results"], "approach", "webhook"), by(r["results"], "approach", "native")
        lines.append(
            f"- With Karpenter making every node, webhook only, every spot NodeClaim lost at once: workloads "
            f"without a ready replica {judged(webhook['spot_lost_at_once']['workloads_with_zero_ready'], 1, False)}; "
            f"natively {native['spot_lost_at_once']['workloads_with_zero_ready']}. (autoscaled.json)")
    if "pacing" in found:
        r = found["pacing"]
        paced = [x for x in r["results"] if x["mode"] == "paced"]
        at_once = [x for x in r["results"] if x["mode"] == "at-once"]
        shown = " and ".join(f"{x['min_ready_total_fraction']:.0%} (pods starting in {x['startup']:g} s)"
                             for x in paced)
        misses = [c for c in r["comparison"] if not (c["within_one_of_bound"] and c["not_worse_than_at_once"])]
        lines.append(
            f"- A drain paced to a {r['settings']['notice']:g} s notice kept {shown} of all replicas ready at the "
            f"worst moment, against {min(x['min_ready_total_fraction'] for x in at_once):.0%} evicting at once; "
            f"workloads off their bound {judged(len(misses), 1, False)}. (pacing.json)")
        for c in r.get("surge_comparison", []):
            for prefix, which in (("", "all replicas"), ("deployments_", "the Deployments' replicas alone")):
                if f"{prefix}lost_met" not in c:
                    continue  # a report from before the Deployments were split out
                fewest = ("target 100%: " + ("met" if c[f"{prefix}min_ready_met"] else "not met")
                          if c["fits_in_notice"] else "the start-up does not fit in the notice")
                lines.append(
                    f"- With a surge first, pods starting in {c['startup']:g} s: fewest ready "
                    f"{c[f'{prefix}surge_min_ready_total_fraction']:.0%} of {which} ({fewest}), replica-seconds lost "
                    f"{c[f'{prefix}lost_over_paced']} of paced's (target under 0.05: "
                    f"{'met' if c[f'{prefix}lost_met'] else 'not met'})"
                    + (f", for {c['surge_pod_seconds']:g} surge pod-seconds" if not prefix else "") + ". (pacing.json)")
    if "throughput" in found:
        r = found["throughput"]
        rollout = r["rollout_ratios"]
        lines.append(
            f"- Scheduling throughput, {r['nodes']} nodes and {r['pods']} pods on {r['environment']['cpus']} shared "
            f"cores, from creation until every pod is bound, over kube-scheduler alone: extender "
            f"{judged(rollout.get('b/a'), 0.8, True)}, webhook {judged(rollout.get('e/a'), 0.9, True)}, both "
            f"{rollout.get('f/a')}. (throughput.json)")
    if "burst" in found:
        r = found["burst"]
        e, gn = maybe(r["results"], "case", "e"), maybe(r["results"], "case", "gn")
        lines.append(
            f"- A burst of {r['pods_per_burst']} pods, webhook only: kube-apiserver timed the webhook at p50 "
            f"{e.get('apiserver_p50_ms')} ms and p99 {e.get('apiserver_p99_ms')} ms by its buckets, a share under "
            f"25 ms of {judged(e.get('apiserver_share_under_25ms'), 0.99, True)}; event-loop lag p99 "
            f"{judged(e.get('loop_lag_p99_ms'), 5, False, ' ms')}; failed open "
            f"{judged(e.get('failed_open_total'), 1, False)}."
            + (f" An empty webhook in Go with HTTP/2 on the same machine: p50 {gn.get('apiserver_p50_ms')} ms, share "
               f"under 25 ms {gn.get('apiserver_share_under_25ms')}." if gn else "")
            + " (burst.json)" if e else "")
    if "throughput" in found and found["throughput"].get("extra_cpu_ms_per_pod") is not None:
        r = found["throughput"]
        b, e = maybe(r["results"], "case", "b"), maybe(r["results"], "case", "e")
        lines.append(
            f"- spot-extender's own CPU per pod bound: extender only (backlog) "
            f"{judged((b.get('cpu_ms_per_pod') or {}).get('spot-extender'), 0.3, False, ' ms')}; webhook only, "
            f"admissions included (rollout) "
            f"{judged((e.get('rollout_cpu_ms_per_pod') or {}).get('spot-extender'), 0.1, False, ' ms')}. "
            f"(throughput.json)" if b and e else "")
    if "extender" in found:
        r = found["extender"]
        largest = run_of(r, LARGEST_PODS)
        mutate = next(x for x in largest["results"] if x["verb"] == "mutate")
        most = max(x["candidates"] for x in largest["results"])
        lines.append(
            f"- {largest['index']['nodes']} nodes and {largest['index']['pods']} pods indexed: peak RSS "
            f"{judged(largest['rss_mb_peak'], 400, False, ' MB')}; p99 at {most} NodeNames candidates, filter "
            f"{judged(cell(largest, 'filter', 'NodeNames', most)['p99_ms'], 2, False, ' ms')}, prioritize "
            f"{judged(cell(largest, 'prioritize', 'NodeNames', most)['p99_ms'], 2, False, ' ms')}; admission "
            f"{judged(mutate['p99_ms'], 2, False, ' ms')}. (extender.json)")
        events = largest.get("watch_events") or {}
        if "during_over_alone_p99" in events:
            lines.append(
                f"- A filter call at {events['filter_during']['candidates']} candidates while pod watch events flow: "
                f"p99 {judged(events['during_over_alone_p99'], 3, False)} times the same call alone; with the watch "
                f"loop as before issue 30, {events['unsliced_during_over_alone_p99']} times. (extender.json)")
    if "reclaim" in found:
        largest = max(found["reclaim"]["results"], key=lambda x: x["pods"])
        lines.append(f"- A going-away taint with no notice: {largest['pods']} pods evicted in "
                     f"{largest['all_evicted_seconds']} s, {largest['over_reference']} times a bare eviction loop. "
                     f"(reclaim.json)")
    lines = [line for line in lines if line]
    if not found:
        return ("No benchmark report in `docs/figures/` yet: run `make bench`, then "
                "`tools/render_figures.py --collect` and `make docs`.")
    dates = sorted({report["date"][:10] for report in found.values()})
    commits = sorted({report["commit"] for report in found.values()})
    lines.append(f"\nMeasured on {dates[0]}{'' if len(dates) == 1 else ' to ' + dates[-1]} at commit "
                 f"{', '.join(commits)}; the reports are in `docs/figures/`.")
    return "\n".join(lines)


def memory_sizing(report: dict) -> tuple[float, float]:
    """Peak RSS in MB at the index size the memory request is for, and at the largest."""
    return run_of(report, SIZED_FOR_PODS)["rss_mb_peak"], run_of(report, LARGEST_PODS)["rss_mb_peak"]


def render(text: str) -> str:
    found = reports()
    for name in BENCHMARKS:
        if f"<!-- generated:{name} -->" not in text:
            continue
        if name in found:
            text = generated.fill(text, name, block(found[name], *SETTINGS_SHOWN[name]))
        else:
            text = generated.fill(text, name, "No report of this benchmark in `docs/figures/` yet. Run "
                                              "`make bench`, then `tools/render_figures.py --collect`.")
    if "<!-- generated:headline-figures -->" in text:
        text = generated.fill(text, "headline-figures", headline(found))
    return text


def collect() -> int:
    """Copy the last make bench's reports (those with a commit) and plots into the docs."""
    FIGURES.mkdir(exist_ok=True)
    taken = 0
    for name in BENCHMARKS:
        path = BUILD / f"{name}.json"
        if not path.exists() or "commit" not in json.loads(path.read_text()):
            continue
        shutil.copyfile(path, FIGURES / path.name)
        if path.with_suffix(".png").exists():
            shutil.copyfile(path.with_suffix(".png"), IMAGES / f"{name}.png")
        taken += 1
        print(f"took {path.relative_to(ROOT)}")
    return 0 if taken else 1


def main(argv: list[str]) -> int:
    if argv == ["--collect"]:
        return collect()
    if argv == ["--check"]:
        problems = "".join(generated.stale(doc, render, REGENERATE) for doc in DOCS)
        print(problems or "figures are current")
        return 1 if problems else 0
    if argv == ["--write"]:
        for doc in DOCS:
            doc.write_text(render(doc.read_text()))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
