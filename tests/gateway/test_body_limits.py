"""The request body cap answers the same 413 problem whatever the framing, on every body route.

Real TLS, real uvicorn, SQLite and PostgreSQL. The bodies are refused before any route
code, authentication or database work uses them, so the storage matters only as far as
the gateway must start on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from gateway.storage.db import Database
from tests.support.databases import database_url
from tests.support.pki import ClientCert, Pki
from tests.support.registry import register_participants
from tests.support.server import gateway_settings, https, running_gateway

UNIVERSITY = "NTRNL-41000000"
MAKER = "EU.EORI.NL000000001"
LIMIT = 4096

#: Every route that reads a request body, with the party allowed to reach its body.
BODY_ROUTES = [
    ("POST", "/v1/datasets/sensors/query", "university", "application/json"),
    ("POST", "/v1/agreements", "university", "application/json"),
    ("POST", "/v1/agreements/a1/reject", "maker", "application/json"),
    ("POST", "/v1/agreements/a1/revoke", "maker", "application/json"),
    ("POST", "/v1/agreements/a1/terminate", "university", "application/json"),
    ("POST", "/v1/admin/participants", "maker", "application/json"),
    ("PATCH", "/v1/admin/participants/NTRNL-41000000", "maker", "application/json"),
    ("POST", "/v1/admin/clients", "maker", "application/json"),
    ("PATCH", "/v1/admin/clients/c1", "maker", "application/json"),
    ("POST", "/oauth2/token", "university", "application/x-www-form-urlencoded"),
    ("POST", "/oauth2/introspect", "university", "application/x-www-form-urlencoded"),
    ("POST", "/oauth2/revoke", "university", "application/x-www-form-urlencoded"),
]


@dataclass
class Gateway:
    url: str
    pki: Pki
    certs: dict[str, ClientCert]


async def _register(url: str) -> None:
    db = Database(url)
    await db.upgrade()
    await register_participants(
        db,
        [
            (UNIVERSITY, "TU Delft", ["consumer"]),
            (MAKER, "Machine Maker BV", ["provider", "operator"]),
        ],
    )
    await db.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    home = tmp_path_factory.mktemp(f"body-{request.param}")
    pki = Pki(home / "pki")
    certs = {
        "university": pki.client("TU Delft", UNIVERSITY),
        "maker": pki.client("Machine Maker BV", MAKER, ["provider", "operator"]),
    }
    with database_url(request.param, home) as url:
        asyncio.run(_register(url))
        settings = gateway_settings(pki, home, url, max_body_bytes=LIMIT)
        with running_gateway(settings) as base:
            yield Gateway(base, pki, certs)


def _chunks(total: int, size: int = 512) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * min(size, total - sent)
        sent += size


def _assert_413(response: httpx.Response, path: str) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["connection"] == "close"
    assert response.json() == {
        "type": "urn:sluis:problem:body-too-large",
        "title": "Request body too large",
        "status": 413,
        "detail": f"request bodies are limited to {LIMIT} bytes",
        "instance": path,
    }


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("route", BODY_ROUTES, ids=[f"{m} {p}" for m, p, _, _ in BODY_ROUTES])
def test_oversized_bodies_get_413_whatever_the_framing(
    gateway: Gateway, framing: str, route: tuple[str, str, str, str]
) -> None:
    method, path, who, media_type = route
    body = b"x" * (2 * LIMIT)
    content = body if framing == "content-length" else _chunks(len(body))
    headers = {"content-type": media_type}
    with https(gateway.pki, gateway.certs[who], gateway.url) as client:
        response = client.request(method, path, content=content, headers=headers)
    _assert_413(response, path)


def test_a_body_at_the_limit_is_read(gateway: Gateway) -> None:
    """The cap is not off by one: exactly ``LIMIT`` bytes reach the route (and fail validation)."""
    with https(gateway.pki, gateway.certs["maker"], gateway.url) as client:
        response = client.post(
            "/v1/admin/participants",
            content=_chunks(LIMIT),
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 422, response.text
