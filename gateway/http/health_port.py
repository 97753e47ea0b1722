"""The health port: /healthz and /readyz, and nothing else, over plain HTTP.

Under ``tls_client_auth: required`` a kubelet probe has no client certificate, so the TLS
handshake on the gateway port refuses it and the pod never becomes ready. With
``health_port`` set, ``sluis serve`` also listens there (loopback or the pod IP) and hands
these two paths to the same app; every other request is a 404 problem that never reaches it.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

PROBE_PATHS = frozenset({"/healthz", "/readyz"})
_NOT_HERE = json.dumps(
    {
        "type": "urn:sluis:problem:not-found",
        "title": "Not found",
        "status": 404,
        "detail": "the health port serves /healthz and /readyz only",
    }
).encode()


def health_only(app: ASGIApp) -> ASGIApp:
    """``app`` for GET/HEAD of the probe paths; a 404 problem for anything else."""

    async def health_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan here: the gateway port's server runs the app's lifespan
        if scope["method"] in {"GET", "HEAD"} and scope["path"] in PROBE_PATHS:
            await app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 404,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(_NOT_HERE)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _NOT_HERE})

    return health_app
