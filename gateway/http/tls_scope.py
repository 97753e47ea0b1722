"""Expose the TLS peer certificate to the ASGI app, per the ASGI TLS extension.

Uvicorn does not implement the ASGI ``tls`` extension (``scope["extensions"]["tls"]``), so
the app cannot see the client certificate of an mTLS connection. These protocol subclasses
read it from the transport once per connection and add it to every request's scope, keeping
uvicorn's own HTTP parsing (httptools or h11). Pass one as uvicorn's ``http=`` option.

Drop this module the day uvicorn fills the extension itself.

Python 3.11's ``ssl`` module gives only the leaf certificate of the peer (the verified chain
needs 3.13), so ``client_cert_chain`` holds the leaf; the gateway completes the path from its
own trust store.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def tls_extension(ssl_object: ssl.SSLObject) -> dict[str, Any]:
    """The ASGI TLS extension dict for one established TLS connection."""
    der = ssl_object.getpeercert(binary_form=True)
    chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": None,
        # The handshake verified the chain (CERT_OPTIONAL/REQUIRED) or there is no certificate.
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }


class _TLSScopeApp:
    """Adds the connection's TLS extension to each request scope."""

    __slots__ = ("app", "tls")

    def __init__(self, app: ASGIApp, tls: dict[str, Any]) -> None:
        self.app = app
        self.tls = tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extensions = dict(scope.get("extensions") or {})
        extensions["tls"] = self.tls
        scope["extensions"] = extensions
        await self.app(scope, receive, send)


def _wrap(protocol: Any, transport: asyncio.Transport) -> None:
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is not None:
        protocol.app = _TLSScopeApp(protocol.app, tls_extension(ssl_object))


class TLSHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the ASGI TLS extension filled in."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # uvicorn narrows BaseTransport to Transport the same way
        super().connection_made(transport)
        _wrap(self, transport)


class TLSH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the ASGI TLS extension filled in."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # uvicorn narrows BaseTransport to Transport the same way
        super().connection_made(transport)
        _wrap(self, transport)
