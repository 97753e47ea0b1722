"""Agreements, token revocation and token-key rotation commit with their entries (issue 11).

Each change of who may do what writes exactly one entry in the transaction that makes it;
a refused change writes none; an entry the store refuses (a real trigger) undoes the change.
Real SQLite and PostgreSQL, a real gateway over mTLS, the real key ring.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from gateway.audit.entry import AuditEntry, hash_token
from gateway.audit.log import AuditLog, AuditReader
from gateway.oauth import repository as oauth_repo
from gateway.oauth.clients import ClientService
from gateway.oauth.keyring import KeyRing
from gateway.oauth.schemas import ClientCreate
from gateway.storage import StorageUnavailable
from gateway.storage.db import Database
from tests.audit.logs import NOW, ORIGIN, SIGNER
from tests.gateway.test_admin_changes import _refuse_audit_inserts
from tests.support.databases import database_url
from tests.support.pki import ClientCert, Pki
from tests.support.registry import files_connector, register_dataset, register_participants
from tests.support.server import gateway_settings, https, running_gateway

MAKER = "EU.EORI.NL000000001"
UNIVERSITY = "NTRNL-40000001"
LAB = "NTRNL-40000002"
RESEARCH = "https://w3id.org/dpv#AcademicResearch"
MARKETING = "https://w3id.org/dpv#Marketing"
POLICY_ID = "urn:sluis:policy:maker:{}"


def _policy(dataset: str) -> str:
    return f"""
uid: {POLICY_ID.format(dataset)}
type: Offer
target: urn:sluis:dataset:{dataset}
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    assignee: [urn:sluis:participant:{UNIVERSITY}, urn:sluis:participant:{LAB}]
    constraints: [[purpose, isAnyOf, [dpv:AcademicResearch]]]
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path / "db") as url:
        yield url


def _entries(url: str) -> list[AuditEntry]:
    async def read() -> list[AuditEntry]:
        db = Database(url)
        try:
            reader = AuditReader(db)
            return [r.entry for r in await reader.entry_range(0, await reader.size())]
        finally:
            await db.dispose()

    return asyncio.run(read())


@dataclass
class World:
    """A running gateway: the maker provides 'auto' (automatic) and 'manual' datasets."""

    url: str
    pki: Pki
    base: str
    certs: dict[str, ClientCert]
    seen: int = 0

    def client(self, who: str) -> httpx.Client:
        return https(self.pki, self.certs[who], self.base)

    def new_entries(self) -> list[AuditEntry]:
        """The entries written since the last call."""
        entries = _entries(self.url)
        fresh, self.seen = entries[self.seen :], len(entries)
        return fresh

    def one_entry(self) -> AuditEntry:
        (entry,) = self.new_entries()
        return entry


async def _seed(url: str) -> None:
    db = Database(url)
    await db.upgrade()
    await register_participants(
        db,
        [
            (MAKER, "Machine Maker BV", ["provider"]),
            (UNIVERSITY, "Universiteit Oost", ["consumer"]),
            (LAB, "Fieldlab Noord", ["consumer"]),
        ],
    )
    for dataset, approval in (("auto", "automatic"), ("manual", "manual")):
        await register_dataset(
            db,
            dataset,
            provider=MAKER,
            policy=_policy(dataset),
            connector=files_connector(),  # registration reads the file: a real one
            approval=approval,
        )
    client = ClientCreate(client_id=UNIVERSITY, auth_method="tls_client_auth", scopes=["a"])
    await ClientService(db).create(client, now=NOW)  # seeding, like register_participants
    await db.dispose()


@pytest.fixture
def world(backend: str, tmp_path: Path) -> Iterator[World]:
    pki = Pki(tmp_path / "pki")
    certs = {
        "maker": pki.client("Machine Maker BV", MAKER, ["provider"]),
        "university": pki.client("Universiteit Oost", UNIVERSITY, ["consumer"]),
        "lab": pki.client("Fieldlab Noord", LAB, ["consumer"]),
    }
    asyncio.run(_seed(backend))
    settings = gateway_settings(pki, tmp_path, backend)
    with running_gateway(settings) as base:
        world = World(backend, pki, base, certs)
        world.new_entries()  # the key ring's entry at start: see the key-rotation test
        yield world


def _changes(entries: list[AuditEntry]) -> list[AuditEntry]:
    return [e for e in entries if e.event in {"agreement-changed", "admin-change"}]


def _post(world: World, who: str, path: str, body: dict[str, Any]) -> httpx.Response:
    with world.client(who) as client:
        return client.post(path, json=body)


def _ask(world: World, who: str, dataset: str, purpose: str = RESEARCH) -> httpx.Response:
    return _post(world, who, "/v1/agreements", {"dataset": dataset, "purpose": purpose})


def _move(world: World, who: str, agreement: str, action: str, reason: str = "") -> httpx.Response:
    body = {} if action == "approve" else {"reason": reason}
    return _post(world, who, f"/v1/agreements/{agreement}/{action}", body)


def _state(world: World, agreement: str) -> str:
    with world.client("maker") as client:
        return str(client.get(f"/v1/agreements/{agreement}").json()["state"])


def _check(entry: AuditEntry, action: str, agreement: str, state: str, who: str) -> None:
    assert (entry.event, entry.action, entry.target) == (
        "agreement-changed",
        action,
        f"agreement:{agreement}",
    )
    assert entry.decision is not None
    assert entry.decision.reasons[0] == state
    assert entry.decision.result == ("deny" if state == "rejected" else "permit")
    assert entry.decision.policy_hash is not None
    assert entry.actor.participant == who
    assert entry.actor.certificate is not None
    assert entry.actor.source is not None  # the caller's address: the API knows it


def test_every_agreement_transition_writes_exactly_one_entry(world: World) -> None:
    asked = _ask(world, "university", "auto")
    assert (asked.status_code, asked.json()["state"]) == (201, "active")
    first = asked.json()["id"]
    entry = world.one_entry()
    _check(entry, "request", first, "active", UNIVERSITY)
    assert (entry.dataset, entry.purpose) == ("auto", RESEARCH)

    assert _ask(world, "university", "auto").status_code == 200  # the live one: no change
    assert _changes(world.new_entries()) == []

    assert _move(world, "maker", first, "revoke", "audit found misuse").status_code == 200
    entry = world.one_entry()
    _check(entry, "revoke", first, "revoked", MAKER)
    assert entry.decision is not None
    assert entry.decision.reasons[1] == "audit found misuse"

    held = _ask(world, "university", "auto").json()  # held after the revocation
    assert held["state"] == "requested"
    _check(world.one_entry(), "request", held["id"], "requested", UNIVERSITY)
    assert _move(world, "maker", held["id"], "approve").status_code == 200
    _check(world.one_entry(), "approve", held["id"], "active", MAKER)
    assert _move(world, "university", held["id"], "terminate").status_code == 200
    _check(world.one_entry(), "terminate", held["id"], "terminated", UNIVERSITY)

    manual = _ask(world, "lab", "manual").json()["id"]
    _check(world.one_entry(), "request", manual, "requested", LAB)
    assert _move(world, "maker", manual, "reject", "not this year").status_code == 200
    _check(world.one_entry(), "reject", manual, "rejected", MAKER)

    # Refused transitions change nothing and write nothing.
    assert _move(world, "university", held["id"], "terminate").status_code == 409
    assert _move(world, "lab", first, "approve").status_code == 403
    assert _move(world, "maker", "agr-0000000000000000", "approve").status_code == 404
    assert _changes(world.new_entries()) == []  # (the 403 is an access-decision refusal)


def test_a_request_the_policy_rejects_is_in_the_log_with_its_report(world: World) -> None:
    asked = _ask(world, "lab", "auto", MARKETING)
    assert (asked.status_code, asked.json()["state"]) == (201, "rejected")
    entry = world.one_entry()
    _check(entry, "request", asked.json()["id"], "rejected", LAB)
    assert entry.decision is not None
    assert entry.decision.policy_id == POLICY_ID.format("auto")
    assert entry.decision.policy_hash == asked.json()["policy_hash"]
    assert len(entry.decision.reasons) > 3  # state, reason, the decision's reason, the report


def test_a_transition_whose_reason_reads_as_a_secret_is_made_with_it_redacted(
    world: World,
) -> None:
    """Caller text that reads as a credential never reaches the log (it is redacted, and the
    entry says where), and is no reason to leave the change unrecorded."""
    manual = _ask(world, "lab", "manual").json()["id"]
    world.new_entries()
    jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln"
    response = _move(world, "maker", manual, "reject", f"see {jwt}")
    assert response.status_code == 200, response.text
    assert _state(world, manual) == "rejected"
    (change,) = _changes(world.new_entries())
    assert change.redacted
    assert jwt not in change.model_dump_json()


def _token(world: World) -> str:
    with world.client("university") as client:
        response = client.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials", "client_id": UNIVERSITY},
        )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _session(world: World, token: str) -> int:
    with world.client("university") as client:
        response = client.get("/v1/session", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


def _revoke(world: World, who: str, token: str) -> int:
    with world.client(who) as client:
        return client.post("/oauth2/revoke", data={"token": token}).status_code


def test_a_token_revocation_writes_one_entry_with_the_token_only_as_its_hash(
    world: World,
) -> None:
    token = _token(world)
    assert [e.event for e in world.new_entries()] == ["token-issued"]
    assert _revoke(world, "lab", token) == 200  # not the lab's token: nothing changes
    assert _changes(world.new_entries()) == []
    assert _session(world, token) == 200

    assert _revoke(world, "university", token) == 200
    entry = world.one_entry()
    digest = hash_token(token)
    assert (entry.event, entry.action, entry.target) == (
        "admin-change",
        "revoke",
        f"token:{digest}",
    )
    assert entry.token_sha256 == digest
    assert (entry.actor.participant, entry.actor.client) == (UNIVERSITY, UNIVERSITY)
    assert entry.actor.certificate is not None
    assert token not in entry.model_dump_json()
    assert _session(world, token) == 401

    assert _revoke(world, "university", token) == 200  # revoked already: no change, no entry
    assert _changes(world.new_entries()) == []


def test_no_transition_nor_revocation_is_made_when_its_entry_cannot_be_written(
    world: World,
) -> None:
    requested = _ask(world, "lab", "manual").json()["id"]
    token = _token(world)
    asyncio.run(_refuse_audit_inserts(world.url))
    before = _entries(world.url)

    response = _ask(world, "university", "auto")
    assert response.status_code == 503
    assert response.json()["type"] == "urn:sluis:problem:storage-unavailable"
    with world.client("university") as client:
        assert client.get("/v1/agreements").json() == []  # no agreement was made
    for action in ("approve", "reject", "revoke"):
        assert _move(world, "maker", requested, action).status_code == 503
    assert _move(world, "lab", requested, "terminate").status_code == 503
    assert _state(world, requested) == "requested"

    assert _revoke(world, "university", token) == 503  # not revoked: the client may retry
    assert _session(world, token) == 200
    assert _entries(world.url) == before


# --- the token signing key ----------------------------------------------------------------


def test_a_new_token_key_is_recorded_with_its_entry(backend: str) -> None:
    async def run() -> None:
        db = Database(backend)
        await db.upgrade()
        audit = AuditLog(db, SIGNER, ORIGIN)
        lifetime = NOW - NOW
        key = ed25519.Ed25519PrivateKey.generate()
        first = KeyRing(db, key, lifetime, audit)
        second = KeyRing(db, ed25519.Ed25519PrivateKey.generate(), lifetime, audit)
        try:
            await first.start(NOW)
            await KeyRing(db, key, lifetime, audit).start(NOW)  # a restart: no change
            await second.start(NOW)
            entries = [r.entry for r in await audit.entries()]
            assert [(e.event, e.action, e.target) for e in entries] == [
                ("admin-change", "rotate", f"token-key:{first.kid}"),
                ("admin-change", "rotate", f"token-key:{second.kid}"),
            ]
            assert entries[0].decision is not None
            assert entries[1].decision is not None
            assert entries[0].decision.reasons == (f"alg={first.alg}", "retired=")
            assert entries[1].decision.reasons == (f"alg={second.alg}", f"retired={first.kid}")
            assert entries[1].actor.source is not None
            assert entries[1].actor.source.startswith("gateway:")

            await _refuse_audit_inserts(backend)
            third = KeyRing(db, ed25519.Ed25519PrivateKey.generate(), lifetime, audit)
            with pytest.raises(StorageUnavailable):
                await third.start(NOW)
            async with db.session() as session:
                rows = {row.kid: row.retired_at for row in await oauth_repo.token_keys(session)}
            assert rows == {first.kid: NOW, second.kid: None}  # the third key is not recorded
        finally:
            await audit.close()
            await db.dispose()

    asyncio.run(run())
