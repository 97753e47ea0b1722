"""Proxy mode believes forwarded certificates only from a peer inside ``trusted_proxies``.

Real sockets: the gateway listens on 127.0.0.1 with only 127.0.0.1/32 trusted; the trusted
proxy connects from 127.0.0.1, the attacker from another loopback address (127.0.0.2), with
the very same forwarded-certificate headers. Only the first is believed; the second is an
anonymous caller, its headers stripped and its refusal audited.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest

from gateway.audit.log import AuditReader
from gateway.storage.db import Database
from tests.support.databases import database_url
from tests.support.pki import ClientCert, Pki
from tests.support.registry import register_participants
from tests.support.server import gateway_settings, running_gateway

UNIVERSITY = "NTRNL-41000000"
PROXY = "127.0.0.1"
ATTACKER = "127.0.0.2"


@dataclass
class Gateway:
    url: str
    db_url: str
    good: ClientCert


async def _register(url: str) -> None:
    db = Database(url)
    await db.upgrade()
    await register_participants(db, [(UNIVERSITY, "TU Delft", ["consumer"])])
    await db.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    home = tmp_path_factory.mktemp(f"proxy-trust-{request.param}")
    pki = Pki(home / "pki")
    good = pki.client("TU Delft", UNIVERSITY)
    with database_url(request.param, home) as url:
        asyncio.run(_register(url))
        settings = gateway_settings(
            pki, home, url, plain_http=True, trusted_proxies=[f"{PROXY}/32"]
        )
        with running_gateway(settings) as base:
            yield Gateway(base, url, good)


def _forwarded(cert: ClientCert) -> list[dict[str, str]]:
    return [
        {"x-forwarded-client-cert": f'Hash=abc;Cert="{quote(cert.leaf_pem)}"'},
        {"ssl-client-cert": quote(cert.leaf_pem), "ssl-client-verify": "SUCCESS"},
    ]


def _whoami(gw: Gateway, source: str, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=gw.url, transport=transport, timeout=10) as client:
        return client.get("/v1/whoami", headers=headers)


def test_the_trusted_proxy_is_believed(gateway: Gateway) -> None:
    for headers in _forwarded(gateway.good):
        response = _whoami(gateway, PROXY, headers)
        assert response.status_code == 200, response.text
        assert response.json()["participant"]["id"] == UNIVERSITY


def test_a_peer_outside_trusted_proxies_is_not_believed(gateway: Gateway) -> None:
    for headers in _forwarded(gateway.good):
        response = _whoami(gateway, ATTACKER, headers)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "urn:sluis:problem:certificate-no-certificate"


def test_the_untrusted_peers_refusal_is_audited_with_its_address(gateway: Gateway) -> None:
    assert _whoami(gateway, ATTACKER, _forwarded(gateway.good)[0]).status_code == 401

    async def refusals() -> list[dict[str, object]]:
        db = Database(gateway.db_url)
        try:
            records = await AuditReader(db).entries()
        finally:
            await db.dispose()
        return [json.loads(r.data) for r in records]

    entries = asyncio.run(refusals())
    from_attacker = [e for e in entries if e["actor"].get("source") == ATTACKER]  # type: ignore[attr-defined]
    assert from_attacker, entries
    assert all(e["actor"].get("participant") is None for e in from_attacker)  # type: ignore[attr-defined]
