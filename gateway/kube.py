"""The little of the Kubernetes API the CRL job needs: one ConfigMap, read and patched.

In-cluster configuration as client-go's ``rest.InClusterConfig`` makes it: the API server at
``https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT``, verified against the service
account's ``ca.crt`` (host name checked), a bearer token read from the service account's
``token`` file on every request (projected tokens are rotated by the kubelet), the namespace
from its ``namespace`` file. Nothing here retries: a refused or failed call is a
:class:`KubeError` with a stable code, and the Job's own retries (``backoffLimit``) or its
next scheduled run try again.

::

    KubeError (code)  not-in-cluster, unreachable, unauthorized, forbidden, not-found,
                      conflict, api-error, bad-response
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
MERGE_PATCH = "application/merge-patch+json"
_TIMEOUT = 10.0
_MAX_MESSAGE = 300


class KubeError(Exception):
    """A Kubernetes API call that could not be made or was refused."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class InCluster:
    """Where the API server is and how this pod proves who it is."""

    base_url: str
    token_file: Path
    ca_file: Path
    namespace: str

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] = os.environ, account_dir: Path = SERVICE_ACCOUNT_DIR
    ) -> InCluster:
        """As a pod sees it; KubeError ``not-in-cluster`` outside one (or without a token)."""
        host = environ.get("KUBERNETES_SERVICE_HOST", "")
        port = environ.get("KUBERNETES_SERVICE_PORT", "")
        if not host or not port:
            raise KubeError(
                "not-in-cluster",
                "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: not in a pod",
            )
        for name in ("token", "ca.crt", "namespace"):
            if not (account_dir / name).is_file():
                raise KubeError(
                    "not-in-cluster",
                    f"no {account_dir / name}: the pod's service account token is not mounted",
                )
        namespace = (account_dir / "namespace").read_text(encoding="utf-8").strip()
        netloc = f"[{host}]" if ":" in host else host  # an IPv6 service address
        return cls(
            base_url=f"https://{netloc}:{port}",
            token_file=account_dir / "token",
            ca_file=account_dir / "ca.crt",
            namespace=namespace,
        )


@dataclass(frozen=True)
class ConfigMap:
    """A ConfigMap's data and the version it was read at (for an optimistic update)."""

    name: str
    data: dict[str, str]
    resource_version: str


class ConfigMaps:
    """Get and merge-patch ConfigMaps in the pod's namespace (RBAC: get, patch)."""

    def __init__(self, cluster: InCluster, *, timeout: float = _TIMEOUT) -> None:
        self.cluster = cluster
        self._context = ssl.create_default_context(cafile=str(cluster.ca_file))
        self._timeout = timeout

    def _path(self, name: str) -> str:
        namespace = quote(self.cluster.namespace, safe="")
        return f"/api/v1/namespaces/{namespace}/configmaps/{quote(name, safe='')}"

    def get(self, name: str) -> ConfigMap:
        """The ConfigMap ``name``; KubeError ``not-found`` when there is none."""
        body = self._call("GET", name, None, None)
        return _config_map(name, body)

    def replace_key(self, current: ConfigMap, key: str, value: str) -> ConfigMap:
        """Set ``data[key]`` if the ConfigMap is still at ``current``'s version.

        A merge patch that carries ``metadata.resourceVersion``: the API server answers 409
        (KubeError ``conflict``) when someone changed the ConfigMap since it was read.
        """
        patch = {
            "metadata": {"resourceVersion": current.resource_version},
            "data": {key: value},
        }
        body = self._call("PATCH", current.name, json.dumps(patch).encode(), MERGE_PATCH)
        return _config_map(current.name, body)

    def _call(
        self, method: str, name: str, content: bytes | None, content_type: str | None
    ) -> Mapping[str, Any]:
        headers = {"Authorization": f"Bearer {self._token()}", "Accept": "application/json"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        url = self.cluster.base_url + self._path(name)
        try:
            with httpx.Client(verify=self._context, timeout=self._timeout) as client:
                response = client.request(method, url, headers=headers, content=content)
        except httpx.HTTPError as exc:
            raise KubeError("unreachable", f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code != httpx.codes.OK:
            raise _refused(method, url, name, response)
        try:
            body = response.json()
        except ValueError as exc:
            raise KubeError("bad-response", f"{method} {url}: not JSON") from exc
        if not isinstance(body, dict):
            raise KubeError("bad-response", f"{method} {url}: not a JSON object")
        return body

    def _token(self) -> str:
        try:
            token = self.cluster.token_file.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise KubeError(
                "not-in-cluster", f"cannot read the service account token: {exc}"
            ) from exc
        if not token:
            raise KubeError("not-in-cluster", "the service account token file is empty")
        return token


_CODES = {401: "unauthorized", 403: "forbidden", 404: "not-found", 409: "conflict"}


def _refused(method: str, url: str, name: str, response: httpx.Response) -> KubeError:
    """The API server's refusal, with its Status message (clipped) and what usually helps."""
    code = _CODES.get(response.status_code, "api-error")
    message = _status_message(response)
    hint = {
        "forbidden": f" (the Role must allow get and patch on configmaps/{name})",
        "not-found": f" (create it first: kubectl create configmap {name} --from-literal=crl.pem=)",
        "conflict": " (changed since it was read; the next run tries again)",
    }.get(code, "")
    return KubeError(code, f"{method} {url}: {response.status_code} {message}{hint}")


def _status_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    message = body.get("message", "") if isinstance(body, dict) else ""
    return str(message)[:_MAX_MESSAGE]


def _config_map(name: str, body: Mapping[str, Any]) -> ConfigMap:
    metadata = body.get("metadata")
    data = body.get("data") or {}
    if body.get("kind") != "ConfigMap" or not isinstance(metadata, dict):
        raise KubeError("bad-response", f"configmaps/{name}: the answer is not a ConfigMap")
    version = metadata.get("resourceVersion")
    if not isinstance(version, str) or not isinstance(data, dict):
        raise KubeError("bad-response", f"configmaps/{name}: no resourceVersion or bad data")
    return ConfigMap(name, {str(k): str(v) for k, v in data.items()}, version)
