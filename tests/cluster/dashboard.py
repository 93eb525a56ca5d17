"""`make dashboard`: docs/img/dashboard.png, the Grafana dashboard docs/grafana/spot-extender.json
drawn from a real run.

Grafana cannot be installed here: it is in none of the reachable registries (Debian,
PyPI, npm), and its Go module is AGPL, which this project does not build. So `make demo`
runs with a real Prometheus (built from its Go module by build-bins.sh with
BUILD_PROMETHEUS=1) scraping spot-extender every 500 ms; when the demo's acts are over,
every panel's own queries go to Prometheus' HTTP API (a range query per time series, an
instant query for stats and tables, Grafana's $__rate_interval read as 2s), and
matplotlib draws the answers in the dashboard's own grid.

Run: .venv/bin/python -m tests.cluster.dashboard (make dashboard)
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from tests.cluster import demo
from tests.cluster.controlplane import Component, ControlPlane, ExtenderProcess, bin_dir
from tests.helpers.ports import free_port
from tests.helpers.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docs" / "grafana" / "spot-extender.json"
OUT = ROOT / "build" / "dashboard.png"
SCRAPE = "500ms"  # the demo's acts take seconds each on KWOK
SCRAPE_SECONDS = 0.5
RATE_INTERVAL = "2s"  # four scrapes, as Grafana's $__rate_interval would give at this interval


class PrometheusObserver:
    def __init__(self, binary: Path):
        self.binary = binary
        self.url = ""
        self.began = 0.0

    def started(self, cluster: ControlPlane, extender: ExtenderProcess, ca: Path) -> None:
        port = free_port()
        target = extender.url.split("://", 1)[1]
        config = cluster.workdir / "prometheus.yml"
        config.write_text(
            f"global:\n  scrape_interval: {SCRAPE}\n  scrape_timeout: {SCRAPE}\n  evaluation_interval: {SCRAPE}\n"
            "scrape_configs:\n  - job_name: spot-extender\n    scheme: https\n"
            f"    tls_config:\n      ca_file: {ca}\n    static_configs:\n      - targets: ['{target}']\n")
        component = Component("prometheus", [
            str(self.binary), f"--config.file={config}", f"--storage.tsdb.path={cluster.workdir / 'prometheus'}",
            f"--web.listen-address=127.0.0.1:{port}"], cluster.workdir / "prometheus.log")
        cluster.components[component.name] = component
        component.start()
        self.url = f"http://127.0.0.1:{port}"
        wait_for(lambda: self.get("/-/ready") is not None, 60, what="Prometheus /-/ready")
        # Prometheus applies new targets every 5 s: hold the demo until a scrape is in, or
        # its first acts would go unrecorded.
        wait_for(lambda: self.get("/api/v1/query", query='up{job="spot-extender"} == 1')["data"]["result"], 60,
                 what="Prometheus' first scrape of spot-extender")
        self.began = time.time()
        print(f"    Prometheus scraping {extender.url}/metrics every {SCRAPE} at {self.url}", flush=True)

    def get(self, path: str, **params) -> dict | None:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(self.url + path + query, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body.startswith(b"{") else {}

    def finished(self) -> None:
        time.sleep(2 * SCRAPE_SECONDS)  # the last samples in
        ended = time.time()
        dashboard = json.loads(DASHBOARD.read_text())
        answers = {}
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                expr = target["expr"].replace("$__rate_interval", RATE_INTERVAL)
                if panel["type"] == "timeseries":
                    got = self.get("/api/v1/query_range", query=expr, start=self.began, end=ended,
                                   step=SCRAPE_SECONDS)
                else:
                    got = self.get("/api/v1/query", query=expr, time=ended)
                if got.get("status") != "success":
                    raise RuntimeError(f"Prometheus refused {expr!r}: {got}")
                answers[(panel["id"], target["refId"])] = got["data"]["result"]
        render(dashboard, answers, self.began, OUT)
        print(f"    dashboard drawn from {len(answers)} queries: {OUT}", flush=True)


def legend(template: str, labels: dict) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template) or "value"


def formatted(value: float, unit: str | None) -> str:
    if unit == "percentunit":
        return f"{value:.0%}"
    if unit == "s":
        return f"{value * 1000:.2f} ms"
    return f"{value:g}"


def render(dashboard: dict, answers: dict, began: float, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in dashboard["panels"])
    figure = plt.figure(figsize=(18, rows * 0.5))
    figure.suptitle(f"{dashboard['title']}: panels of docs/grafana/spot-extender.json, queried from "
                    "Prometheus during make demo", fontsize=12)
    top = 0.96
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        # Room on the left of each panel for its tick labels, above it for its title.
        box = [grid["x"] / 24 + 0.035, top - (grid["y"] + grid["h"]) / rows * top + 0.035,
               grid["w"] / 24 - 0.045, grid["h"] / rows * top - 0.065]
        axes = figure.add_axes(box)
        axes.set_title(panel["title"], fontsize=10, loc="left")
        unit = panel["fieldConfig"]["defaults"].get("unit")
        results = [(t, answers[(panel["id"], t["refId"])]) for t in panel["targets"]]
        if panel["type"] == "stat":
            values = [float(r["value"][1]) for _, result in results for r in result]
            axes.text(0.5, 0.45, formatted(values[0], unit) if values else "no data", ha="center", va="center",
                      fontsize=26, transform=axes.transAxes)
            axes.set_axis_off()
        elif panel["type"] == "timeseries":
            for target, result in results:
                for series in result:
                    xs = [float(t) - began for t, _ in series["values"]]
                    ys = [float(v) for _, v in series["values"]]
                    if unit == "s":
                        ys = [y * 1000 for y in ys]
                    axes.plot(xs, ys, label=legend(target["legendFormat"], series["metric"]))
            axes.set_xlabel("seconds into the demo", fontsize=8)
            axes.set_ylabel({"s": "ms", "percentunit": "ratio", "ops": "per second"}.get(unit, ""), fontsize=8)
            axes.tick_params(labelsize=8)
            if axes.get_legend_handles_labels()[0]:
                axes.legend(fontsize=7, loc="best")
        else:  # table: one row per workload, a column per target
            table: dict[tuple, dict] = {}
            for target, result in results:
                for series in result:
                    m = series["metric"]
                    table.setdefault((m.get("namespace", ""), m.get("workload", "")), {})[target["legendFormat"]] = \
                        series["value"][1]
            columns = [t["legendFormat"] for t in panel["targets"]]
            cells = [[f"{ns}/{name}", *(values.get(c, "-") for c in columns)] for (ns, name), values in
                     sorted(table.items())]
            axes.set_axis_off()
            if cells:
                shown = axes.table(cellText=cells, colLabels=["workload", *columns], loc="upper center",
                                   cellLoc="left")
                shown.auto_set_font_size(False)
                shown.set_fontsize(8)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=80)
    plt.close(figure)


def main() -> int:
    binary = bin_dir() / "prometheus"
    if not binary.exists():
        print(f"{binary} is missing: run `BUILD_PROMETHEUS=1 make cluster-bins` (make dashboard does)", file=sys.stderr)
        return 2
    code = demo.main(PrometheusObserver(binary))
    if code == 0 and OUT.exists():
        shutil.copy(OUT, ROOT / "docs" / "img" / "dashboard.png")
        print("    copied to docs/img/dashboard.png", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
