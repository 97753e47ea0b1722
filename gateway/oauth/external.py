"""Access tokens from other authorization servers (Keycloak, Entra ID): their JWKS.

Keys are fetched with httpx over verified TLS, cached, and refetched when a token names an
unknown ``kid`` (at most once every 30 s per issuer, so a flood of made-up kids cannot turn
the gateway into a JWKS hammer). A JWKS that cannot be fetched fails closed; so does one
larger than 256 KiB, counted in decoded bytes as it arrives (a compressed bomb is cut off).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from joserfc.jwk import KeySet

from gateway.auth.jose import EXTERNAL_TOKEN_ALGS, import_public
from gateway.auth.tokens import TrustedIssuer
from gateway.errors import ServiceUnavailable
from gateway.json_input import loads_bounded
from gateway.settings import ExternalIssuer

REFRESH_INTERVAL = timedelta(seconds=30)
MAX_AGE = timedelta(minutes=10)
MAX_JWKS_BYTES = 256 * 1024


@dataclass
class _Cached:
    keys: KeySet
    fetched_at: datetime


@dataclass
class ExternalIssuers:
    """The configured external issuers, an HTTP client for each, and their cached keys."""

    issuers: dict[str, ExternalIssuer]
    _clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    _cache: dict[str, _Cached] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, issuers: list[ExternalIssuer]) -> ExternalIssuers:
        """One entry per configured issuer; HTTP clients are made on first use."""
        return cls({entry.issuer: entry for entry in issuers})

    async def aclose(self) -> None:
        """Close the HTTP clients."""
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    def _client(self, entry: ExternalIssuer) -> httpx.AsyncClient:
        if entry.issuer not in self._clients:
            verify: ssl.SSLContext | bool = True
            if entry.ca_bundle is not None:
                verify = ssl.create_default_context(cafile=str(entry.ca_bundle))
            self._clients[entry.issuer] = httpx.AsyncClient(verify=verify, timeout=5)
        return self._clients[entry.issuer]

    def __contains__(self, issuer: str) -> bool:
        return issuer in self.issuers

    async def trusted(self, issuer: str, kid: str | None, now: datetime) -> TrustedIssuer:
        """The issuer with its keys, fetched or refreshed as needed."""
        entry = self.issuers[issuer]
        cached = self._cache.get(issuer)
        known = cached is not None and any(k.kid == kid for k in cached.keys.keys)
        fresh = cached is not None and now - cached.fetched_at < MAX_AGE
        may_refresh = cached is None or now - cached.fetched_at > REFRESH_INTERVAL
        if (not known or not fresh) and may_refresh:
            cached = _Cached(await self._fetch(entry), now)
            self._cache[issuer] = cached
        if cached is None:
            raise ServiceUnavailable("issuer-keys-unavailable", f"no keys for issuer {issuer}")
        algorithms = tuple(a for a in entry.algorithms if a in EXTERNAL_TOKEN_ALGS)
        return TrustedIssuer(issuer, cached.keys, algorithms)

    async def _fetch(self, entry: ExternalIssuer) -> KeySet:
        try:
            client = self._client(entry)
            async with client.stream("GET", entry.jwks_uri, follow_redirects=False) as response:
                response.raise_for_status()
                return _parse_jwks(await _capped(response))
        except (httpx.HTTPError, OSError, ValueError, KeyError, TypeError) as exc:
            raise ServiceUnavailable(
                "issuer-keys-unavailable", f"the keys of issuer {entry.issuer} cannot be fetched"
            ) from exc


async def _capped(response: httpx.Response) -> bytes:
    """The decoded body, refused as soon as it passes ``MAX_JWKS_BYTES`` (a gzip bomb too)."""
    parts, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_JWKS_BYTES:
            raise ValueError("JWKS too large")
        parts.append(chunk)
    return b"".join(parts)


def _parse_jwks(content: bytes) -> KeySet:
    if len(content) > MAX_JWKS_BYTES:
        raise ValueError("JWKS too large")
    document = loads_bounded(content, max_bytes=MAX_JWKS_BYTES)
    return KeySet(
        [import_public(jwk) for jwk in document["keys"] if jwk.get("use", "sig") == "sig"]
    )
