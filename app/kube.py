"""The only module that talks to the Kubernetes API server.

Requests go through kubernetes-asyncio's ApiClient for its config and auth handling
(kubeconfig, in-cluster tokens, exec plugins), but bodies stay raw: list results and
watch events are decoded with orjson into plain dicts.
"""

from __future__ import annotations

import os
from typing import AsyncIterator

import aiohttp
import orjson
from kubernetes_asyncio import client, config

from . import logs

log = logs.get("kube")


class KubeError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Gone(KubeError):
    """410: the resourceVersion is too old; the caller must list again."""


def _error(status: int, body: bytes) -> KubeError:
    try:
        message = orjson.loads(body).get("message", "")
    except (orjson.JSONDecodeError, AttributeError):
        message = body[:200].decode("utf-8", "replace")
    return (Gone if status == 410 else KubeError)(status, message)


class Kube:
    def __init__(self, api: client.ApiClient):
        self.api = api

    @classmethod
    async def connect(cls, kubeconfig: str = "", context: str = "") -> "Kube":
        configuration = client.Configuration()
        if not kubeconfig and not os.environ.get("KUBECONFIG") and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)
            source = "in-cluster"
        else:
            await config.load_kube_config(
                config_file=kubeconfig or None, context=context or None, client_configuration=configuration
            )
            source = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        log.info("api client configured", extra={"config": source, "server": configuration.host})
        return cls(client.ApiClient(configuration))

    async def close(self) -> None:
        await self.api.close()

    async def _request(
        self,
        method: str,
        path: str,
        params: dict,
        timeout: aiohttp.ClientTimeout,
        body=None,
        content_type: str = "application/json",
    ):
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

    async def get_json(self, path: str, params: dict, timeout: float) -> dict:
        return await self.send_json("GET", path, None, timeout, params)

    async def send_json(
        self,
        method: str,
        path: str,
        body: dict | None,
        timeout: float,
        params: dict | None = None,
        content_type: str = "application/json",
    ) -> dict:
        """One request with a JSON body and answer; a non-2xx answer raises KubeError.
        For PATCH pass content_type application/merge-patch+json."""
        response = await self._request(
            method, path, params or {}, aiohttp.ClientTimeout(total=timeout), body, content_type
        )
        async with response:
            raw = await response.read()
            if not 200 <= response.status < 300:
                raise _error(response.status, raw)
        return orjson.loads(raw) if raw else {}

    async def watch(
        self, path: str, params: dict, connect_timeout: float, idle_timeout: float
    ) -> AsyncIterator[dict]:
        """Yield decoded watch events until the server closes the stream.

        The client read timeout ends a stream that goes silent; the caller bounds
        the stream's total life. Lines are split by hand because aiohttp's readline
        refuses lines over 128 KiB, and a large object makes one line that long.
        """
        timeout = aiohttp.ClientTimeout(connect=connect_timeout, sock_connect=connect_timeout, sock_read=idle_timeout)
        response = await self._request("GET", path, {**params, "watch": "true"}, timeout)
        async with response:
            if response.status != 200:
                raise _error(response.status, await response.read())
            pending = b""
            while True:
                chunk = await response.content.readany()
                if not chunk:
                    return
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    if line.strip():
                        yield orjson.loads(line)

    async def evict(self, namespace: str, name: str, timeout: float) -> None:
        """POST an Eviction: the API server refuses it (429) while a PDB forbids it."""
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace}}
        await self.send_json("POST", f"/api/v1/namespaces/{namespace}/pods/{name}/eviction", body, timeout)

    async def annotate_pod(self, namespace: str, name: str, annotations: dict, timeout: float) -> None:
        await self.send_json(
            "PATCH",
            f"/api/v1/namespaces/{namespace}/pods/{name}",
            {"metadata": {"annotations": annotations}},
            timeout,
            content_type="application/merge-patch+json",
        )

    async def post_event(self, namespace: str, event: dict, timeout: float) -> None:
        await self.send_json("POST", f"/api/v1/namespaces/{namespace}/events", event, timeout)
