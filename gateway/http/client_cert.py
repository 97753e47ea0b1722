"""Where the presented client certificate comes from: the TLS connection or a trusted proxy.

:class:`ClientCertificateMiddleware` runs first on every request. It strips the proxy
certificate headers unless the socket peer is inside ``trusted_proxies``, and stores a
:class:`PresentedCertificate` in ``scope["state"]``. Both modes yield the same object, which
the auth dependency verifies with :func:`certs.verify`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509
from starlette.types import ASGIApp, Receive, Scope, Send

from certs import CertificateRejected, load_pem_chain
from gateway.http.forwarded import (
    NGINX_CERT,
    NGINX_VERIFY,
    PROXY_CERT_HEADERS,
    XFCC,
    ForwardedCertificateError,
    pem_from_nginx,
    pem_from_xfcc,
)

STATE_KEY = "client_certificate"
PARSED_KEY = "sluis.presented"  # in the connection's ASGI tls extension: parsed once
_STRIP = frozenset(name.encode() for name in PROXY_CERT_HEADERS)


@dataclass(frozen=True, slots=True)
class PresentedCertificate:
    """A client certificate chain as presented, not yet verified (leaf first)."""

    source: Literal["tls", "proxy", "none"]
    chain: tuple[x509.Certificate, ...] = ()
    problem: CertificateRejected | None = None


class ClientCertificateMiddleware:
    """Pure ASGI middleware; see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        trusted_proxies: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network],
    ) -> None:
        self.app = app
        self.trusted_proxies = tuple(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers: list[tuple[bytes, bytes]] = list(scope["headers"])
            if self._is_trusted_proxy(scope.get("client")):
                presented = _from_proxy(headers)
            else:
                presented = _from_tls(scope)
            scope = dict(scope)
            scope["headers"] = [(k, v) for k, v in headers if k.lower() not in _STRIP]
            scope.setdefault("state", {})[STATE_KEY] = presented
        await self.app(scope, receive, send)

    def _is_trusted_proxy(self, client: Any) -> bool:
        if not self.trusted_proxies or not client:
            return False
        try:
            address = ipaddress.ip_address(client[0])
        except ValueError:
            return False
        return any(address in network for network in self.trusted_proxies)


def _from_tls(scope: Scope) -> PresentedCertificate:
    """The connection's certificate, parsed once per TLS connection (the ``tls`` extension
    dict is the connection's own: gateway/http/tls_scope.py)."""
    tls = scope.get("extensions", {}).get("tls")
    if not tls or not tls.get("client_cert_chain"):
        return PresentedCertificate("none")
    parsed = tls.get(PARSED_KEY)
    if isinstance(parsed, PresentedCertificate):
        return parsed
    parsed = tls[PARSED_KEY] = _parse("tls", "".join(tls["client_cert_chain"]).encode())
    return parsed


def _from_proxy(headers: list[tuple[bytes, bytes]]) -> PresentedCertificate:
    values: dict[str, list[str]] = {}
    for key, value in headers:
        values.setdefault(key.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    try:
        pem = _forwarded_pem(values)
    except ForwardedCertificateError as exc:
        return PresentedCertificate("proxy", problem=CertificateRejected("malformed", str(exc)))
    if not pem:
        return PresentedCertificate("none")
    return _parse("proxy", pem.encode())


def _forwarded_pem(values: dict[str, list[str]]) -> str | None:
    for name in (XFCC, NGINX_CERT, NGINX_VERIFY):
        if len(values.get(name, [])) > 1:
            raise ForwardedCertificateError(f"{name} header repeated")
    if XFCC in values:
        return pem_from_xfcc(values[XFCC][0])
    if NGINX_CERT in values:
        return pem_from_nginx(values[NGINX_CERT][0], values.get(NGINX_VERIFY, [None])[0])
    return None


def _parse(source: Literal["tls", "proxy"], pem: bytes) -> PresentedCertificate:
    try:
        return PresentedCertificate(source, tuple(load_pem_chain(pem)))
    except CertificateRejected as exc:
        return PresentedCertificate(source, problem=exc)
