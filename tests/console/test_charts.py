"""The overview's SVG charts, uses left and agreement histories, over a real SQLite log.

Entries are appended through the real audit log (signed, with their tree); agreements are
requested, spent and revoked through the real services. Each chart must parse as XML,
hold the numbers the log holds, and carry attacker-written labels only as text.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from xml.etree import ElementTree as ET

import httpx
import pytest
from fastapi import FastAPI

from gateway.agreements import usage
from gateway.agreements.schemas import AgreementRequest
from gateway.audit.entry import Actor, AuditEntry, DecisionRecord
from gateway.audit.log import AuditLog
from gateway.console import api, charts_endpoints
from gateway.http import problems
from gateway.http.deps import authenticated
from gateway.participants.service import AuthenticatedParticipant
from gateway.storage.db import Database
from gateway.telemetry import configure
from tests.audit.test_endpoints import _caller
from tests.gateway.test_agreement_uses import (
    _AUDITS,
    CONSUMER,
    PURPOSE,
    _active,
    _close,
    _party,
    _service,
    _world,
)
from tests.support.databases import database_url
from tests.support.pki import NOW

SVG = "{http://www.w3.org/2000/svg}"
LIMITED = """
uid: urn:sluis:policy:five
type: Offer
target: urn:sluis:dataset:d
permissions: [{action: read, constraints: [[count, lteq, 5]]}]
"""
HOSTILE_DATASET = "<script>alert(1)</script>\u202eevil"
HOSTILE_REASON = '"><svg onload=alert(1)>'
AUTO = "approved automatically by the dataset's policy"
PERIOD = {"since": (NOW - timedelta(days=1)).isoformat(), "until": NOW.isoformat()}


def _decision(hours_ago: int, dataset: str, who: str, result: str, reason: str) -> AuditEntry:
    return AuditEntry(
        time=NOW - timedelta(hours=hours_ago, minutes=1),
        event="access-decision",
        actor=Actor(participant=who),
        dataset=dataset,
        decision=DecisionRecord(result=result, reasons=(reason, "the full report")),  # type: ignore[arg-type]
    )


async def _fill(audit: AuditLog) -> None:
    entries = [_decision(2, "d", "NTRNL-1", "permit", "permitted") for _ in range(3)]
    entries += [_decision(5, "d", "NTRNL-2", "permit", "permitted")]
    entries += [_decision(5, HOSTILE_DATASET, "NTRNL-3", "deny", "no-agreement")] * 2
    entries += [_decision(7, "d", "NTRNL-2", "deny", HOSTILE_REASON)]
    entries += [_decision(30, "d", "NTRNL-9", "permit", "outside the period")]
    for entry in entries:
        await audit.append(entry)


def _app(services: object, *roles: str) -> FastAPI:
    app = FastAPI()
    problems.install(app)
    app.include_router(api.router)
    app.include_router(charts_endpoints.router)
    app.state.services = services

    async def fake() -> AuthenticatedParticipant:
        return _caller(*roles)

    app.dependency_overrides[authenticated] = fake
    return app


@asynccontextmanager
async def _site(url: str) -> AsyncIterator[tuple[FastAPI, str]]:
    db = Database(url)
    try:
        await _world(db, LIMITED)
        agreement_id, key = await _active(db)
        for _ in range(4):
            async with db.session() as session:
                await usage.spend(session, key, NOW, agreement_id=agreement_id, cap=5)
        agreements = _service(db)
        await _fill(_AUDITS[id(db)])
        services = SimpleNamespace(
            db=db,
            agreements=agreements,
            datasets=agreements.datasets,
            audit=_AUDITS[id(db)],
            telemetry=configure("sluis-test"),
        )
        yield _app(services, "officer"), agreement_id
    finally:
        await _close(db)


async def _get(app: FastAPI, path: str, **params: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://t") as client:
        return await client.get(path, params=params)


def _texts(svg: bytes) -> list[str]:
    root = ET.fromstring(svg)  # noqa: S314 - our own output, parsed to check it is well-formed
    assert root.tag == f"{SVG}svg"
    assert not [e for e in root.iter() if e.tag in (f"{SVG}script", f"{SVG}foreignObject")]
    assert not [a for e in root.iter() for a in e.attrib if a.startswith("on") or a == "style"]
    return ["".join(e.itertext()) for e in root.iter(f"{SVG}text")]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_charts_hold_the_logs_numbers_and_only_text(tmp_path: Path, backend: str) -> None:
    async def run(url: str) -> None:
        async with _site(url) as (app, _):
            requests = await _get(app, "/console/charts/requests.svg", **PERIOD)
            assert requests.status_code == 200
            assert requests.headers["content-type"].startswith("image/svg+xml")
            assert "script-src 'self'" in requests.headers["content-security-policy"]
            texts = _texts(requests.content)
            assert "d (5)" in texts  # 3 + 1 + 1 in the period; the one 30 hours ago is not
            assert any(t.startswith("<script>alert(1)</script>\u27e8U+202E\u27e9") for t in texts)
            assert b"<script>" not in requests.content  # escaped: &lt;script&gt;

            denials = _texts((await _get(app, "/console/charts/denials.svg", **PERIOD)).content)
            assert denials[:4] == [
                "access-decision: no-agreement", "2",
                f"access-decision: {HOSTILE_REASON}", "1",
            ]  # fmt: skip

            consumers = await _get(app, "/console/charts/consumers.svg", **PERIOD)
            texts = _texts(consumers.content)
            assert texts[:5] == ["d", "NTRNL-1", "3", "NTRNL-2", "2"]

            limits = _texts((await _get(app, "/console/charts/limits.svg")).content)
            assert limits == ["NTRNL-10000002 \u2192 d", "4/5, 1 left"]

            quiet = {"since": NOW.isoformat(), "until": (NOW + timedelta(hours=1)).isoformat()}
            empty = await _get(app, "/console/charts/requests.svg", **quiet)
            assert _texts(empty.content) == ["No access decisions in this period."]

            unknown = await _get(app, "/console/charts/secrets.svg")
            assert unknown.status_code == 404
            assert unknown.json()["type"] == "urn:sluis:problem:not-found"
            bad = await _get(app, "/console/charts/requests.svg", since="yesterday")
            assert bad.status_code == 422

    with database_url(backend, tmp_path) as url:
        asyncio.run(run(url))


def test_uses_left_and_the_agreements_own_history(tmp_path: Path) -> None:
    async def run(url: str) -> None:
        async with _site(url) as (app, agreement_id):
            (agreement,) = (await _get(app, "/v1/officer/agreements")).json()
            assert (agreement["use_count"], agreement["use_limit"], agreement["uses_left"]) == (
                4,
                5,
                1,
            )
            services = app.state.services
            provider = _party("NTRNL-10000001", "provider")
            await services.agreements.revoke(agreement_id, provider, "<b>misuse</b>", now=NOW)
            # a second agreement on the same dataset: its changes are not this one's history
            asked = await services.agreements.request(
                _party(CONSUMER, "consumer"),
                AgreementRequest(dataset="d", purpose=PURPOSE),
                now=NOW,
            )
            second = asked.agreement.id  # held for the provider after a revocation
            history = await _get(app, f"/v1/officer/agreements/{agreement_id}/history")
            assert history.headers["cache-control"] == "no-store"
            rows = [(e["action"], e["state"], e["reasons"][:1]) for e in history.json()]
            assert rows == [("request", "active", [AUTO]), ("revoke", "revoked", ["<b>misuse</b>"])]
            assert all(isinstance(e["index"], int) for e in history.json())
            assert second != agreement_id
            (other,) = (await _get(app, f"/v1/officer/agreements/{second}/history")).json()
            assert other["action"] == "request"
            missing = await _get(app, "/v1/officer/agreements/nope/history")
            assert missing.status_code == 404
            assert missing.json()["type"] == "urn:sluis:problem:agreement-not-found"

    with database_url("sqlite", tmp_path) as url:
        asyncio.run(run(url))


def test_charts_and_histories_are_for_officers_only(tmp_path: Path) -> None:
    async def run(url: str) -> None:
        async with _site(url) as (app, agreement_id):
            services = app.state.services
            for roles in [("consumer",), ("provider", "operator")]:
                other = _app(services, *roles)
                for path in (
                    "/console/charts/requests.svg",
                    "/console/charts/limits.svg",
                    f"/v1/officer/agreements/{agreement_id}/history",
                ):
                    refused = await _get(other, path)
                    assert refused.status_code == 403, path
                    assert refused.json()["type"] == "urn:sluis:problem:role-required"

    with database_url("sqlite", tmp_path) as url:
        asyncio.run(run(url))
