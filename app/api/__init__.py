"""The only layer that talks to the Kubernetes API server.

It owns every request path (`objects.Resource`), every body it sends (`objects`), the
watch stream format, and one error family (`errors`): whatever goes wrong on the wire
reaches callers as an `ApiError`, never as an aiohttp or socket exception.
"""

from .client import Kube
from .errors import ApiError, ConfigError, Gone, StatusError, TransportError, WatchIdle
from .objects import EVENTS, LEASES, MUTATING_WEBHOOKS, PODS, SECRETS, ObjectRef, Resource, micro_time

__all__ = [
    "EVENTS", "LEASES", "MUTATING_WEBHOOKS", "PODS", "SECRETS", "ApiError", "ConfigError", "Gone", "Kube", "ObjectRef", "Resource", "StatusError",
    "TransportError", "WatchIdle", "micro_time",
]
