"""One settings object, filled from CLI flags and SPOT_EXTENDER_* environment variables.

Each field declares its flag, env var, parser and help in one place, so `--help`, the
environment and docs/configuration.md cannot drift apart. A flag beats the env var, which beats
the default.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import ipaddress
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .vocabulary import (
    DEFAULT_CAPACITY_LABELS,
    DEFAULT_DRAIN_NOTICES,
    DEFAULT_GOING_AWAY_TAINTS,
    DEFAULT_SPOT_TOLERATIONS,
    DEFAULT_SPREAD_KEYS,
    Capacity,
)

ENV_PREFIX = "SPOT_EXTENDER_"

MAX_NOTICE = 3600.0  # a longer notice is no spot notice, and a bound keeps deadlines sane
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

GOING_AWAY_SIGNALS = ("taints", "cordon", "not-ready", "deleting")


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


def _described(parse: Callable, accepts: str, duration: bool = False) -> Callable:
    """What --help says a parser takes; `duration`: its values are seconds, shown as 3m."""
    parse.accepts = accepts  # type: ignore[attr-defined]
    parse.duration = duration  # type: ignore[attr-defined]
    return parse


TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def boolean_word(text: object) -> bool | None:
    """True or False for any spelling flags and annotations accept alike; None for other text."""
    value = str(text).strip().lower()
    return True if value in TRUE_WORDS else False if value in FALSE_WORDS else None


def parse_bool(text: str | bool) -> bool:
    if isinstance(text, bool):
        return text
    value = boolean_word(text)
    if value is None:
        raise SettingsError(f"expected true or false, got {text!r}")
    return value


_described(parse_bool, "true or false; also yes/no, on/off, 1/0")


def _auto_or_bool(true: str, false: str) -> Callable[[str], str]:
    """auto, or any spelling parse_bool takes, kept as `true`/`false` (what the code compares)."""
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value == "auto":
            return value
        try:
            return true if parse_bool(value) else false
        except SettingsError:
            raise SettingsError(f"expected auto, true or false, got {text!r}") from None

    return _described(parse, "auto, true or false")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str | float) -> float:
    """'30s', '5m', '250ms' or a bare number of seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    match = _DURATION.match(text)
    if not match:
        raise SettingsError(f"expected a duration like 30s, 5m or 250ms, got {text!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


_described(parse_duration, "a duration: 250ms, 30s, 5m, 2h", duration=True)


def show_duration(seconds: float) -> str:
    """Seconds as the shortest duration parse_duration reads back: 180.0 -> 3m."""
    for unit, size in (("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and (seconds / size).is_integer():
            return f"{seconds / size:.0f}{unit}"
    if (seconds * 1000).is_integer():
        return f"{seconds * 1000:.0f}ms"
    return f"{seconds:g}s"


def parse_positive_duration(text: str | float) -> float:
    value = parse_duration(text)
    if value <= 0:
        raise SettingsError(f"expected a duration above zero, got {text!r}")
    return value


_described(parse_positive_duration, "a duration above zero: 250ms, 30s, 5m, 2h", duration=True)


def parse_list(text: str | tuple) -> tuple[str, ...]:
    if isinstance(text, tuple):
        return text
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _int_at_least(least: int) -> Callable[[str | int], int]:
    def parse(text: str | int) -> int:
        try:
            value = int(text)
        except (TypeError, ValueError):
            raise SettingsError(f"expected a whole number, got {text!r}") from None
        if value < least:
            raise SettingsError(f"expected a number >= {least}, got {value}")
        return value

    return _described(parse, f"a whole number, at least {least}")


parse_non_negative_int = _int_at_least(0)


def parse_port(text: str | int) -> int:
    value = parse_non_negative_int(text)
    if not 0 < value < 65536:
        raise SettingsError(f"expected a port 1-65535, got {value}")
    return value


_described(parse_port, "a port, 1-65535")


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise SettingsError(f"expected one of {', '.join(allowed)}, got {text!r}")
        return text

    return _described(parse, f"one of {', '.join(allowed)}")


def _choices(*allowed: str) -> Callable[[str | tuple], tuple[str, ...]]:
    def parse(text: str | tuple) -> tuple[str, ...]:
        values = parse_list(text)
        bad = [v for v in values if v not in allowed]
        if bad:
            raise SettingsError(f"unknown {', '.join(map(repr, bad))}; expected some of {', '.join(allowed)}")
        return values

    return _described(parse, f"a comma-separated list of {', '.join(allowed)}")


def _path(text: str) -> str:
    if not text.startswith("/") or any(c.isspace() for c in text):
        raise SettingsError(f"an HTTP path must start with '/' and hold no spaces, got {text!r}")
    return text


def _text(text: str) -> str:
    """Free text that ends up in requests and log lines: no control characters."""
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise SettingsError(f"control characters are not allowed, got {text!r}")
    return text


def _host(text: str) -> str:
    if not text or any(c.isspace() for c in text):
        raise SettingsError(f"expected an address or host name, got {text!r}")
    return text


def _file_or_empty(text: str) -> str:
    if text and not os.path.isfile(text):
        raise SettingsError(f"{'a directory, not a file' if os.path.isdir(text) else 'file not found'}: {text!r}")
    return text


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# A label or taint key: an optional DNS-subdomain prefix and a name of at most 63 characters.
_QUALIFIED_NAME = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def _matching(pattern: re.Pattern, what: str, empty_ok: bool = False) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if (text or not empty_ok) and not pattern.match(text):
            raise SettingsError(f"expected {what}, got {text!r}")
        return text

    return parse


def _list_of(item: Callable[[str], str]) -> Callable[[str | tuple], tuple[str, ...]]:
    def parse(text: str | tuple) -> tuple[str, ...]:
        return tuple(item(value) for value in parse_list(text))

    return parse


def _cert_host(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if not _DNS_SUBDOMAIN.match(text):
        raise SettingsError(f"{text!r} is neither a DNS name nor an IP address")
    return text


def parse_capacity_rule(rule: str) -> str:
    """'key=value:class', checked; Settings.capacity_rules splits it."""
    selector, sep, cls = rule.rpartition(":")
    key, eq, _value = selector.partition("=")
    if not sep or not eq or not _QUALIFIED_NAME.match(key) or cls not in Capacity.CLASSES:
        raise SettingsError(f"capacity label rule {rule!r} is not key=value:class with class in {', '.join(Capacity.CLASSES)}")
    return rule


def parse_notice_rule(rule: str) -> str:
    """'taint-key=duration', checked; Settings.drain_notices splits it."""
    key, eq, duration = rule.partition("=")
    if not eq or not _QUALIFIED_NAME.match(key):
        raise SettingsError(f"drain notice {rule!r} is not taint-key=duration")
    seconds = parse_duration(duration)
    if seconds > MAX_NOTICE:
        raise SettingsError(f"drain notice {rule!r} is over {MAX_NOTICE:.0f}s")
    return rule


def parse_max_surge(text: str | int) -> str:
    """'3' or '25%': checked, kept as written (policy.scaled reads it against R)."""
    value = str(text).strip()
    number = value[:-1] if value.endswith("%") else value
    if not number.isdigit() or int(number) < 1 or value.endswith("%") and int(number) > 1000:
        raise SettingsError(f"expected a count of at least 1 or a percentage of 1-1000%, got {text!r}")
    return value


_described(parse_max_surge, "a count (at least 1) or a percentage (1-1000%)")


def parse_toleration(rule: str) -> str:
    """'key[=value]:effect', checked; Settings.spot_toleration_rules splits it."""
    key, _, effect = _key_value_tail(rule)
    if ":" not in rule or not _QUALIFIED_NAME.match(key) or effect not in TAINT_EFFECTS:
        raise SettingsError(f"toleration {rule!r} is not key[=value]:effect with effect in {', '.join(TAINT_EFFECTS)}")
    return rule


def _int_between(least: int, most: int) -> Callable[[str | int], int]:
    at_least = _int_at_least(least)

    def parse(text: str | int) -> int:
        value = at_least(text)
        if value > most:
            raise SettingsError(f"expected a number <= {most}, got {value}")
        return value

    return _described(parse, f"a whole number, {least}-{most}")


def _duration_at_most(most: float) -> Callable[[str | float], float]:
    def parse(text: str | float) -> float:
        value = parse_duration(text)
        if value > most:
            raise SettingsError(f"expected a duration of at most {most:g}s, got {text!r}")
        return value

    return _described(parse, f"a duration of at most {show_duration(most)}", duration=True)


_namespaces = _list_of(_matching(_DNS_LABEL, "a namespace name"))


def _fraction(text: str | float) -> float:
    """A number above 0 and at most 1."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise SettingsError(f"expected a number like 0.3, got {text!r}") from None
    if not 0 < value <= 1:
        raise SettingsError(f"expected a number above 0 and at most 1, got {text!r}")
    return value


_described(_fraction, "a number above 0 and at most 1")


def _setting(default: Any, parse: Callable[[Any], Any], help: str, metavar: str | None = None):
    return field(default=default, metadata={"parse": parse, "help": help, "metavar": metavar})


@dataclass(frozen=True)
class Settings:
    # HTTP service
    host: str = _setting("0.0.0.0", _host, "address to listen on")
    port: int = _setting(8888, parse_port, "port to listen on")
    filter_path: str = _setting("/filter", _path, "path of the filter verb (urlPrefix path + filterVerb)")
    prioritize_path: str = _setting(
        "/prioritize", _path, "path of the prioritize verb (urlPrefix path + prioritizeVerb)"
    )
    mutate_path: str = _setting("/mutate", _path, "path of the admission webhook (the MutatingWebhookConfiguration's path)")
    tls_cert_file: str = _setting(
        "", _file_or_empty, "PEM certificate (chain) to serve HTTPS with; reloaded when it changes"
    )
    tls_key_file: str = _setting("", _file_or_empty, "PEM private key for --tls-cert-file")
    tls_client_ca_file: str = _setting(
        "",
        _file_or_empty,
        "PEM CA bundle: the extender verbs, the webhook and /debug/workloads then require a client "
        "certificate it signed (kube-scheduler's extender tlsConfig certFile/keyFile, kube-apiserver's "
        "admission kubeConfigFile), others get a 403; probes and /metrics stay open. Needs --tls-cert-file or "
        "--webhook-cert-secret",
    )
    tls_reload_interval: float = _setting(
        10.0, parse_positive_duration, "how often to check the TLS files for changes"
    )
    webhook_cert_secret: str = _setting(
        "",
        _matching(_DNS_SUBDOMAIN, "a Secret name", empty_ok=True),
        "Secret in this process's namespace ($POD_NAMESPACE, else kube-system) for a self-managed CA and "
        "serving certificate: spot-extender issues and renews them there, serves HTTPS with them and writes "
        "the CA into --webhook-configuration's caBundle; empty: off (use --tls-cert-file)",
    )
    webhook_configuration: str = _setting(
        "spot-extender",
        _matching(_DNS_SUBDOMAIN, "a MutatingWebhookConfiguration name", empty_ok=True),
        "MutatingWebhookConfiguration whose caBundle --webhook-cert-secret keeps; empty: none",
    )
    cert_hosts: tuple = _setting(
        (),
        _list_of(_cert_host),
        "DNS names and IP addresses of the self-managed serving certificate; empty: "
        "spot-extender.<namespace>.svc and spot-extender.<namespace>.svc.cluster.local",
        "HOSTS",
    )
    cert_validity: float = _setting(
        90 * 86400.0, parse_positive_duration, "life of a self-managed serving certificate (renewed at 2/3 of it)"
    )
    ca_validity: float = _setting(
        3650 * 86400.0, parse_positive_duration,
        "life of the self-managed CA (renewed at 2/3 of it, trusted beside the new one until it expires)",
    )
    max_body_bytes: int = _setting(
        64 * 1024 * 1024,
        _int_at_least(1024),
        "largest request body accepted (a full NodeList of 5000 nodes is about 27 MB)",
    )
    # Cluster access
    kubeconfig: str = _setting(
        "", _file_or_empty, "kubeconfig file; empty: in-cluster config, else $KUBECONFIG or ~/.kube/config"
    )
    context: str = _setting("", _text, "kubeconfig context (default: the current one)")
    # Policy
    default_floor: int = _setting(
        1, parse_non_negative_int, "replicas per workload kept on on-demand nodes unless overridden"
    )
    floor_from_max_unavailable: bool = _setting(
        False, parse_bool, "raise the floor to R - maxUnavailable for PDBs that only set maxUnavailable"
    )
    unknown_class: str = _setting(
        "on-demand", _choice(*Capacity.CLASSES), "how to treat nodes with no recognised capacity label"
    )
    capacity_labels: tuple = _setting(
        DEFAULT_CAPACITY_LABELS,
        _list_of(parse_capacity_rule),
        "node label rules key=value:class, first match wins (replaces the built-in list)",
        "RULES",
    )
    going_away_taints: tuple = _setting(
        DEFAULT_GOING_AWAY_TAINTS,
        _list_of(_matching(_QUALIFIED_NAME, "a taint key")),
        "taint keys that mean a node is about to go (replaces the built-in list)",
        "KEYS",
    )
    going_away_signals: tuple = _setting(
        GOING_AWAY_SIGNALS,
        _choices(*GOING_AWAY_SIGNALS),
        f"which going-away signals are on: {','.join(GOING_AWAY_SIGNALS)}",
        "SIGNALS",
    )
    excluded_namespaces: tuple = _setting(
        ("kube-system",), _namespaces, "namespaces whose pods pass untouched", "NAMESPACES"
    )
    floor_hold: float = _setting(
        90.0,
        parse_duration,
        "extender only: how long a floor pod whose candidates hold no on-demand node is refused spot while "
        "an on-demand node the index knows could take it (kube-scheduler samples nodes: a retry sees "
        "others); then it falls back to spot. 0: no hold",
    )
    inflight_ttl: float = _setting(
        30.0,
        parse_positive_duration,
        "how long a pod sent to on-demand counts toward its floor before its binding is seen",
    )
    # Admission webhook: roles written into pod specs
    webhook_owner_wait: float = _setting(
        0.2,
        _duration_at_most(1.0),
        "how long the webhook waits for the watch to show a new pod's owner (a ReplicaSet just created) "
        "before it decides conservatively: floor",
    )
    webhook_confirm_wait: float = _setting(
        0.5,
        _duration_at_most(1.0),
        "how long the webhook waits for the watch to show the floor pods it admitted, when counting "
        "them is what would make the next pod spot; those still unseen then count for nothing (a forged "
        "review never shows) and the pod becomes floor",
    )
    admission_ttl: float = _setting(
        10.0,
        parse_positive_duration,
        "how long a pod this replica admitted counts toward its role before the watch shows it",
    )
    spot_preference_weight: int = _setting(
        100, _int_between(1, 100), "weight of the preferred node affinity for spot the webhook gives spot pods"
    )
    spot_tolerations: tuple = _setting(
        DEFAULT_SPOT_TOLERATIONS,
        _list_of(parse_toleration),
        "key[=value]:effect taints of spot nodes that spot pods get a toleration for (replaces the built-in list)",
        "TAINTS",
    )
    spread_topology_keys: tuple = _setting(
        DEFAULT_SPREAD_KEYS,
        _list_of(_matching(_QUALIFIED_NAME, "a label key")),
        "node labels spot pods spread over (topologySpreadConstraints, ScheduleAnyway); floor pods "
        "spread over zones",
        "KEYS",
    )
    floor_pending_timeout: float = _setting(
        180.0,
        parse_positive_duration,
        "how long a floor pod may stay Pending (no on-demand node has room, none was provisioned) before "
        "it is evicted so that its replacement is admitted as a spot pod; the floor is repaired once "
        "on-demand has room. Only pods kube-scheduler marked Unschedulable count: pods held by a scheduling "
        "gate or waiting for their volume claims are left alone",
    )
    seek_spot: str = _setting(
        "auto",
        _auto_or_bool("on", "off"),
        "move a spot pod running on on-demand back even when no spot node has room, its replacement "
        "requiring spot so that an autoscaler adds a spot node for it: auto is true while some node "
        "carries karpenter.sh/nodepool, i.e. Karpenter provisions this cluster",
    )
    spot_seek_timeout: float = _setting(
        180.0,
        parse_positive_duration,
        "how long a spot seek's replacement may stay Pending (the autoscaler found no spot) before it "
        "is evicted, its replacement again only preferring spot, and the workload's next seek backed off",
    )
    # Watches
    watch_timeout: float = _setting(
        300.0, parse_positive_duration, "server-side timeoutSeconds of each watch (jittered up to +20%%)"
    )
    watch_idle_timeout: float = _setting(
        90.0, parse_positive_duration, "restart a watch that sent nothing, not even a bookmark, for this long"
    )
    request_timeout: float = _setting(
        30.0, parse_positive_duration, "timeout of each request to the API server, and of connecting a watch"
    )
    list_page_size: int = _setting(500, _int_at_least(1), "objects per page when listing")
    backoff_max: float = _setting(
        30.0, parse_positive_duration, "longest wait between restarts of a failing background task (watches, "
        "leader election, controller loops, TLS reload)"
    )
    optional_kind_recheck: float = _setting(
        60.0,
        parse_positive_duration,
        "how often to look again for an optional kind whose API is not served (a CRD not installed)",
    )
    # Controller (run by the leader)
    drain: bool = _setting(True, parse_bool, "evict managed pods from spot nodes that are going away")
    drain_notice: tuple = _setting(
        DEFAULT_DRAIN_NOTICES,
        _list_of(parse_notice_rule),
        "TAINT=DURATION: the notice a going-away taint gives; the drain is paced over it in waves. "
        "A node's shortest notice counts and a cordon does not shorten it; other signals drain at once. "
        "Replaces the built-in list; empty: every drain at once",
        "RULES",
    )
    drain_margin: float = _setting(
        5.0,
        _duration_at_most(600.0),
        "a paced drain issues each eviction this long before the notice ends, "
        "beyond the pod's terminationGracePeriodSeconds",
    )
    dry_run: bool = _setting(False, parse_bool, "log and count evictions and patches, do none")
    rebalance_interval: float = _setting(
        30.0,
        parse_positive_duration,
        "how often floors and surplus on-demand replicas are checked (also on changes)",
    )
    move_cooldown: float = _setting(
        30.0, parse_duration, "least time between two moves of one workload back to spot"
    )
    move_backoff_max: float = _setting(
        3600.0, parse_duration, "cap of the cooldown doubling after each move in a row whose replacement did not "
        "land where it should (a floor repair's off on-demand, a return to spot's on on-demand again)"
    )
    max_moves_per_minute: int = _setting(
        30, parse_non_negative_int, "cluster-wide limit on evictions that move replicas (not reclaims)"
    )
    eviction_concurrency: int = _setting(20, _int_at_least(1), "evictions in flight at once")
    surge: str = _setting(
        "annotated",
        _choice("annotated", "all", "off"),
        "which Deployments and Rollouts get surge pods when a node with a notice goes away, so that "
        "replacements are Ready before the doomed pods are evicted: annotated (spot-extender.io/surge: "
        "\"true\"), all, or off. Never StatefulSets",
    )
    max_surge: str = _setting(
        "25%",
        parse_max_surge,
        "most surge pods per workload at once: a count or a percentage of its replicas, rounded up, at "
        "least 1; spot-extender.io/max-surge overrides it per workload",
        "AMOUNT",
    )
    controller_namespaces: tuple = _setting(
        (), _namespaces, "namespaces the controller acts in; empty: all but the excluded ones", "NAMESPACES"
    )
    # Leader election: every replica serves the extender; only the leader evicts or patches.
    leader_elect: bool = _setting(
        True, parse_bool, "elect a leader (a Lease) to run the controller loops; false: this replica runs them"
    )
    lease_name: str = _setting(
        "spot-extender", _matching(_DNS_SUBDOMAIN, "a DNS subdomain name"), "name of the coordination.k8s.io Lease"
    )
    lease_namespace: str = _setting(
        "",
        _matching(_DNS_LABEL, "a namespace name", empty_ok=True),
        "namespace of the Lease; empty: $POD_NAMESPACE, else kube-system",
    )
    identity: str = _setting(
        "", _text, "this replica's holder identity; empty: $POD_NAME or hostname, plus a random suffix"
    )
    lease_duration: float = _setting(15.0, parse_positive_duration, "how long a lease holds without renewal")
    renew_deadline: float = _setting(
        10.0, parse_positive_duration, "the leader gives up leading if it cannot renew for this long"
    )
    retry_period: float = _setting(
        2.0, parse_positive_duration, "how often to try to acquire or renew the lease; must be under "
        "--renew-deadline, itself under --lease-duration"
    )
    # Fleet metrics (fleet.py)
    spot_price_ratio: float = _setting(
        0.3,
        _fraction,
        "spot price as a fraction of on-demand, for spot_extender_estimated_savings_ratio (every replica "
        "taken to be the same size)",
        "RATIO",
    )
    workload_metrics: str = _setting(
        "auto",
        _auto_or_bool("true", "false"),
        "export per-workload series (7 per workload, labelled with namespace and workload names) on /metrics, "
        "which stays open: auto exports them unless --tls-client-ca-file guards /debug/workloads, which holds "
        "the same inventory; false for huge clusters",
    )
    # Logging
    log_format: str = _setting("json", _choice("json", "text"), "log line format")
    log_level: str = _setting("info", _choice("debug", "info", "warning", "error"), "log level")

    def __post_init__(self) -> None:
        # Each value was checked on its own; these checks span two settings and name both.
        if len({self.filter_path, self.prioritize_path, self.mutate_path}) < 3:
            raise SettingsError("--filter-path, --prioritize-path and --mutate-path must differ")
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise SettingsError("--tls-cert-file and --tls-key-file go together")
        if self.tls_client_ca_file and not (self.tls_cert_file or self.webhook_cert_secret):
            raise SettingsError("--tls-client-ca-file needs HTTPS: --tls-cert-file and --tls-key-file, "
                                "or --webhook-cert-secret")
        if self.webhook_cert_secret and self.tls_cert_file:
            raise SettingsError("--webhook-cert-secret and --tls-cert-file are two sources of one certificate: "
                                "pick one")
        if self.cert_validity * 3 > self.ca_validity:
            raise SettingsError("--ca-validity must be at least 3 x --cert-validity, so a CA outlives the "
                                "certificates it signs through a rotation")
        if not self.retry_period < self.renew_deadline < self.lease_duration:
            raise SettingsError("need --retry-period < --renew-deadline < --lease-duration")

    @property
    def per_workload_metrics(self) -> bool:
        """--workload-metrics resolved: auto keeps the inventory off the open /metrics when
        client certificates guard /debug/workloads."""
        if self.workload_metrics == "auto":
            return not self.tls_client_ca_file
        return self.workload_metrics == "true"

    @property
    def drain_notices(self) -> dict[str, float]:
        """Seconds of notice per going-away taint key."""
        return {key: parse_duration(duration) for key, _, duration in (r.partition("=") for r in self.drain_notice)}

    @property
    def spot_toleration_rules(self) -> tuple[tuple[str, str, str], ...]:
        """(key, value, effect) per spot taint to tolerate; value "" means any value."""
        return tuple(map(_key_value_tail, self.spot_tolerations))

    @property
    def capacity_rules(self) -> tuple[tuple[str, str, str], ...]:
        """(label key, value, class) per rule, in order; the first that matches wins."""
        return tuple(map(_key_value_tail, self.capacity_labels))


def _key_value_tail(rule: str) -> tuple[str, str, str]:
    """'key=value:tail' (the value optional) as (key, value, tail); checked when parsed."""
    selector, _, tail = rule.rpartition(":")
    key, _, value = selector.partition("=")
    return key, value, tail


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _show_default(value: Any, parse: Callable) -> str:
    if getattr(parse, "duration", False) and isinstance(value, float):
        return show_duration(value)
    if isinstance(value, tuple):
        if not value:
            return "none"
        return ",".join(value) if len(value) <= 3 else f"{len(value)} built-in entries, see docs/configuration.md"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if value != "" else "none"


# The first setting of each section of --help, in the order of Settings.
SECTIONS = {
    "host": "HTTP service and TLS",
    "kubeconfig": "cluster access",
    "default_floor": "placement policy",
    "webhook_owner_wait": "admission webhook: roles written into pod specs",
    "watch_timeout": "watches",
    "drain": "controller (run by the leader)",
    "leader_elect": "leader election",
    "spot_price_ratio": "fleet metrics",
    "log_format": "logging",
}


def _metavar(name: str, parse: Callable) -> str:
    if parse is parse_bool:
        return "BOOL"
    if getattr(parse, "duration", False):
        return "DURATION"
    if "whole number" in getattr(parse, "accepts", ""):
        return "N"
    return name.upper()


def add_arguments(parser: argparse.ArgumentParser, only: frozenset[str] | None = None) -> None:
    """Every setting as a flag, in sections; `only`: just these settings."""
    group = parser
    for f in dataclasses.fields(Settings):
        if f.name in SECTIONS:
            group = parser.add_argument_group(SECTIONS[f.name])
        if only is not None and f.name not in only:
            continue
        meta = f.metadata
        parse = meta["parse"]
        is_bool = parse is parse_bool
        accepts = getattr(parse, "accepts", "")
        group.add_argument(
            _flag(f.name),
            dest=f.name,
            default=None,
            metavar=meta["metavar"] or _metavar(f.name, parse),
            nargs="?" if is_bool else None,
            const="true" if is_bool else None,
            # argparse formats help with %: a percentage in it is a literal one.
            help=(f"{meta['help']}" + (f" ({accepts})" if accepts else "")
                  + f" [env {env_name(f.name)}; default {_show_default(f.default, parse)}]").replace("%", "%%"),
        )


def from_sources(args: argparse.Namespace | None = None, environ: dict | None = None) -> Settings:
    """Build Settings from parsed flags, then env vars, then defaults. An environment
    variable with our prefix that names no setting is an error, with the nearest name."""
    environ = os.environ if environ is None else environ
    _check_environment(environ)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        raw = getattr(args, f.name, None) if args is not None else None
        source = _flag(f.name)
        if raw is None:
            raw = environ.get(env_name(f.name))
            source = env_name(f.name)
            if isinstance(raw, str) and _SERVICE_LINK_VALUE.match(raw):
                raw = None  # kubelet's link to a Service named spot-extender, not a setting
        if raw is None:
            continue
        try:
            values[f.name] = f.metadata["parse"](raw)
        except SettingsError as exc:
            raise SettingsError(f"{source}: {exc}") from None
    return Settings(**values)


# What kubelet injects for a Service named spot-extender in the pod's namespace
# (enableServiceLinks), and what the build tooling reads: none of it is a setting.
_SERVICE_LINK_NAME = re.compile(ENV_PREFIX + r"(SERVICE_HOST|SERVICE_PORT(_\w+)?|PORT_\d+_(TCP|UDP|SCTP)(_\w+)?)$")
_SERVICE_LINK_VALUE = re.compile(r"^(tcp|udp|sctp)://")
NOT_SETTINGS = frozenset({ENV_PREFIX + "CACHE", ENV_PREFIX + "BUILD_JOBS"})


def _check_environment(environ) -> None:
    known = {env_name(f.name) for f in dataclasses.fields(Settings)}
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in known or name in NOT_SETTINGS or _SERVICE_LINK_NAME.match(name):
            continue
        nearest = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"; did you mean {nearest[0]}?" if nearest else ""
        raise SettingsError(f"{name}: no such setting{hint}")
