"""A Kubernetes API server on loopback, over real TLS, for the CRL job's ConfigMap calls.

It serves what a real API server serves for ``/api/v1/namespaces/<ns>/configmaps/<name>``
(GET, and PATCH with ``application/merge-patch+json``), and refuses as one does: 401 without
the service account's bearer token, 403 for a verb or a ConfigMap name the Role does not
grant (``resourceNames``), 404 for a missing ConfigMap, 409 when a patch carries a
``metadata.resourceVersion`` that is not the current one, 415 for another patch type. Every
request is recorded (method, path, headers, body) for the tests to check.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.pki import Pki

_PATH = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/configmaps/(?P<name>[^/?]+)$")


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeKubeApi:
    """ConfigMaps of one namespace, a service account token and a Role's grants."""

    pki: Pki
    namespace: str
    token: str
    grants: dict[str, set[str]]  # ConfigMap name -> verbs the Role allows on it
    config_maps: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    before_patch: Callable[[], None] | None = None  # e.g. someone else changes it first
    port: int = 0

    def put(self, name: str, data: dict[str, str]) -> None:
        """Create or replace a ConfigMap (as ``kubectl apply`` would); a new version."""
        version = int(self.config_maps.get(name, {}).get("resourceVersion", "100")) + 1
        self.config_maps[name] = {"data": dict(data), "resourceVersion": str(version)}

    def answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        self.requests.append(Recorded(method, path, headers, body))
        match = _PATH.match(path)
        if match is None or match["ns"] != self.namespace:
            return 404, _status(404, "NotFound", "the server could not find the requested resource")
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, _status(401, "Unauthorized", "Unauthorized")
        name, verb = match["name"], method.lower()
        if verb not in self.grants.get(name, set()):
            return 403, _status(
                403,
                "Forbidden",
                f'configmaps "{name}" is forbidden: User "system:serviceaccount:{self.namespace}'
                f':sluis-crl" cannot {verb} resource "configmaps" in API group "" in the '
                f'namespace "{self.namespace}"',
            )
        if name not in self.config_maps:
            return 404, _status(404, "NotFound", f'configmaps "{name}" not found')
        if verb == "patch":
            return self._patch(name, headers, body)
        return 200, self._object(name)

    def _patch(self, name: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        if headers.get("content-type") != "application/merge-patch+json":
            return 415, _status(
                415, "UnsupportedMediaType", "the body of the request was in an unknown format"
            )
        if self.before_patch is not None:
            self.before_patch()
        patch = json.loads(body)
        stored = self.config_maps[name]
        wanted = patch.get("metadata", {}).get("resourceVersion")
        if wanted is not None and wanted != stored["resourceVersion"]:
            return 409, _status(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on configmaps "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
            )
        self.put(name, {**stored["data"], **patch.get("data", {})})
        return 200, self._object(name)

    def _object(self, name: str) -> dict[str, Any]:
        stored = self.config_maps[name]
        return {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "resourceVersion": stored["resourceVersion"],
            },
            "data": stored["data"],
        }

    @contextmanager
    def serving(self) -> Iterator[FakeKubeApi]:
        """Listen on 127.0.0.1 (TLS with the PKI's server certificate) until the block ends."""
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, payload = api.answer(self.command, self.path, headers, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PATCH = do_PUT = do_POST = do_DELETE = _handle  # noqa: N815

            def log_message(self, *_: object) -> None:
                return

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.pki.server_cert, self.pki.server_key)
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join()


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
