"""The iSHARE satellite client: is this party admitted? (IO; the checks are in parties.py).

The gateway gets its own access token at the satellite's ``/connect/token`` (an iSHARE
client assertion signed with the gateway's iSHARE key, ``x5c`` chain, ``aud`` = the
satellite's party id), then asks ``GET /parties?eori=<party id>`` and verifies the signed
``parties_token``. A verified record is kept for ``cache_seconds`` (the adherence dates are
re-checked against ``now`` at every use); failures are never cached. Every failure to reach
the satellite or to verify its answer is a :class:`PartyRefused` with ``unavailable`` set:
the caller refuses (fail closed).
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from cryptography import x509

from gateway.json_input import loads_bounded
from gateway.oauth.capabilities import Capabilities
from gateway.oauth.parties import PartyRecord, PartyRefused, SatelliteTrust, admit
from gateway.oauth.parties import verify_parties_token as verify

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ANSWER = 1024 * 1024  # bytes of one satellite answer
MAX_CACHED = 4096  # parties remembered at once
TOKEN_MARGIN = timedelta(seconds=30)  # renew our satellite token this long before it ends


@dataclass(frozen=True)
class SatelliteConfig:
    """Where the satellite is, who it is, and how long its answers are kept."""

    url: str
    trust: SatelliteTrust
    cache: timedelta
    timeout: float
    tls: ssl.SSLContext


def _unavailable(detail: str) -> PartyRefused:
    return PartyRefused("satellite-unavailable", detail, unavailable=True)


class Satellite:
    """Checks parties at one satellite; one per gateway process."""

    def __init__(
        self,
        config: SatelliteConfig,
        signer: Capabilities,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.signer = signer
        self._client = httpx.AsyncClient(
            base_url=config.url,
            verify=config.tls,
            timeout=config.timeout,
            follow_redirects=False,
            transport=transport,
        )
        self._token: tuple[str, datetime] | None = None
        self._parties: dict[str, tuple[PartyRecord | None, datetime]] = {}

    async def aclose(self) -> None:
        await self._client.aclose()

    async def admit(
        self,
        party_id: str,
        crls: Sequence[x509.CertificateRevocationList],
        *,
        now: datetime,
        certificate: bytes | None = None,
    ) -> None:
        """PartyRefused unless the satellite shows ``party_id`` Active at ``now`` (and, given
        ``certificate``, a SHA-256 digest, lists that certificate for it)."""
        cached = self._parties.get(party_id)
        if cached is not None and now < cached[1]:
            admit(cached[0], party_id, now=now, certificate=certificate)
            return
        record = await self._lookup(party_id, crls, now)
        if len(self._parties) >= MAX_CACHED:
            self._parties.clear()
        self._parties[party_id] = (record, now + self.config.cache)
        admit(record, party_id, now=now, certificate=certificate)

    async def _lookup(
        self, party_id: str, crls: Sequence[x509.CertificateRevocationList], now: datetime
    ) -> PartyRecord | None:
        token = await self._access_token(now)
        answer = await self._call("GET", "/parties", params={"eori": party_id},
                                  headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        parties_token = answer.get("parties_token")
        if not isinstance(parties_token, str):
            raise PartyRefused("satellite-invalid", "no parties_token", unavailable=True)
        return verify(parties_token, party_id, self.config.trust, crls, now=now)

    async def _access_token(self, now: datetime) -> str:
        if self._token is not None and now < self._token[1]:
            return self._token[0]
        satellite_id = self.config.trust.satellite_id
        form = {
            "grant_type": "client_credentials",
            "scope": "iSHARE",
            "client_id": self.signer.party_id,
            "client_assertion_type": JWT_BEARER,
            "client_assertion": self.signer.client_assertion(satellite_id, now),
        }
        answer = await self._call("POST", "/connect/token", data=form)
        token, expires_in = answer.get("access_token"), answer.get("expires_in")
        if not isinstance(token, str) or not token:
            raise PartyRefused("satellite-invalid", "no access_token", unavailable=True)
        lifetime = expires_in if isinstance(expires_in, int) and expires_in > 0 else 0
        self._token = (token, now + timedelta(seconds=lifetime) - TOKEN_MARGIN)
        return token

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """The JSON object the satellite answers; PartyRefused (unavailable) otherwise."""
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise _unavailable(f"{method} {path}: {type(exc).__name__}") from exc
        if response.status_code != httpx.codes.OK:
            raise _unavailable(f"{method} {path} answered {response.status_code}")
        if len(response.content) > MAX_ANSWER:
            raise PartyRefused("satellite-invalid", f"{path}: answer too large", unavailable=True)
        try:
            value = loads_bounded(response.content)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PartyRefused("satellite-invalid", f"{path}: not JSON", unavailable=True) from exc
        if not isinstance(value, dict):
            raise PartyRefused("satellite-invalid", f"{path}: not an object", unavailable=True)
        return value
