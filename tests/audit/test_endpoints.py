"""The audit API over a real log: roles, proofs that verify, 400/422 for bad parameters."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import httpx
from fastapi import FastAPI

from certs import CertificateIdentity
from gateway.audit import endpoints
from gateway.audit.checkpoint import verify_checkpoint
from gateway.audit.encoding import decode_base64
from gateway.audit.merkle import verify_consistency, verify_inclusion
from gateway.http import problems
from gateway.http.deps import authenticated
from gateway.participants.schemas import Participant
from gateway.participants.service import AuthenticatedParticipant
from gateway.telemetry import configure
from tests.audit.logs import ORIGIN, SIGNER, opened, sample
from tests.support.databases import database_url

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def _caller(*roles: str) -> AuthenticatedParticipant:
    participant = Participant(
        id="NTRNL-12345678",
        name="x",
        roles=list(roles),
        status="active",
        created_at=NOW,
        updated_at=NOW,
    )
    identity = CertificateIdentity(
        organization_id="NTRNL-12345678",
        organization_name="x",
        participant_uri="urn:sluis:participant:NTRNL-12345678",
        roles=frozenset(roles),
        thumbprint_sha256="t",
        serial_number=1,
        subject="CN=x",
        issuer="CN=ca",
        not_after=NOW,
    )
    return AuthenticatedParticipant(participant, frozenset(roles), identity, "tls")


def _app(audit: object, *roles: str) -> FastAPI:
    app = FastAPI()
    problems.install(app)
    app.include_router(endpoints.router)
    app.state.services = SimpleNamespace(audit=audit, telemetry=configure("sluis-test"))

    async def fake() -> AuthenticatedParticipant:
        return _caller(*roles)

    app.dependency_overrides[authenticated] = fake
    return app


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://t")


def test_audit_api(tmp_path: Path) -> None:
    async def run(url: str) -> None:
        async with opened(url, sign_batches=False) as log:
            for n in range(6):
                await log.append(sample(n))
            async with _client(_app(log, "consumer")) as client:
                note = (await client.get("/v1/audit/checkpoint")).content
                cp = verify_checkpoint(note, [SIGNER.verifier()], ORIGIN)
                assert cp.size == 6
                got = await client.get("/v1/audit/proofs/inclusion?index=4&tree_size=6")
                body = got.json()
                hashes = [decode_base64(h) for h in body["hashes"]]
                verify_inclusion(decode_base64(body["leaf_hash"]), 4, 6, hashes, cp.root_hash)
                old = await log.root_at(3)
                got = await client.get("/v1/audit/proofs/consistency?size1=3&size2=6")
                hashes = [decode_base64(h) for h in got.json()["hashes"]]
                verify_consistency(3, 6, hashes, old, cp.root_hash)
                beyond = await client.get("/v1/audit/proofs/inclusion?index=0&tree_size=7")
                assert beyond.status_code == 404
                assert beyond.json()["type"] == "urn:sluis:problem:size-out-of-range"
                first = await client.get("/v1/audit/checkpoint?at_least=1")
                assert first.content == note  # the only checkpoint: of 6 entries
                ahead = await client.get("/v1/audit/checkpoint?at_least=7")
                assert ahead.status_code == 404
                assert ahead.json()["type"] == "urn:sluis:problem:size-out-of-range"
                bad = await client.get("/v1/audit/proofs/inclusion?index=-1&tree_size=6")
                assert bad.status_code == 422
                assert (await client.get("/v1/audit/entries")).status_code == 403
            async with _client(_app(log, "officer")) as client:
                # found by schemathesis: an index beyond 64 bits was an SQLite overflow (500)
                huge = await client.get(f"/v1/audit/entries?before={2**64}")
                assert huge.status_code == 422
                bare = await client.get("/v1/audit/counts?until=0.5")  # not Unix time
                assert bare.status_code == 422
                page = (await client.get("/v1/audit/entries?decision=deny&limit=1")).json()
                assert page["entries"][0]["index"] == 0
                assert page["entries"][0]["entry"]["decision"]["result"] == "deny"
                nxt = await client.get(
                    f"/v1/audit/entries?decision=deny&after={page['next_after']}"
                )
                # 6 is the consumer's refused read of the entries above: refusals are audited
                assert [e["index"] for e in nxt.json()["entries"]] == [4, 6]
                assert nxt.json()["entries"][1]["entry"]["event"] == "access-decision"
                naive = await client.get("/v1/audit/entries?since=2026-11-27T00:00:00")
                assert naive.status_code == 422
                for number in ("0.5", "1700000000"):  # pydantic read these as Unix time
                    unix = await client.get(f"/v1/audit/entries?until={number}")
                    assert unix.status_code == 422, number
                    assert unix.headers["content-type"] == "application/problem+json"
                zoned = await client.get("/v1/audit/entries?until=2099-01-01T00:00:00%2B01:00")
                assert zoned.status_code == 200
        async with _client(_app(None, "consumer")) as client:
            assert (await client.get("/v1/audit/checkpoint")).status_code == 503

    with database_url("sqlite", tmp_path) as url:
        asyncio.run(run(url))
