"""Write charts/spot-extender/README.md from Chart.yaml and values.yaml.

Each value is documented by the "# --" comment block right above its key (the helm-docs
convention, so the usual tools read it too); lines after the first continue it, and
"# @default -- text" replaces a default too long for the table. A key with such a comment
is one row, whatever its value; a mapping without one is a section, and its keys are rows.
A value left undocumented is an error, so the table cannot miss one.

    .venv/bin/python tools/chart_readme.py --write   # regenerate the README
    .venv/bin/python tools/chart_readme.py --check   # exit 1 when it is out of date
    .venv/bin/python tools/chart_readme.py           # print it

Stdlib and PyYAML only. tests/chart/test_chart.py runs the check.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import NamedTuple

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "spot-extender"
README = CHART / "README.md"
REGENERATE = ".venv/bin/python tools/chart_readme.py --write"

KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_]*):(\s|$)")


class UndocumentedError(ValueError):
    """values.yaml holds a value with no "# --" comment, or a comment for no value."""


class Row(NamedTuple):
    path: tuple[str, ...]
    description: str
    default: str | None = None  # from "# @default --"; None: the value itself


def documented(text: str) -> list[Row]:
    """The rows of values.yaml's "# --" comments, in file order."""
    rows: list[Row] = []
    sections: list[tuple[int, str]] = []  # (indent, key) of the mappings around the current line
    words: list[str] | None = None  # the "# --" block being read
    default: str | None = None
    value_of: int | None = None  # indent of a documented key whose value's lines follow
    for line in text.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip(" "))
        if value_of is not None:
            # A documented key's value: deeper lines, or list items at its own indent.
            if not stripped or indent > value_of or (indent == value_of and stripped.startswith("-")):
                continue
            value_of = None
        if stripped.startswith("#"):
            body = stripped[1:].strip()
            if body.startswith("-- "):
                words, default = [body[3:]], None
            elif words is not None and body.startswith("@default -- "):
                default = body[len("@default -- "):]
            elif words is not None:
                words.append(body)
            continue
        match = KEY.match(line)
        if not stripped or not match:
            words = None  # a comment documents only the key right below it
            continue
        while sections and sections[-1][0] >= indent:
            sections.pop()
        path = tuple(key for _, key in sections) + (match.group("key"),)
        if words is not None:
            rows.append(Row(path, " ".join(w for w in words if w), default))
            value_of, words = indent, None
        else:
            sections.append((indent, match.group("key")))
    return rows


def checked(rows: list[Row], values: dict) -> list[Row]:
    """The rows, once every value has exactly one and every row a value."""
    paths = {row.path for row in rows}
    problems = []
    for row in rows:
        node = values
        for key in row.path:
            if not isinstance(node, dict) or key not in node:
                problems.append(f"a comment for {'.'.join(row.path)}, which values.yaml does not hold")
                break
            node = node[key]

    def walk(node: dict, prefix: tuple[str, ...]) -> None:
        for key, value in node.items():
            path = prefix + (key,)
            if path in paths:
                continue
            if isinstance(value, dict) and value:
                walk(value, path)
            else:
                problems.append(f"{'.'.join(path)} has no '# --' comment")

    walk(values, ())
    if problems:
        raise UndocumentedError("values.yaml: " + "; ".join(problems))
    return rows


def value_at(values: dict, path: tuple[str, ...]):
    for key in path:
        values = values[key]
    return values


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(values_text: str) -> str:
    values = yaml.safe_load(values_text)
    lines = ["| Key | Default | Description |", "|---|---|---|"]
    for row in checked(documented(values_text), values):
        default = row.default if row.default is not None else \
            f"`{json.dumps(value_at(values, row.path), ensure_ascii=False)}`"
        lines.append(f"| `{'.'.join(row.path)}` | {cell(default)} | {cell(row.description)} |")
    return "\n".join(lines)


TEMPLATE = """\
<!-- Written by tools/chart_readme.py from Chart.yaml and values.yaml: edit those, then run it with --write. -->
# {name}

{description}

Chart {version}, spot-extender {app_version}, Kubernetes {kube_version}.

## Install

There is no published image: build the repository's Dockerfile and push it (docs/install.md,
section 1). Then:

```sh
helm install spot-extender charts/spot-extender --namespace kube-system \\
  --set image.repository=registry.example.com/platform/spot-extender
```

The defaults install what `kubectl apply -k k8s/` does: the extender and the admission
webhook on port 8888, over HTTPS with a certificate spot-extender makes and renews itself.
docs/install.md says which values match which kustomize overlay, and when to set
`service.clusterIP` (kube-scheduler on kubeadm calling the extender).

## Check it

`helm install` prints these for the values it was given (templates/NOTES.txt):

```sh
kubectl -n kube-system rollout status deploy/spot-extender --timeout=5m
kubectl get --raw "/api/v1/namespaces/kube-system/services/https:spot-extender:8888/proxy/readyz"
kubectl -n kube-system exec deploy/spot-extender -c spot-extender -- spot-extender status
```

The second answers `{{"status": "ready"}}` once the first lists of the cluster are in; the
third prints every workload's floor and placement, exit code 0 when every floor is met.

## Values

values.schema.json checks them; values.yaml explains the certificate choices.

{table}
"""


def render() -> str:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    return TEMPLATE.format(
        name=chart["name"],
        description=chart["description"].strip(),
        version=chart["version"],
        app_version=chart["appVersion"],
        kube_version=chart["kubeVersion"],
        table=table((CHART / "values.yaml").read_text()),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"write {README.relative_to(ROOT)}")
    mode.add_argument("--check", action="store_true", help="exit 1 when it is out of date")
    args = parser.parse_args(argv)
    try:
        text = render()
    except UndocumentedError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.write:
        README.write_text(text)
    elif args.check:
        if not README.exists() or README.read_text() != text:
            print(f"{README.relative_to(ROOT)} is out of date: run {REGENERATE}", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
