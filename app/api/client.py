"""Requests and watch streams over kubernetes-asyncio's ApiClient.

The ApiClient brings config and auth handling (kubeconfig, in-cluster tokens, exec
plugins); bodies stay raw and are decoded with orjson into plain dicts. Every transport
failure is turned into a TransportError here, so callers catch one family.
"""

from __future__ import annotations

import contextlib
import os
from typing import AsyncIterator, Callable, Iterator

import aiohttp
import orjson
import yaml
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from ..core import logs
from . import objects
from .errors import ApiError, ConfigError, Gone, StatusError, TransportError, WatchIdle, status_error
from .objects import EVENTS, LEASES, PODS, ObjectRef, Resource

log = logs.get("api")

# Everything that can go wrong below HTTP: aiohttp's own errors, sockets, timeouts, and
# the client library refusing to send (an exec plugin failing to refresh a token).
_TRANSPORT = (aiohttp.ClientError, OSError, TimeoutError, ApiException, config.ConfigException)

WatchEvent = tuple[str, dict]  # (ADDED, MODIFIED, DELETED or BOOKMARK; the object)


@contextlib.contextmanager
def _transport(what: str) -> Iterator[None]:
    try:
        yield
    except _TRANSPORT as exc:
        raise TransportError(f"{what}: {exc!r}") from exc


def _decode(raw: bytes, what: str) -> dict:
    try:
        decoded = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as exc:
        raise TransportError(f"{what}: answer is not JSON: {exc}") from None
    if not isinstance(decoded, dict):
        raise TransportError(f"{what}: answer is not a JSON object")
    return decoded


class Kube:
    """Built before anything runs; `open()` loads the configuration once the event loop runs."""

    def __init__(self, api: client.ApiClient | None = None, kubeconfig: str = "", context: str = ""):
        self.api = api
        self.kubeconfig = kubeconfig
        self.context = context

    @classmethod
    async def connect(cls, kubeconfig: str = "", context: str = "") -> "Kube":
        kube = cls(None, kubeconfig, context)
        await kube.open()
        return kube

    def config_source(self) -> str | None:
        """The kubeconfig file this client will load; None in a pod with no kubeconfig given."""
        if not self.kubeconfig and not os.environ.get("KUBECONFIG") and os.environ.get("KUBERNETES_SERVICE_HOST"):
            return None
        return self.kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or "~/.kube/config"

    def check_config(self) -> None:
        """ConfigError naming the file and a cause a person understands, before anything runs:
        a kubeconfig that is missing, empty, not YAML, or without the context to use."""
        path = self.config_source()
        if path is None or not self.kubeconfig and os.pathsep in os.environ.get("KUBECONFIG", ""):
            return  # in a pod; or several files merged, which the client library judges
        try:
            with open(os.path.expanduser(path), "rb") as file:
                document = yaml.safe_load(file)
        except FileNotFoundError:
            raise ConfigError(f"kubeconfig {path}: no such file") from None
        except yaml.YAMLError as exc:  # the parser's report spans lines: its problem and where, on one
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(f"kubeconfig {path}: not YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
        except OSError as exc:
            raise ConfigError(f"kubeconfig {path}: cannot be read: {exc.strerror or exc}") from None
        if not document:
            raise ConfigError(f"kubeconfig {path}: the file is empty")
        if not isinstance(document, dict) or not isinstance(document.get("contexts"), list):
            raise ConfigError(f"kubeconfig {path}: not a kubeconfig (no list of contexts)")
        context = self.context or document.get("current-context")
        names = [c.get("name") for c in document["contexts"] if isinstance(c, dict)]
        if not context:
            raise ConfigError(f"kubeconfig {path}: no current-context, and no --context given")
        if context not in names:
            raise ConfigError(f"kubeconfig {path}: no context named {context!r} (it has {', '.join(map(str, names)) or 'none'})")

    async def open(self) -> None:
        """Load the kubeconfig, or the in-cluster credentials; a no-op once open."""
        if self.api is not None:
            return
        kubeconfig, context = self.kubeconfig, self.context
        configuration = client.Configuration()
        in_cluster = self.config_source() is None
        source = "in-cluster" if in_cluster else kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        self.check_config()
        try:
            if in_cluster:
                config.load_incluster_config(client_configuration=configuration)
            else:
                await config.load_kube_config(
                    config_file=kubeconfig or None, context=context or None, client_configuration=configuration
                )
        except (config.ConfigException, OSError, ValueError, TypeError, AttributeError) as exc:
            raise ConfigError(f"cannot load the cluster configuration from {source}: {exc}") from None
        log.info("api client configured", extra={"config": source, "server": configuration.host})
        self.api = client.ApiClient(configuration)

    async def close(self) -> None:
        if self.api is not None:
            await self.api.close()

    # ---- transport -----------------------------------------------------------------

    async def _send(self, method: str, path: str, params: dict, timeout: aiohttp.ClientTimeout,
                    body=None, content_type: str = "application/json"):
        with _transport(f"{method} {path}"):
            return await self.api.call_api(
                path,
                method,
                query_params=list(params.items()),
                header_params={"Accept": "application/json", "Content-Type": content_type},
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=timeout,
            )

    async def _json(self, method: str, path: str, body: dict | list | None, timeout: float, params: dict | None = None,
                    content_type: str = "application/json") -> dict:
        """One request with a JSON body and answer; a non-2xx answer raises StatusError."""
        response = await self._send(method, path, params or {}, aiohttp.ClientTimeout(total=timeout), body,
                                    content_type)
        with _transport(f"{method} {path}"):
            async with response:
                raw = await response.read()
        if not 200 <= response.status < 300:
            raise status_error(response.status, raw)
        return _decode(raw, f"{method} {path}")

    # ---- reading -------------------------------------------------------------------

    async def pages(self, resource: Resource, page_size: int, timeout: float) -> AsyncIterator[tuple[list[dict], str | None]]:
        """The objects of a resource across namespaces a page at a time, following continue
        tokens: (items, resourceVersion), the version set on the last page. A caller that
        consumes each page as it comes holds one page of raw objects at a time, not the list."""
        params = {"limit": str(page_size)}
        while True:
            page = await self._json("GET", resource.path(), None, timeout, params)
            meta = page.get("metadata") or {}
            last = not meta.get("continue")
            yield page.get("items") or [], (meta.get("resourceVersion") or None) if last else None
            if last:
                return
            params = {**params, "continue": meta["continue"]}

    async def watch(self, resource: Resource, resource_version: str | None, server_timeout: int,
                    connect_timeout: float, idle_timeout: float,
                    on_open: Callable[[], None] | None = None) -> AsyncIterator[WatchEvent]:
        """Yield (type, object) until the server closes the stream.

        An ERROR event raises (Gone for 410). A stream silent for idle_timeout raises
        WatchIdle; the caller bounds the stream's total life. Lines are split by hand
        because aiohttp's readline refuses lines over 128 KiB, which one large object makes.
        on_open is called once the server has accepted the watch.
        """
        params = {"watch": "true", "allowWatchBookmarks": "true", "timeoutSeconds": str(server_timeout)}
        if resource_version:
            params["resourceVersion"] = resource_version
        timeout = aiohttp.ClientTimeout(connect=connect_timeout, sock_connect=connect_timeout, sock_read=idle_timeout)
        path = resource.path()
        response = await self._send("GET", path, params, timeout)
        with _transport(f"watch {path}"):
            async with response:
                if response.status != 200:
                    raise status_error(response.status, await response.read())
                if on_open is not None:
                    on_open()
                pending = b""
                while True:
                    try:
                        chunk = await response.content.readany()
                    except TimeoutError:
                        raise WatchIdle(f"watch {path}: nothing for {idle_timeout}s") from None
                    if not chunk:
                        return
                    lines = (pending + chunk).split(b"\n")
                    pending = lines.pop()
                    for line in lines:
                        if line.strip():
                            yield _watch_event(line, path)

    async def reachable(self, timeout: float) -> bool:
        """Does the API server answer at all? GET /version, which every client may read."""
        try:
            await self._json("GET", "/version", None, timeout)
            return True
        except ApiError:
            return False

    # ---- writing -------------------------------------------------------------------

    async def evict(self, namespace: str, name: str, timeout: float, uid: str = "") -> None:
        """POST an Eviction: the API server refuses it (429) while a PDB forbids it, and (409)
        when `uid` is given and the pod of that name is no longer that one."""
        await self._json("POST", PODS.path(namespace, name, "eviction"), objects.eviction(namespace, name, uid),
                         timeout)

    async def annotate_pod(self, namespace: str, name: str, annotations: dict, timeout: float) -> None:
        await self.annotate(PODS, namespace, name, annotations, timeout)

    async def annotate(self, resource: Resource, namespace: str, name: str, annotations: dict,
                       timeout: float) -> None:
        """Merge annotations into an object; a None value removes one."""
        await self._json("PATCH", resource.path(namespace, name), {"metadata": {"annotations": annotations}}, timeout,
                         content_type="application/merge-patch+json")

    async def create(self, resource: Resource, namespace: str, body: dict, timeout: float) -> dict:
        return await self._json("POST", resource.path(namespace), body, timeout)

    async def scale(self, resource: Resource, namespace: str, name: str, replicas: int, uid: str,
                    timeout: float) -> dict:
        """Set spec.replicas of the object with this uid: a JSON patch whose first operation
        tests the uid, so an object recreated under the name is left alone (422)."""
        patch = [{"op": "test", "path": "/metadata/uid", "value": uid},
                 {"op": "replace", "path": "/spec/replicas", "value": replicas}]
        return await self._json("PATCH", resource.path(namespace, name), patch, timeout,
                                content_type="application/json-patch+json")

    async def delete(self, resource: Resource, namespace: str, name: str, uid: str, timeout: float) -> None:
        """Delete the object with this uid (409 if the name is another's now); its dependents
        go in the background, by the garbage collector."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background",
                "preconditions": {"uid": uid}}
        await self._json("DELETE", resource.path(namespace, name), body, timeout)

    async def post_event(self, about: ObjectRef, event_type: str, reason: str, message: str, timeout: float) -> None:
        body = objects.event(about, event_type, reason, message)
        await self._json("POST", EVENTS.path(about.namespace), body, timeout)

    async def get_lease(self, namespace: str, name: str, timeout: float) -> dict:
        return await self._json("GET", LEASES.path(namespace, name), None, timeout)

    async def create_lease(self, namespace: str, name: str, spec: dict, timeout: float) -> dict:
        return await self._json("POST", LEASES.path(namespace), objects.lease(namespace, name, spec), timeout)

    async def get(self, resource: Resource, namespace: str, name: str, timeout: float) -> dict:
        return await self._json("GET", resource.path(namespace, name), None, timeout)

    async def replace(self, resource: Resource, obj: dict, timeout: float) -> dict:
        """PUT the object back, guarded by the resourceVersion it carries (409 if stale)."""
        meta = obj.get("metadata") or {}
        return await self._json("PUT", resource.path(meta.get("namespace", ""), meta.get("name", "")), obj, timeout)

    async def replace_lease(self, lease: dict, spec: dict, timeout: float) -> dict:
        """PUT the lease with a new spec, guarded by the resourceVersion it was read at (409 if stale)."""
        meta = lease.get("metadata") or {}
        path = LEASES.path(meta.get("namespace", ""), meta.get("name", ""))
        return await self._json("PUT", path, {**lease, "spec": spec}, timeout)


def _watch_event(line: bytes, path: str) -> WatchEvent:
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise TransportError(f"watch {path}: event is not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise TransportError(f"watch {path}: event is not a JSON object")
    kind, obj = event.get("type"), event.get("object")
    if not isinstance(obj, dict):
        obj = {}
    if kind == "ERROR":
        code = obj.get("code")
        message = str(obj.get("message") or "watch error")
        if code == 410:
            raise Gone(410, message)
        raise StatusError(code if isinstance(code, int) else 500, message)
    return str(kind), obj
