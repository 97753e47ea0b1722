"""The probes (gateway/http/health.py) and the health port's filter (health_port.py), in process.

The real router and problem handlers in a small FastAPI app, the database and the CRLs
recording stand-ins: ready only while the database answers and every CRL is current, each
refusal a 503 problem with its code. The
health port's filter on ASGI scopes: GET and HEAD of the two probes reach the app, anything
else is its own 404. Over sockets, test_mtls.py and test_health_port.py see only the ready
answer; none of the three 503s was tested before.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message, Scope

from certs import CertificateRejected
from gateway.http import health
from gateway.http.health_port import PROBE_PATHS, health_only
from gateway.http.problems import install
from gateway.storage import StorageUnavailable


class Db:
    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure
        self.pinged = 0

    async def ping(self) -> None:
        self.pinged += 1
        if self.failure is not None:
            raise self.failure


class Trust:
    def __init__(self, crls: Any) -> None:
        self.current = crls

    def crls(self) -> Any:
        if isinstance(self.current, Exception):
            raise self.current
        return self.current


def _crl(next_update: datetime | None) -> Any:
    return SimpleNamespace(next_update_utc=next_update)


def _get(path: str, db: Db, trust: Trust) -> httpx.Response:
    app = FastAPI()
    install(app)
    app.include_router(health.router)
    app.state.services = SimpleNamespace(db=db, trust=trust, audit=None, limits=None)

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://sluis") as client:
            return await client.get(path)

    return asyncio.run(call())


def _unavailable(response: httpx.Response, code: str, detail: str) -> None:
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"urn:sluis:problem:{code}"
    assert body["title"] == "Service unavailable"
    assert body["detail"] == detail


def test_healthz_answers_without_asking_anything() -> None:
    db = Db(StorageUnavailable("down"))
    response = _get("/healthz", db, Trust(CertificateRejected("crl-unavailable", "x")))
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert db.pinged == 0


def test_ready_with_the_database_up_and_every_crl_current() -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    db = Db()
    for crls in ((), (_crl(later),), (_crl(later), _crl(later + timedelta(days=1)))):
        response = _get("/readyz", db, Trust(crls))
        assert response.status_code == 200
        assert response.json() == {"status": "ready"}
    assert db.pinged == 3


def test_not_ready_without_the_database() -> None:
    response = _get("/readyz", Db(StorageUnavailable("down")), Trust(()))
    _unavailable(response, "storage-unavailable", "the database is unavailable")


def test_not_ready_without_a_readable_crl() -> None:
    refused = CertificateRejected("crl-unavailable", "the CRL file /x cannot be read")
    response = _get("/readyz", Db(), Trust(refused))
    _unavailable(response, "crl-unavailable", "the CRL file /x cannot be read")


@pytest.mark.parametrize(
    "next_update", [None, timedelta(seconds=-1), timedelta(seconds=0)], ids=str
)
def test_not_ready_with_a_crl_past_or_without_its_next_update(
    next_update: timedelta | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime(2026, 12, 3, 12, tzinfo=UTC)

    class Clock(datetime):
        @classmethod
        def now(cls, _tz: Any = None) -> Any:
            return now

    monkeypatch.setattr(health, "datetime", Clock)
    current = _crl(now + timedelta(microseconds=1))
    stale = _crl(None if next_update is None else now + next_update)
    response = _get("/readyz", Db(), Trust((current, stale)))
    _unavailable(response, "crl-expired", "a CRL is past its nextUpdate: run `sluis certs crl`")
    assert _get("/readyz", Db(), Trust((current,))).status_code == 200


# --- the health port ------------------------------------------------------------------------


def _through(scope: Scope) -> tuple[list[Message], list[Scope]]:
    reached: list[Scope] = []
    sent: list[Message] = []

    async def app(scope: Scope, _receive: Any, _send: Any) -> None:
        reached.append(scope)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(health_only(app)(scope, receive, send))
    return sent, reached


def _http(method: str, path: str) -> Scope:
    return {"type": "http", "method": method, "path": path, "headers": []}


def test_the_probe_paths() -> None:
    assert frozenset({"/healthz", "/readyz"}) == PROBE_PATHS


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_the_probes_reach_the_app(method: str, path: str) -> None:
    scope = _http(method, path)
    sent, reached = _through(scope)
    assert sent == []
    assert reached == [scope]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/healthz"), ("PUT", "/readyz"), ("OPTIONS", "/healthz"), ("get", "/healthz"),
     ("GET", "/"), ("GET", "/healthz/"), ("GET", "/v1/catalog"), ("HEAD", "/docs")],
)  # fmt: skip
def test_anything_else_is_the_ports_own_404(method: str, path: str) -> None:
    sent, reached = _through(_http(method, path))
    assert reached == []
    start, body = sent
    detail = "the health port serves /healthz and /readyz only"
    expected = json.dumps(
        {"type": "urn:sluis:problem:not-found", "title": "Not found", "status": 404,
         "detail": detail}
    ).encode()  # fmt: skip
    assert start == {
        "type": "http.response.start",
        "status": 404,
        "headers": [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(expected)).encode()),
        ],
    }
    assert body == {"type": "http.response.body", "body": expected}


@pytest.mark.parametrize("kind", ["lifespan", "websocket"])
def test_other_scopes_reach_nothing(kind: str) -> None:
    sent, reached = _through({"type": kind, "method": "GET", "path": "/healthz"})
    assert sent == []
    assert reached == []


def test_a_probe_reaches_the_app_with_the_connections_receive_and_send() -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen.extend([scope, receive, send])

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(_message: Message) -> None:
        return None

    scope = _http("GET", "/readyz")
    asyncio.run(health_only(app)(scope, receive, send))
    assert seen == [scope, receive, send]
