"""``/v1/officer/*``: agreements, participants and revocations, for officers only.

A real SQLite registry with an active agreement, and a real PKI whose CRL revokes one
certificate; a missing CRL is a 503, never the caller's certificate refusal.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import httpx
from fastapi import FastAPI

from gateway.console import api
from gateway.http import problems
from gateway.http.deps import authenticated
from gateway.participants.service import AuthenticatedParticipant, ParticipantService
from gateway.storage.db import Database
from gateway.telemetry import configure
from gateway.trust import TrustMaterial
from tests.audit.test_endpoints import _caller
from tests.gateway.test_agreement_uses import _AUDITS, _active, _close, _service, _world
from tests.support.databases import database_url
from tests.support.pki import Pki

PATHS = ["/v1/officer/agreements", "/v1/officer/participants", "/v1/officer/revocations"]


def _app(services: object, *roles: str) -> FastAPI:
    app = FastAPI()
    problems.install(app)
    app.include_router(api.router)
    app.state.services = services

    async def fake() -> AuthenticatedParticipant:
        return _caller(*roles)

    app.dependency_overrides[authenticated] = fake
    return app


async def _get(app: FastAPI, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://t") as client:
        return await client.get(path)


def test_officer_views(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    revoked = pki.client("Gone BV", "NTRNL-99999999")
    pki.revoke(revoked)

    async def run(url: str) -> None:
        db = Database(url)
        try:
            await _world(db)
            agreement_id, _ = await _active(db)
            agreements = _service(db)
            services = SimpleNamespace(
                agreements=agreements,
                datasets=agreements.datasets,
                audit=_AUDITS[id(db)],  # refusals are audited
                telemetry=configure("sluis-test"),
                participants=ParticipantService(db),
                trust=TrustMaterial(pki.bundle, pki.crl_path),
            )
            officer = _app(services, "officer")
            for path in PATHS:
                assert (await _get(officer, path)).headers["cache-control"] == "no-store"
            agreements = (await _get(officer, "/v1/officer/agreements")).json()
            assert [(a["id"], a["state"], a["use_count"]) for a in agreements] == [
                (agreement_id, "active", 0)
            ]
            assert (agreements[0]["use_limit"], agreements[0]["uses_left"]) == (None, None)
            people = (await _get(officer, "/v1/officer/participants")).json()
            assert sorted(p["id"] for p in people) == ["NTRNL-10000001", "NTRNL-10000002"]
            crl = (await _get(officer, "/v1/officer/revocations")).json()
            assert [r["serial"] for r in crl] == [format(revoked.cert.serial_number, "x")]
            too_many = await _get(officer, "/v1/officer/agreements?limit=1001")
            assert too_many.status_code == 422
            for roles in [("consumer",), ("provider", "operator")]:
                for path in PATHS:
                    refused = await _get(_app(services, *roles), path)
                    assert refused.status_code == 403, path
            pki.crl_path.unlink()
            gone = await _get(officer, "/v1/officer/revocations")
            assert gone.status_code == 503
            assert gone.json()["type"] == "urn:sluis:problem:crl-unavailable"
        finally:
            await _close(db)

    with database_url("sqlite", tmp_path) as url:
        asyncio.run(run(url))


def test_the_entry_page_carries_the_trace_url_escaped_and_others_do_not() -> None:
    """``trace_url`` reaches the entry page as an attribute value, HTML-escaped; without it
    the placeholder stays empty (the script then links no backend)."""
    from gateway.console.endpoints import FILES, TRACE_URL_META, _serve  # noqa: PLC0415

    assert TRACE_URL_META in FILES["entry.html"][0]
    filled = _serve("entry.html", trace_url="https://t.example/trace/{trace_id}?a=1&b=2").body
    assert b'content="https://t.example/trace/{trace_id}?a=1&amp;b=2"' in filled
    assert TRACE_URL_META in _serve("entry.html").body
    assert (
        _serve("entries.html", trace_url="https://t.example/{trace_id}").body
        == FILES["entries.html"][0]
    )
