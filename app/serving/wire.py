"""The kube-scheduler extender wire format (k8s.io/kube-scheduler/extender/v1).

The Go types carry no json tags, so keys are Go field names. Go's decoder matches keys
case-insensitively, so requests are read that way; answers use the exact names.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat
from operator import getitem
from typing import Iterable, Mapping, Sequence

import orjson


class BadRequest(ValueError):
    """A request the extender cannot read; answered with HTTP 400."""


@dataclass(frozen=True, slots=True)
class ExtenderArgs:
    pod: dict
    node_names: list[str] | None  # set when the scheduler runs with nodeCacheCapable: true
    nodes: list[dict] | None  # full Node objects otherwise

    @property
    def names(self) -> list[str]:
        if self.node_names is not None:
            return self.node_names
        return [n["metadata"]["name"] for n in self.nodes or ()]


def parse_args(body: bytes) -> ExtenderArgs:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRequest("body must be a JSON object (ExtenderArgs)")
    fields = {str(k).lower(): v for k, v in doc.items()}

    pod = fields.get("pod")
    if not isinstance(pod, dict):
        raise BadRequest("Pod is missing or not an object")
    meta = pod.get("metadata")
    if not isinstance(meta, dict):
        raise BadRequest("Pod.metadata is missing or not an object")
    for key in ("name", "namespace", "uid"):
        if not isinstance(meta.get(key, ""), str):
            raise BadRequest(f"Pod.metadata.{key} must be a string")
    for key, kind, noun in (("labels", dict, "an object"), ("annotations", dict, "an object"), ("ownerReferences", list, "a list")):
        if meta.get(key) is not None and not isinstance(meta[key], kind):
            raise BadRequest(f"Pod.metadata.{key} must be {noun}")

    node_names = fields.get("nodenames")
    nodes = fields.get("nodes")
    if node_names is not None:
        # set(map(type, ...)) runs in C: this list holds thousands of names.
        if not isinstance(node_names, list) or not set(map(type, node_names)) <= {str}:
            raise BadRequest("NodeNames must be a list of strings")
        return ExtenderArgs(pod, node_names, None)
    if nodes is not None:
        items = nodes.get("items") if isinstance(nodes, dict) else None
        if items is None and isinstance(nodes, dict):
            items = []  # an empty NodeList serialises its items as null
        if not isinstance(items, list):
            raise BadRequest("Nodes must be a NodeList object with an items list")
        for i, node in enumerate(items):
            _check_node(i, node)
        return ExtenderArgs(pod, None, items)
    raise BadRequest("one of NodeNames or Nodes is required")


def _check_node(i: int, node) -> None:
    """The fields of a Node that the extender reads have the types the API gives them,
    so a malformed node is a 400 here rather than a failure later."""
    where = f"Nodes.items[{i}]"
    if not isinstance(node, dict):
        raise BadRequest(f"{where} must be an object")
    meta, spec, status = node.get("metadata"), node.get("spec"), node.get("status")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        raise BadRequest(f"{where} has no metadata.name")
    labels = meta.get("labels")
    if labels is not None and (not isinstance(labels, dict) or not set(map(type, labels.values())) <= {str}):
        raise BadRequest(f"{where}.metadata.labels must map strings to strings")
    if spec is not None:
        if not isinstance(spec, dict):
            raise BadRequest(f"{where}.spec must be an object")
        taints = spec.get("taints")
        if taints is not None and (
            not isinstance(taints, list) or not all(isinstance(t, dict) and isinstance(t.get("key"), str) for t in taints)
        ):
            raise BadRequest(f"{where}.spec.taints must be a list of taints with string keys")
    if status is not None:
        if not isinstance(status, dict):
            raise BadRequest(f"{where}.status must be an object")
        conditions, allocatable = status.get("conditions"), status.get("allocatable")
        if conditions is not None and (not isinstance(conditions, list)
                                       or not all(isinstance(c, dict) for c in conditions)):
            raise BadRequest(f"{where}.status.conditions must be a list of objects")
        if allocatable is not None and not isinstance(allocatable, dict):
            raise BadRequest(f"{where}.status.allocatable must be an object")


def filter_result(
    args: ExtenderArgs,
    passed: Sequence[str],
    failed: Mapping[str, str],
    unresolvable: Mapping[str, str],
) -> bytes:
    """ExtenderFilterResult in the same mode as the request."""
    if args.node_names is not None:
        nodes, node_names = None, passed if type(passed) is list else list(passed)
    else:
        keep = set(passed)
        nodes = {"metadata": {}, "items": [n for n in args.nodes or () if n["metadata"]["name"] in keep]}
        node_names = None
    return orjson.dumps(
        {
            "Nodes": nodes,
            "NodeNames": node_names,
            # orjson takes only dicts; a dict is sent as it is, not copied (thousands of names)
            "FailedNodes": failed if type(failed) is dict else dict(failed),
            "FailedAndUnresolvableNodes": unresolvable if type(unresolvable) is dict else dict(unresolvable),
            "Error": "",
        }
    )


def filter_error(message: str) -> bytes:
    """A filter answer the scheduler treats as an extender error (skipped when ignorable)."""
    return orjson.dumps(
        {"Nodes": None, "NodeNames": None, "FailedNodes": {}, "FailedAndUnresolvableNodes": {}, "Error": message}
    )


MAX_PRIORITY = 10  # extender/v1 MaxExtenderPriority
# Hosts whose encoded entries are kept (about 0.9 KB each): four times a 5000-node
# cluster. Past it the memory is dropped and refilled, so nodes added later are cached
# too. Names the index does not know are never kept (encode_entries(remember=False)).
PRIORITY_CACHE_HOSTS = 20_000


def _entries(host: str) -> tuple[bytes, ...]:
    # Concatenation makes exact-size objects; orjson's own output keeps ~4 KiB of
    # spare capacity, which is 200 MiB across 5000 hosts x 11 scores.
    host_json = orjson.dumps(host)
    return tuple(b'{"Host":%b,"Score":%d}' % (host_json, s) for s in range(MAX_PRIORITY + 1))


class _HostEntries(dict):
    """host -> its 11 encoded HostPriority entries, one per score 0..10.

    Prioritize answers thousands of entries per call; joining pre-encoded entries
    in C is several times faster than encoding a dict per host."""

    def __missing__(self, host: str) -> tuple[bytes, ...]:
        if len(self) >= PRIORITY_CACHE_HOSTS:
            self.clear()
        entries = self[host] = _entries(host)
        return entries


_host_entries = _HostEntries()


def host_entry(host: str, score: int) -> bytes:
    """One encoded HostPriority: {"Host":...,"Score":...}."""
    return _host_entries[host][score]


def encode_entries(hosts: Sequence[str], score: int, remember: bool = True) -> bytes:
    """Comma-joined HostPriority entries, all at one score. remember=False for names that
    are not known nodes: whatever a caller sends must not fill the cache."""
    if not remember:
        return b",".join(_entries(host)[score] for host in hosts)
    return b",".join(map(getitem, map(_host_entries.__getitem__, hosts), repeat(score)))


def join_entries(chunks: Iterable[bytes]) -> bytes:
    """HostPriorityList from chunks of entries: a bare JSON array, not an object."""
    return b"[" + b",".join(c for c in chunks if c) + b"]"
