"""Refusals are bounded per source and window; the token endpoint is rate-limited (issue 11).

Real gateways over real TLS, on SQLite and PostgreSQL, with the clock injected so that
windows open and close when the test says. Two replicas sharing PostgreSQL (database
counters) or Redis hold one limit between them. Entries are read from the store itself.
"""

from __future__ import annotations

import asyncio
import secrets
import ssl
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from gateway.audit.log import AuditReader
from gateway.client import mtls_context
from gateway.storage.db import Database
from tests.support.databases import database_url, postgres_database
from tests.support.pki import ClientCert, Pki
from tests.support.redis import redis_url
from tests.support.registry import register_participants
from tests.support.server import gateway_settings, running_gateway

UNIVERSITY = "NTRNL-40000001"
MAKER = "EU.EORI.NL000000001"
LIMITS: dict[str, Any] = {
    "rate_limit_window": 60,
    "refusal_entries_per_window": 2,
    "refusal_limit_per_window": 4,
    "token_requests_per_window": 3,
}


class FakeClock:
    """The gateway's clock for rate-limit windows; tests move it."""

    def __init__(self) -> None:
        # A random hour far from now: Redis keys of earlier runs cannot collide.
        self.now = datetime(2031, 1, 1, tzinfo=UTC) + timedelta(hours=secrets.randbelow(10**6))

    def __call__(self) -> datetime:
        return self.now

    def next_window(self, offset: float = 10) -> None:
        """Jump to ``offset`` seconds into a window no request has used yet."""
        start = self.now.replace(second=0, microsecond=0) + timedelta(minutes=5)
        self.now = start + timedelta(seconds=offset)


@dataclass
class World:
    urls: list[str]
    pki: Pki
    database: str
    clock: FakeClock
    university: ClientCert


async def _register(url: str) -> None:
    db = Database(url)
    await db.upgrade()
    await register_participants(
        db,
        [(UNIVERSITY, "Universiteit Oost", ["consumer"]), (MAKER, "Maker", ["operator"])],
    )
    await db.dispose()


def _entries(url: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        db = Database(url)
        try:
            reader = AuditReader(db)
            records = await reader.entry_range(0, await reader.size())
        finally:
            await db.dispose()
        return [record.json() for record in records]

    return asyncio.run(read())


def _anonymous(world: World, replica: int = 0) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(world.pki.bundle))
    return httpx.Client(base_url=world.urls[replica], verify=context, timeout=30)


def _university(world: World, replica: int = 0) -> httpx.Client:
    cert = world.university
    context = mtls_context(world.pki.bundle, cert.cert_path, cert.key_path)
    return httpx.Client(base_url=world.urls[replica], verify=context, timeout=30)


def _add_client(world: World, maker: ClientCert) -> None:
    context = mtls_context(world.pki.bundle, maker.cert_path, maker.key_path)
    with httpx.Client(base_url=world.urls[0], verify=context, timeout=30) as admin:
        body = {"client_id": UNIVERSITY, "auth_method": "tls_client_auth", "scopes": ["a"]}
        assert admin.post("/v1/admin/clients", json=body).status_code == 201


@contextmanager
def _world(url: str, home: Path, replicas: int = 1, **settings: Any) -> Iterator[World]:
    pki = Pki(home / "pki")
    university = pki.client("Universiteit Oost", UNIVERSITY)
    maker = pki.client("Maker", MAKER, ["operator"])
    asyncio.run(_register(url))
    clock = FakeClock()
    config = gateway_settings(pki, home, url, **(LIMITS | settings))
    with ExitStack() as stack:
        urls = [stack.enter_context(running_gateway(config, clock=clock)) for _ in range(replicas)]
        world = World(urls, pki, url, clock, university)
        _add_client(world, maker)
        yield world


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def single(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    home = tmp_path_factory.mktemp(f"limits-{request.param}")
    with database_url(request.param, home) as url, _world(url, home) as world:
        yield world


@pytest.fixture(scope="module", params=["database", "redis"])
def replicas(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    extra: dict[str, Any] = {"rate_limit_backend": request.param}
    if request.param == "redis":
        extra["redis_url"] = redis_url()
    home = tmp_path_factory.mktemp(f"replicas-{request.param}")
    with postgres_database() as url, _world(url, home, replicas=2, **extra) as world:
        yield world


def _in_window(entries: list[dict[str, Any]], event: str, since: int) -> list[dict[str, Any]]:
    return [e for e in entries[since:] if e["event"] == event]


def _token(world: World, replica: int = 0) -> httpx.Response:
    with _university(world, replica) as client:
        return client.post(
            "/oauth2/token", data={"grant_type": "client_credentials", "client_id": UNIVERSITY}
        )


def _is_rate_limited(response: httpx.Response, retry_after: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:sluis:problem:rate-limited"
    assert response.headers["retry-after"] == str(retry_after)


def test_anonymous_refusals_are_bounded_and_summarised(single: World) -> None:
    single.clock.next_window(offset=10)
    before = len(_entries(single.database))
    with _anonymous(single) as client:
        statuses = [client.get("/v1/catalog") for _ in range(7)]
        assert [r.status_code for r in statuses[:5]] == [401] * 5
        for response in statuses[5:]:
            _is_rate_limited(response, retry_after=50)
        assert client.get("/healthz").status_code == 200  # probes are never throttled
    entries = _entries(single.database)
    refused = _in_window(entries, "certificate-refused", before)
    assert len(refused) == 2  # the first two; the rest wait for the window to close
    assert {e["actor"]["source"] for e in refused} == {"127.0.0.1"}
    assert _in_window(entries, "refusals-summarised", before) == []
    window = single.clock.now.replace(second=0)
    single.clock.now += timedelta(seconds=60)
    with _anonymous(single) as client:
        assert client.get("/v1/catalog").status_code == 401  # a new window: served again
    entries = _entries(single.database)
    (summary,) = _in_window(entries, "refusals-summarised", before)
    label = f"{window:%Y-%m-%dT%H:%M:%SZ}/{window + timedelta(seconds=60):%Y-%m-%dT%H:%M:%SZ}"
    assert summary["actor"] == {"source": "127.0.0.1"}
    assert summary["decision"]["reasons"] == [
        f"5 further refusals from source 127.0.0.1 in interval {label}",
        "count=5",
        f"interval={label}",
        "certificate-refused=3",
        "rate-limited=2",
    ]
    assert len(_in_window(entries, "certificate-refused", before)) == 3


def test_the_token_endpoint_is_rate_limited_per_client(single: World) -> None:
    single.clock.next_window(offset=15)
    before = len(_entries(single.database))
    assert [_token(single).status_code for _ in range(3)] == [200] * 3
    _is_rate_limited(_token(single), retry_after=45)
    refused = _in_window(_entries(single.database), "token-refused", before)
    assert [e["decision"]["reasons"] for e in refused] == [["rate-limited"]]
    assert refused[0]["actor"]["client"] == UNIVERSITY


def test_open_summaries_are_written_at_shutdown(tmp_path: Path) -> None:
    with database_url("sqlite", tmp_path) as url:
        with _world(url, tmp_path) as world, _anonymous(world) as client:
            for _ in range(4):
                assert client.get("/v1/catalog").status_code == 401
        (summary,) = _in_window(_entries(url), "refusals-summarised", 0)
    assert summary["decision"]["reasons"][1:2] == ["count=2"]


def test_limits_hold_across_replicas(replicas: World) -> None:
    replicas.clock.next_window(offset=20)
    before = len(_entries(replicas.database))
    statuses = []
    for i in range(7):
        with _anonymous(replicas, i % 2) as client:
            statuses.append(client.get("/v1/catalog"))
    assert [r.status_code for r in statuses[:6]] == [401] * 6
    _is_rate_limited(statuses[6], retry_after=40)
    refused = _in_window(_entries(replicas.database), "certificate-refused", before)
    assert len(refused) == 2  # two entries between both replicas, not two each
    replicas.clock.next_window(offset=20)
    assert [_token(replicas, i % 2).status_code for i in range(3)] == [200] * 3
    _is_rate_limited(_token(replicas, 1), retry_after=40)
    replicas.clock.next_window(offset=20)
    for replica in (0, 1):  # a refusal in a later window makes each replica write its summary
        with _anonymous(replicas, replica) as client:
            assert client.get("/v1/catalog").status_code == 401
    summaries = _in_window(_entries(replicas.database), "refusals-summarised", before)
    assert sum(int(s["decision"]["reasons"][1].removeprefix("count=")) for s in summaries) == 5


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_behind_a_proxy_the_participant_is_throttled_not_the_proxy(
    backend: str, tmp_path: Path
) -> None:
    pki = Pki(tmp_path / "pki")
    university = pki.client("Universiteit Oost", UNIVERSITY)
    xfcc = {"x-forwarded-client-cert": f'Hash=abc;Cert="{quote(university.leaf_pem)}"'}
    clock = FakeClock()
    clock.next_window(offset=10)
    with database_url(backend, tmp_path) as url:
        asyncio.run(_register(url))
        proxied = {"plain_http": True, "trusted_proxies": ["127.0.0.0/8"]}
        settings = gateway_settings(pki, tmp_path, url, **(LIMITS | proxied))
        with running_gateway(settings, clock=clock) as base, httpx.Client(base_url=base) as proxy:
            headers = xfcc | {"Authorization": "Bearer not.a.token"}
            refused = [proxy.get("/v1/session", headers=headers) for _ in range(5)]
            assert [r.status_code for r in refused] == [401] * 5
            _is_rate_limited(proxy.get("/v1/session", headers=headers), retry_after=50)
            anonymous = proxy.get("/v1/catalog")  # another client behind the same proxy
            assert anonymous.status_code == 401, anonymous.text
        entries = _entries(url)
    assert len(_in_window(entries, "token-refused", 0)) == 2  # entries stay sampled per source
    (summary,) = _in_window(entries, "refusals-summarised", 0)  # written at shutdown
    assert summary["decision"]["reasons"][3:] == [
        "certificate-refused=1",
        "rate-limited=1",
        "token-refused=3",
    ]
