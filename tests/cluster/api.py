"""A small synchronous REST client for tests and the demo.

Deliberately separate from the product's client: end-to-end tests read the API server
through this, never through the extender's own code or view.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Iterator


class ApiError(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


class Api:
    def __init__(self, server: str, token: str, ca_file: str | None = None, timeout: float = 30.0):
        self.server = server.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=ca_file) if ca_file else ssl._create_unverified_context()

    def request(self, method: str, path: str, body: Any = None, params: dict | None = None,
                content_type: str = "application/json") -> Any:
        url = self.server + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self.context, timeout=self.timeout) as resp:
                raw = resp.read()
                is_json = "json" in resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, exc.read().decode("utf-8", "replace")) from None
        if not raw:
            return None
        return json.loads(raw) if is_json else raw.decode("utf-8", "replace")

    def watch(self, path: str, timeout: float, **params) -> Iterator[dict]:
        """Watch events of a collection, decoded, until the server ends the stream or
        nothing arrives for `timeout` seconds (the socket read times out)."""
        query = urllib.parse.urlencode({**params, "watch": "1", "allowWatchBookmarks": "false"})
        req = urllib.request.Request(f"{self.server}{path}?{query}")
        req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, context=self.context, timeout=timeout) as resp:
            for line in resp:
                if line.strip():
                    yield json.loads(line)

    def get(self, path: str, **params) -> Any:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def delete(self, path: str, **params) -> Any:
        return self.request("DELETE", path, params=params or None)

    def merge_patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, body, content_type="application/merge-patch+json")

    def exists(self, path: str) -> bool:
        try:
            self.get(path)
            return True
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise

