"""The docs name only what exists, and document everything a user can set or scrape:
every flag, metric, annotation and make target a doc names is real, every flag has its
row in docs/configuration.md, every metric its row in docs/reference.md, and the
generated parts of the docs are current. CHANGELOG.md is left out: it may name what a
release removed."""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path

import pytest

from spot_extender import cli
from spot_extender.cluster.resources import parse_quantity
from spot_extender.core import vocabulary
from spot_extender.core.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "charts" / "spot-extender" / "README.md", ROOT / "docs" / "grafana" / "README.md"]

# Flags of other tools that the install guide shows, by tool.
FOREIGN_FLAGS = {
    "kube-apiserver": {"--admission-control-config-file", "--authentication-kubeconfig",
                       "--authorization-kubeconfig"},
    "kube-scheduler": {"--config", "--bind-address"},
    "helm": {"--set", "--set-json", "--reuse-values"},
    "buildah": {"--build-arg", "--format", "--isolation", "--storage-driver"},
}
FLAG_IN_PROSE = re.compile(r"`(--[a-z][a-z0-9-]*[a-z0-9])")
METRIC = re.compile(r"\bspot_extender_[a-z_]*[a-z](?:_\*)?")  # `..._*` names a family of metrics
ANNOTATION = re.compile(r"\bspot-extender\.io/[a-z][a-z-]*[a-z]")
MAKE_TARGET = re.compile(r"`make ([a-z][a-z0-9-]*)|^\s*make ([a-z][a-z0-9-]*)", re.M)  # in prose, or a command line
COMMAND_LINE = re.compile(r"spot-extender (?:serve|status)\b[^\n`]*")  # its flags, in prose or a code block
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*[a-z0-9])")


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def doc_texts() -> dict[str, str]:
    return {str(path.relative_to(ROOT)): path.read_text() for path in DOCS}


def our_flags() -> set[str]:
    """Every long option of spot-extender's commands, and of the benchmark and harness scripts."""
    found: set[str] = set()

    def walk(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            found.update(s for s in action.option_strings if s.startswith("--"))
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)

    walk(cli.parser())
    for script in [*(ROOT / "tests" / "perf").glob("*.py"), *(ROOT / "tests" / "cluster").glob("*.py")]:
        found.update(re.findall(r'add_argument\(\s*"(--[a-z0-9-]+)"', script.read_text()))
    return found


def exported_metrics() -> set[str]:
    """Every metric as documented: a counter by its _total name, the others by their own
    (the rows tools/render_reference.py writes)."""
    reference = load_tool("render_reference")
    return {name for name, *_ in reference.process_metrics() + reference.fleet_metrics()}


def metric_names() -> set[str]:
    """Every series name /metrics can carry: a histogram's parts too."""
    histograms = {f.name for f in Metrics().registry.collect() if f.type == "histogram"}
    return exported_metrics() | {f"{h}_{part}" for h in histograms for part in ("bucket", "count", "sum")}


def our_annotations() -> set[str]:
    return {value for name, value in vars(vocabulary).items()
            if isinstance(value, str) and value.startswith("spot-extender.io/")}


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z0-9-]*):", (ROOT / "Makefile").read_text(), re.M))


def unknown(pattern: re.Pattern, known: set[str]) -> dict[str, list[str]]:
    out = {}
    for name, text in doc_texts().items():
        found = {next(filter(None, m)) if isinstance(m, tuple) else m for m in pattern.findall(text)}
        missing = sorted(found - known)
        if missing:
            out[name] = missing
    return out


def test_every_flag_a_doc_names_exists():
    foreign = set().union(*FOREIGN_FLAGS.values())
    assert unknown(FLAG_IN_PROSE, our_flags() | foreign) == {}


def test_every_flag_on_a_command_line_in_a_doc_exists():
    """`spot-extender serve ...` and `status ...` lines, code blocks included."""
    ours = our_flags()
    wrong = {name: sorted({flag for line in COMMAND_LINE.findall(text) for flag in FLAG.findall(line)} - ours)
             for name, text in doc_texts().items()}
    assert {name: flags for name, flags in wrong.items() if flags} == {}


def test_the_doc_checks_see_code_blocks():
    assert {FLAG.findall(line)[0] for line in COMMAND_LINE.findall("```\nspot-extender serve --no-such-flag x\n```")} \
        == {"--no-such-flag"}
    assert [m for m in MAKE_TARGET.findall("```sh\nmake nothing-here\n```") if any(m)] == [("", "nothing-here")]


def test_every_metric_a_doc_names_exists():
    names = metric_names()
    families = {name[:end] + "*" for name in names for end in range(1, len(name)) if name[end - 1] == "_"}
    assert unknown(METRIC, names | families) == {}


def test_every_annotation_a_doc_names_exists():
    assert unknown(ANNOTATION, our_annotations()) == {}


def test_every_make_target_a_doc_names_exists():
    assert unknown(MAKE_TARGET, make_targets()) == {}


def test_every_flag_is_documented_with_its_variable():
    from dataclasses import fields

    from spot_extender.core.settings import Settings, env_name

    page = (ROOT / "docs" / "configuration.md").read_text()
    missing = [f.name for f in fields(Settings)
               if f"`--{f.name.replace('_', '-')}" not in page or f"`{env_name(f.name)}`" not in page]
    assert missing == []


def test_every_metric_and_annotation_is_in_the_reference():
    page = (ROOT / "docs" / "reference.md").read_text()
    documented = set(re.findall(r"^\| `(spot_extender_\w+)`", page, re.M))
    assert exported_metrics() - documented == set()
    assert our_annotations() - set(re.findall(r"`(spot-extender\.io/[a-z-]+)`", page)) == set()


@pytest.mark.parametrize("tool", ["render_reference", "render_figures"])
def test_generated_parts_are_current(tool):
    module = load_tool(tool)
    problem = module.generated.stale(module.DOC, module.render, module.REGENERATE) if hasattr(module, "DOC") else ""
    for doc in getattr(module, "DOCS", ()):
        problem += module.generated.stale(doc, module.render, module.REGENERATE)
    assert problem == ""


def test_the_checks_catch_what_they_look_for():
    """Each pattern finds a made-up name of its kind, and the known sets leave it out."""
    text = "`--no-such-flag` spot_extender_no_such_total spot-extender.io/no-such `make no-such` spot_extender_w_*"
    assert FLAG_IN_PROSE.findall(text) == ["--no-such-flag"] and "--no-such-flag" not in our_flags()
    assert METRIC.findall(text) == ["spot_extender_no_such_total", "spot_extender_w_*"]
    assert "spot_extender_no_such_total" not in metric_names() and "spot_extender_leader" in metric_names()
    assert ANNOTATION.findall(text) == ["spot-extender.io/no-such"] and "spot-extender.io/role" in our_annotations()
    assert MAKE_TARGET.findall(text) == [("no-such", "")] and {"demo", "test", "docs"} <= make_targets()


# A measured figure: a decimal or a percentage. Outside code and generated blocks the
# hand-written pages may hold none: each comes from its report.
FIGURE = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])|(?<![\w.])\d+(?:\.\d+)?\s?%")


def figures_citing_nothing(text: str) -> list[str]:
    text = re.sub(r"<!-- generated:(\S+) -->.*?<!-- end:\1 -->", "", text, flags=re.S)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    text = re.sub(r"\b(?:Kubernetes|Python|Go|etcd|KWOK|helm|Helm|kubectl|Karpenter|tested on) \d+(?:\.\d+)+", "", text)  # versions
    return [line.strip() for line in text.splitlines() if FIGURE.search(line)]


# Every page written by hand; configuration.md and the chart's README are generated whole.
HAND_WRITTEN = ["README.md", "CONTRIBUTING.md", "CHANGELOG.md",
                *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")
                        if p.name != "configuration.md")]


@pytest.mark.parametrize("page", HAND_WRITTEN)
def test_every_figure_comes_from_a_report(page):
    """A measured figure typed into prose cites no report and goes stale: figures are
    rendered from docs/figures/*.json between generated markers; constants go in code."""
    assert figures_citing_nothing((ROOT / page).read_text()) == []


def test_a_typed_figure_is_caught():
    assert figures_citing_nothing("b/a was 0.77 here\nand 86% stayed\n`--x=0.5` Kubernetes 1.36.3 v1.35") == [
        "b/a was 0.77 here", "and 86% stayed"]
    assert figures_citing_nothing("<!-- generated:x -->\n0.77\n<!-- end:x -->") == []


def mebibytes(quantity: str) -> float:
    return float(parse_quantity(quantity)) / 2**20


def test_memory_requests_come_from_the_measured_peaks():
    """k8s/ and the chart ask for the same memory, and it covers what the extender
    benchmark measured: the request its peak at 50,000 pods, the limit at 150,000."""
    import yaml

    figures = load_tool("render_figures")
    report = figures.reports().get("extender")
    if report is None:
        pytest.fail("docs/figures/extender.json is missing: run make bench-extender, then render_figures --collect")
    sized_for, largest = figures.memory_sizing(report)
    deployment = next(d for d in yaml.safe_load_all((ROOT / "k8s" / "base" / "deployment.yaml").read_text())
                      if d and d.get("kind") == "Deployment")
    kustomize = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]
    chart = yaml.safe_load((ROOT / "charts" / "spot-extender" / "values.yaml").read_text())["resources"]
    assert chart["requests"]["memory"] == kustomize["requests"]["memory"]
    assert chart["limits"]["memory"] == kustomize["limits"]["memory"]
    # the benchmark's "MB" are /proc's kB / 1024: mebibytes
    assert mebibytes(kustomize["requests"]["memory"]) >= sized_for
    assert mebibytes(kustomize["limits"]["memory"]) >= largest
