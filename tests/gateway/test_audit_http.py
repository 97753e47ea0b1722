"""The gateway writes its security events to the audit log; officers read and verify them.

Over real mTLS, on SQLite and PostgreSQL: refused certificates and participants, issued
and refused tokens, admin changes; tokens only as hashes; checkpoints and inclusion
proofs that verify with the audit public key alone; and no token without its entry.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from gateway.audit.checkpoint import verify_checkpoint
from gateway.audit.entry import hash_token
from gateway.audit.jcs import canonical
from gateway.audit.keys import Verifier
from gateway.audit.merkle import leaf_hash, verify_inclusion
from gateway.client import mtls_context
from gateway.storage.db import Database
from tests.support.databases import database_url
from tests.support.pki import ClientCert, Pki
from tests.support.registry import register_participants
from tests.support.server import gateway_settings, running_gateway

MAKER = "EU.EORI.NL000000001"
UNIVERSITY = "NTRNL-40000001"
OFFICER = "NTRNL-40000005"
STRANGER = "NTRNL-49999999"
ORIGIN = "localhost:8443/audit"


@dataclass
class World:
    url: str
    pki: Pki
    home: Path
    database: str
    certs: dict[str, ClientCert]


async def _register(url: str) -> None:
    db = Database(url)
    await db.upgrade()
    await register_participants(
        db,
        [
            (MAKER, "Machine Maker BV", ["provider", "operator"]),
            (UNIVERSITY, "Universiteit Oost", ["consumer"]),
            (OFFICER, "Security Office", ["officer"]),
        ],
    )
    await db.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    home = tmp_path_factory.mktemp(f"audit-{request.param}")
    pki = Pki(home / "pki")
    certs = {
        "maker": pki.client("Machine Maker BV", MAKER, ["provider", "operator"]),
        "university": pki.client("Universiteit Oost", UNIVERSITY),
        "officer": pki.client("Security Office", OFFICER, ["officer"]),
        "stranger": pki.client("Unregistered BV", STRANGER),
    }
    with database_url(request.param, home) as url:
        asyncio.run(_register(url))
        with running_gateway(gateway_settings(pki, home, url)) as base:
            world = World(base, pki, home, url, certs)
            with _client(world, "maker") as admin:
                created = admin.post(
                    "/v1/admin/clients",
                    json={
                        "client_id": UNIVERSITY,
                        "auth_method": "tls_client_auth",
                        "scopes": ["a"],
                    },
                )
                assert created.status_code == 201, created.text
            yield world


def _client(world: World, who: str | None) -> httpx.Client:
    if who is None:
        context = ssl.create_default_context(cafile=str(world.pki.bundle))
    else:
        cert = world.certs[who]
        context = mtls_context(world.pki.bundle, cert.cert_path, cert.key_path)
    return httpx.Client(base_url=world.url, verify=context, timeout=30)


def _token(world: World) -> str:
    with _client(world, "university") as client:
        response = client.post(
            "/oauth2/token", data={"grant_type": "client_credentials", "client_id": UNIVERSITY}
        )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _entries(world: World) -> list[dict[str, Any]]:
    with _client(world, "officer") as officer:
        page = officer.get("/v1/audit/entries", params={"limit": 1000})
    assert page.status_code == 200, page.text
    return list(page.json()["entries"])


def _events(world: World, event: str) -> list[dict[str, Any]]:
    return [e for e in _entries(world) if e["entry"]["event"] == event]


def test_issued_tokens_are_recorded_as_hashes(world: World) -> None:
    token = _token(world)
    issued = [
        e
        for e in _events(world, "token-issued")
        if e["entry"].get("token_sha256") == hash_token(token)
    ]
    assert len(issued) == 1
    entry = issued[0]["entry"]
    assert entry["actor"]["client"] == UNIVERSITY
    assert entry["actor"]["participant"] == UNIVERSITY
    assert entry["actor"]["certificate"]
    assert token not in json.dumps(_entries(world))


def test_refused_tokens_are_recorded(world: World) -> None:
    forged = _token(world)[:-4] + "AAAA"
    with _client(world, "university") as client:
        refused = client.get("/v1/session", headers={"Authorization": f"Bearer {forged}"})
    assert refused.status_code == 401
    matching = [
        e
        for e in _events(world, "token-refused")
        if e["entry"].get("token_sha256") == hash_token(forged)
    ]
    assert matching
    assert matching[0]["entry"]["decision"]["result"] == "deny"
    assert matching[0]["entry"]["decision"]["reasons"][0] == "token-bad-signature"


def test_refused_certificates_and_participants_are_recorded(world: World) -> None:
    with _client(world, None) as anonymous:
        assert anonymous.get("/v1/whoami").status_code == 401
    with _client(world, "stranger") as stranger:
        assert stranger.get("/v1/whoami").status_code == 403
    reasons = [e["entry"]["decision"]["reasons"][0] for e in _events(world, "certificate-refused")]
    assert "certificate-no-certificate" in reasons
    assert "unknown-participant" in reasons


def test_admin_changes_and_role_refusals_are_recorded(world: World) -> None:
    with _client(world, "maker") as admin:
        admin.patch(f"/v1/admin/participants/{UNIVERSITY}", json={"name": "Universiteit Oost NL"})
    with _client(world, "university") as consumer:
        assert consumer.get("/v1/audit/entries").status_code == 403
    changes = [e["entry"]["target"] for e in _events(world, "admin-change")]
    assert f"participant:{UNIVERSITY}" in changes
    assert f"client:{UNIVERSITY}" in changes
    denied = _events(world, "access-decision")
    assert any(e["entry"]["decision"]["reasons"][0] == "role-required" for e in denied)


def _verifier(world: World) -> Verifier:
    key = serialization.load_pem_private_key((world.home / "audit-key.pem").read_bytes(), None)
    public = key.public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)  # type: ignore[union-attr]
    return Verifier(ORIGIN, raw)


def test_checkpoint_and_inclusion_proof_verify_with_the_public_key(world: World) -> None:
    token = _token(world)
    issued = next(
        e for e in _events(world, "token-issued") if e["entry"]["token_sha256"] == hash_token(token)
    )
    with _client(world, "university") as client:
        for _ in range(100):  # checkpoints follow new entries within about a second
            note = client.get("/v1/audit/checkpoint")
            checkpoint = verify_checkpoint(note.content, [_verifier(world)], ORIGIN)
            if checkpoint.size > issued["index"]:
                break
            time.sleep(0.1)
        assert checkpoint.size > issued["index"]
        proof = client.get(
            "/v1/audit/proofs/inclusion",
            params={"index": issued["index"], "tree_size": checkpoint.size},
        ).json()
    leaf = leaf_hash(canonical(issued["entry"]))  # recomputed by the officer, not trusted
    assert base64.b64decode(proof["leaf_hash"]) == leaf
    hashes = [base64.b64decode(h) for h in proof["hashes"]]
    verify_inclusion(leaf, issued["index"], checkpoint.size, hashes, checkpoint.root_hash)


def test_no_token_leaves_without_its_entry(world: World) -> None:
    if not world.database.startswith("sqlite"):
        pytest.skip(
            "the write lock used here is SQLite's; PostgreSQL outage is tested in tests/audit"
        )
    path = world.database.split("///", 1)[1]
    blocker = sqlite3.connect(path, timeout=1, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")  # writers wait 5 s (busy_timeout), then fail
        with _client(world, "university") as client:
            response = client.post(
                "/oauth2/token", data={"grant_type": "client_credentials", "client_id": UNIVERSITY}
            )
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert response.status_code == 503, response.text
    assert "access_token" not in response.text
    assert response.json()["type"] == "urn:sluis:problem:storage-unavailable"
