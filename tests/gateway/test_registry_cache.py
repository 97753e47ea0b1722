"""Issue 10, the read path: a steady-state permitted request reads no registry from the database.

One real gateway on SQLite over mTLS, one consumer on one kept-alive connection. Counted with
a SQLAlchemy cursor hook: after the first request, a permitted query issues no SELECT on the
participants, clients, datasets, policy versions, agreements or revoked tokens; the
certificate is verified once per TLS connection. And what the memory must not hide: a
suspension, a token revocation and a certificate revocation each refuse the very next
request on the same kept-alive connection (gateway/registry.py, gateway/http/deps.py).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event

import certs
from certs import CertificateIdentity
from gateway.client import mtls_context
from gateway.participants.schemas import ParticipantUpdate
from gateway.participants.service import ParticipantService
from gateway.storage.db import Database
from tests.gateway.test_token_memo import _counting
from tests.support.pki import ClientCert, Pki
from tests.support.registry import files_connector, register_dataset, register_participants
from tests.support.server import gateway_settings, running_gateway

MAKER = "EU.EORI.NL000000010"
UNIVERSITY = "NTRNL-40000010"
RESEARCH = "https://w3id.org/dpv#AcademicResearch"
POLICY = f"""
uid: urn:sluis:policy:maker:open
type: Offer
target: urn:sluis:dataset:open
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    assignee: urn:sluis:participant:{UNIVERSITY}
    constraints: [[purpose, isAnyOf, [dpv:AcademicResearch]]]
"""
REGISTRY_TABLES = ("participants", "oauth_clients", "datasets", "policy_versions",
                   "agreements", "revoked_tokens")  # fmt: skip
_READS = re.compile(r"\b(?:FROM|JOIN)\s+\"?(" + "|".join(REGISTRY_TABLES) + r")\b", re.I)


@dataclass
class World:
    url: str
    db_url: str
    pki: Pki
    certs: dict[str, ClientCert]


async def _seed(url: str) -> None:
    db = Database(url)
    try:
        await db.upgrade()
        await register_participants(
            db, [(MAKER, "Maker", ["provider", "operator"]), (UNIVERSITY, "Uni", ["consumer"])]
        )
        await register_dataset(db, "open", provider=MAKER, policy=POLICY,
                               connector=files_connector())  # fmt: skip
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("registry-cache")
    pki = Pki(home / "pki")
    issued = {
        "maker": pki.client("Maker", MAKER, ["provider", "operator"]),
        "university": pki.client("Uni", UNIVERSITY),
        "university-2": pki.client("Uni", UNIVERSITY),  # a second certificate, revoked below
    }
    url = f"sqlite+aiosqlite:///{home / 'sluis.db'}"
    asyncio.run(_seed(url))
    with running_gateway(gateway_settings(pki, home, url)) as base:
        world = World(base, url, pki, issued)
        with _client(world, "maker") as admin:
            body = {"client_id": UNIVERSITY, "auth_method": "tls_client_auth",
                    "scopes": ["dataset:open"]}  # fmt: skip
            assert admin.post("/v1/admin/clients", json=body).status_code == 201
        with _client(world, "university") as uni:
            made = uni.post("/v1/agreements", json={"dataset": "open", "purpose": RESEARCH})
            assert made.json()["state"] == "active", made.text
        yield world


def _client(world: World, who: str, token: str | None = None) -> httpx.Client:
    cert = world.certs[who]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    context = mtls_context(world.pki.bundle, cert.cert_path, cert.key_path)
    return httpx.Client(base_url=world.url, verify=context, headers=headers, timeout=30)


def _token(client: httpx.Client) -> str:
    form = {"grant_type": "client_credentials", "client_id": UNIVERSITY, "scope": "dataset:open"}
    response = client.post("/oauth2/token", data=form)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _query(client: httpx.Client, token: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return client.post("/v1/datasets/open/query", json={}, headers=headers)


def _code(response: httpx.Response) -> str:
    return str(response.json().get("type", "")).removeprefix("urn:sluis:problem:")


@pytest.fixture
def registry_selects() -> Iterator[list[str]]:
    """Every SELECT on a registry table, from any engine in this process, while it lasts."""
    seen: list[str] = []

    def hook(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and _READS.search(statement):
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", hook)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", hook)


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The thumbprint of every certificate chain ``certs.verify`` checks."""
    done: list[str] = []
    real: Callable[..., CertificateIdentity] = certs.verify

    def counting(*args: Any, **kwargs: Any) -> CertificateIdentity:
        identity = real(*args, **kwargs)
        done.append(identity.thumbprint_sha256)
        return identity

    monkeypatch.setattr(certs, "verify", counting)
    return done


def test_a_steady_state_request_reads_no_registry_from_the_database(
    world: World, registry_selects: list[str], verifications: list[str]
) -> None:
    with _client(world, "university") as client:
        token = _token(client)
        assert _query(client, token).status_code == 200  # first use: fills the caches
        registry_selects.clear()
        verifications.clear()
        for _ in range(3):
            response = _query(client, token)
            assert response.status_code == 200, response.text
    assert registry_selects == []
    assert verifications == []  # verified once for this TLS connection, by the token request


def test_a_new_connection_verifies_its_certificate_again(
    world: World, verifications: list[str]
) -> None:
    with _client(world, "university") as client:
        token = _token(client)
        assert _query(client, token).status_code == 200
    with _client(world, "university") as client:
        assert _query(client, token).status_code == 200
    assert len(verifications) == 2  # one per connection


@pytest.fixture
def signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every access token whose signature ``tokens.check`` verifies."""
    return _counting(monkeypatch)


def test_a_token_signature_is_verified_once_per_process_across_connections(
    world: World, signature_checks: list[str]
) -> None:
    """Three requests on one connection, one on the next: the signature is verified on the
    first only (the connection's memo, then the process's verified tokens)."""
    with _client(world, "university") as client:
        token = _token(client)
        for _ in range(3):
            assert _query(client, token).status_code == 200
    with _client(world, "university") as client:
        assert _query(client, token).status_code == 200
    assert signature_checks == [token]  # once in this process, not once per connection


def test_a_revoked_token_is_refused_on_the_next_request(world: World) -> None:
    with _client(world, "university") as client:
        token = _token(client)
        assert _query(client, token).status_code == 200
        assert client.post("/oauth2/revoke", data={"token": token}).status_code == 200
        refused = _query(client, token)
    assert refused.status_code == 401
    assert _code(refused) == "token-revoked"


def test_a_revoked_certificate_is_refused_on_its_kept_alive_connection(world: World) -> None:
    with _client(world, "university-2") as client:
        token = _token(client)
        assert _query(client, token).status_code == 200
        world.pki.revoke(world.certs["university-2"])  # a new CRL file: sluis certs revoke
        refused = _query(client, token)
    assert refused.status_code == 401, refused.text
    assert _code(refused) == "certificate-revoked"


def test_a_suspension_refuses_the_next_request_on_a_kept_alive_connection(world: World) -> None:
    """Last in the module: the consumer stays suspended."""
    with _client(world, "university") as client:
        token = _token(client)
        assert _query(client, token).status_code == 200
        asyncio.run(_set_status(world.db_url, "suspended"))  # another session, this process
        refused = _query(client, token)
    assert refused.status_code == 403, refused.text
    assert _code(refused) == "participant-suspended"


async def _set_status(url: str, status: str) -> None:
    db = Database(url)
    try:
        data = ParticipantUpdate(status=status)
        await ParticipantService(db).update(UNIVERSITY, data, now=datetime.now(UTC))
    finally:
        await db.dispose()
