"""One error family for everything the API layer can fail with."""

from __future__ import annotations

import orjson


class ApiError(Exception):
    """A request to the API server failed. `status` is the HTTP status, None when no answer came."""

    status: int | None = None


class StatusError(ApiError):
    """The server answered with a non-2xx status."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Gone(StatusError):
    """410: the resourceVersion is too old; the caller must list again."""


class TransportError(ApiError):
    """No usable answer: connection refused or reset, a timeout, a stream cut short, a body
    that does not decode."""


class ConfigError(ApiError):
    """No usable cluster configuration: the kubeconfig or in-cluster credentials cannot be loaded."""


class WatchIdle(TransportError):
    """A watch stream sent nothing, not even a bookmark, for the idle timeout."""


def status_error(status: int, body: bytes) -> StatusError:
    try:
        message = orjson.loads(body).get("message", "")
    except (orjson.JSONDecodeError, AttributeError):
        message = body[:200].decode("utf-8", "replace")
    return (Gone if status == 410 else StatusError)(status, message)
