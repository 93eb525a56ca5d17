"""Resource quantities and pod requests, as kube-scheduler's resource fit counts them."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIX = {
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
}
# Bounded on purpose: a request or an event may carry any text, and an exponent of
# 1e300000 would make int() of the result take seconds. The API server itself refuses
# quantities past about 2^63, and no real one is longer than a few dozen characters.
_QUANTITY = re.compile(r"^([+-]?[0-9.]{1,40}(?:[eE][+-]?[0-9]{1,2})?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
MAX_QUANTITY = Decimal(2**63 - 1)


def parse_quantity(value) -> Decimal:
    """'100m', '2', '64Mi', '1e3' -> Decimal; raises ValueError for anything else,
    including values beyond what the API server accepts (about 9.2e18)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, str) and len(value) <= 64:
        text = value.strip()
    else:
        raise ValueError(f"not a resource quantity: {str(value)[:64]!r}")
    match = _QUANTITY.match(text)
    if not match:
        raise ValueError(f"not a resource quantity: {text!r}")
    try:
        quantity = Decimal(match.group(1)) * _SUFFIX[match.group(2) or ""]
    except InvalidOperation:
        raise ValueError(f"not a resource quantity: {text!r}") from None
    if not quantity.is_finite() or abs(quantity) > MAX_QUANTITY:
        raise ValueError(f"resource quantity out of range: {text!r}")
    return quantity


def _amount(resources: dict, name: str, scale: int) -> int:
    value = (resources or {}).get(name)
    if value is None:
        return 0
    try:
        return int(parse_quantity(value) * scale)
    except ValueError:
        return 0  # the API server validates quantities; an odd one counts as nothing


def cpu_millis(resources: dict) -> int:
    return _amount(resources, "cpu", 1000)


def memory_bytes(resources: dict) -> int:
    return _amount(resources, "memory", 1)


# Resources every node has and the room model counts on its own (pods: by count).
_BASIC = frozenset({"cpu", "memory", "pods", "ephemeral-storage"})
MILLI = 1000  # extended amounts are kept in thousandths, so a fraction is never lost


def extended_amounts(resources: dict) -> tuple[tuple[str, int], ...]:
    """Resources other than CPU, memory, pods and ephemeral storage (GPUs, hugepages, a
    device plugin's), in thousandths, sorted by name; malformed values are left out."""
    found = []
    for name, value in (resources or {}).items():
        if not isinstance(name, str) or name in _BASIC:
            continue
        try:
            amount = int(parse_quantity(value) * MILLI)
        except ValueError:
            continue
        if amount > 0:
            found.append((name, amount))
    return tuple(sorted(found))


def pod_count(allocatable: dict) -> int:
    """A node's allocatable pods; 0 when it says none (then no limit is assumed)."""
    try:
        return max(0, int(parse_quantity((allocatable or {}).get("pods", "0"))))
    except ValueError:
        return 0


def pod_extended_requests(spec: dict) -> tuple[tuple[str, int], ...]:
    """Extended requests of a pod, as kube-scheduler's fit counts them: the containers'
    sum or the largest init container, whichever is more, per resource."""
    def requests(container) -> dict:
        resources = container.get("resources") if isinstance(container, dict) else None
        if not isinstance(resources, dict):
            return {}
        limits, asked = resources.get("limits"), resources.get("requests")
        # A limit with no request is the request (the API server defaults a pod so; a pod
        # template is not defaulted, and GPU templates usually set limits only).
        return {**(limits if isinstance(limits, dict) else {}), **(asked if isinstance(asked, dict) else {})}

    def containers(key: str) -> list:
        value = spec.get(key)
        return value if isinstance(value, list) else []

    total: dict[str, int] = {}
    for container in containers("containers"):
        for name, amount in extended_amounts(requests(container)):
            total[name] = total.get(name, 0) + amount
    for container in containers("initContainers"):
        for name, amount in extended_amounts(requests(container)):
            total[name] = max(total.get(name, 0), amount)
    return tuple(sorted(total.items()))


def pod_requests(spec: dict) -> tuple[int, int]:
    """(CPU millicores, memory bytes): the containers' sum or the largest init container,
    whichever is more, plus pod overhead."""
    def requests(container: dict) -> dict:
        return (container.get("resources") or {}).get("requests") or {}

    containers = [requests(c) for c in spec.get("containers") or ()]
    inits = [requests(c) for c in spec.get("initContainers") or ()]
    cpu = max(sum(map(cpu_millis, containers)), max(map(cpu_millis, inits), default=0))
    memory = max(sum(map(memory_bytes, containers)), max(map(memory_bytes, inits), default=0))
    overhead = spec.get("overhead") or {}
    return cpu + cpu_millis(overhead), memory + memory_bytes(overhead)
