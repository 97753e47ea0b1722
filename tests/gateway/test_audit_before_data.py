"""Audited before data: no byte leaves, and no source is asked, before the decision is committed.

The fault is injected at the storage boundary, not in the exchange: a SQLAlchemy
``before_cursor_execute`` hook on every engine acts on the audit log's own INSERT into
``audit_entries`` and nothing else, so every other read and write of the request still works.
On SQLite the writer's last steps (head, nodes, entries, checkpoint) run in one hop on the
driver's own connection, where no SQLAlchemy event sees them: there the hook acts on the
statement that opens the writer's transaction, the sequencer lock on ``audit_head``, which
nothing but the writer runs.

* ``fail``: that INSERT raises. The query, data and pass-through paths must answer 503
  problem+json, release no row and never reach the upstream.
* ``block``: that INSERT waits (without blocking the event loop, so anything the gateway
  did out of order would show). While it waits, the upstream has seen nothing and the client
  has no response; once released, the request completes with its data.

The upstream is a real HTTP server on loopback that counts what it is asked.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.util import await_only

from gateway.audit.repository import SqliteTail
from gateway.client import mtls_context
from gateway.storage.db import Database
from tests.support.databases import database_url
from tests.support.pki import ClientCert, Pki
from tests.support.registry import register_dataset, register_participants
from tests.support.server import gateway_settings, running_gateway
from tests.support.upstream import Upstream, counting_upstream

MAKER = "EU.EORI.NL000000001"
UNIVERSITY = "NTRNL-40000001"
RESEARCH = "https://w3id.org/dpv#AcademicResearch"
READINGS = [{"machine": "X200", "temp_c": 61.5}, {"machine": "X300", "temp_c": 70.25}]
ORDERS = [{"order": 1, "machine": "X200"}, {"order": 2, "machine": "X300"}]
SECRET_MARK = "X300"  # appears in every answer that carries data


def _policy(dataset: str, columns: str) -> str:
    return f"""
uid: urn:sluis:policy:maker:{dataset}
type: Offer
target: urn:sluis:dataset:{dataset}
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    assignee: urn:sluis:participant:{UNIVERSITY}
    constraints: [[purpose, isAnyOf, [dpv:AcademicResearch]], [count, lteq, 1000]]
    data: {{columns: [{columns}]}}
"""


def _upstream() -> Upstream:
    return counting_upstream(
        lambda path: (READINGS if path.startswith("/readings") else ORDERS, {})
    )


class AuditInsertFault:
    """Acts on the audit log's INSERT INTO audit_entries, on every engine in this process;
    on SQLite, where the writer's statements run on the driver's own connection in its
    thread, on the step that grows the head before the entries are inserted."""

    def __init__(self) -> None:
        self.mode: str | None = None
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, *args: Any) -> None:
        statement = " ".join(str(args[2]).lower().split())
        if self.mode is None or "insert into audit_entries" not in statement:
            return
        if self.mode == "fail":
            raise RuntimeError("injected fault: the audit store refuses this append")
        self.entered.set()
        await_only(self._wait())  # suspends this greenlet only: the event loop runs on

    def in_driver_thread(self) -> None:
        """The same, in SQLite's driver thread (the event loop runs on meanwhile)."""
        if self.mode == "fail":
            raise sqlite3.OperationalError("injected fault: the audit store refuses this append")
        if self.mode is not None:
            self.entered.set()
            self.release.wait(20)  # at most 20 s, so a broken test cannot hang the suite

    async def _wait(self) -> None:
        for _ in range(2000):  # at most ~20 s, so a broken test cannot hang the suite
            if self.release.is_set():
                return
            await asyncio.sleep(0.01)


@pytest.fixture
def fault(monkeypatch: pytest.MonkeyPatch) -> Iterator[AuditInsertFault]:
    hook = AuditInsertFault()
    event.listen(Engine, "before_cursor_execute", hook)
    grow = SqliteTail.grow

    def faulty_grow(tail: SqliteTail, count: int) -> int:
        hook.in_driver_thread()
        return grow(tail, count)

    monkeypatch.setattr(SqliteTail, "grow", faulty_grow)
    try:
        yield hook
    finally:
        hook.release.set()
        event.remove(Engine, "before_cursor_execute", hook)


@dataclass
class World:
    url: str
    pki: Pki
    university: ClientCert
    token: str
    upstream: Upstream


async def _setup(url: str, upstream: str) -> None:
    db = Database(url)
    await db.upgrade()
    await register_participants(
        db, [(MAKER, "Maker", ["provider", "operator"]), (UNIVERSITY, "Uni", ["consumer"])]
    )
    network = ["127.0.0.1/32"]
    readings = {
        "type": "http",
        "base_url": upstream,
        "path": "/readings",
        "columns": {"machine": "string", "temp_c": "double"},
        "allow_networks": network,
    }
    orders = {
        "type": "http-passthrough",
        "base_url": upstream,
        "routes": [{"method": "GET", "path": "/orders"}],
        "allow_networks": network,
    }
    for dataset, columns, connector in [
        ("readings", "machine, temp_c", readings),
        ("orders", "order, machine", orders),
    ]:
        policy = _policy(dataset, columns)
        await register_dataset(db, dataset, provider=MAKER, policy=policy, connector=connector)
    await db.dispose()


def _client(world_url: str, pki: Pki, cert: ClientCert, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    context = mtls_context(pki.bundle, cert.cert_path, cert.key_path)
    return httpx.Client(base_url=world_url, verify=context, headers=headers, timeout=30)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    home: Path = tmp_path_factory.mktemp(f"audit-first-{request.param}")
    upstream = _upstream()
    pki = Pki(home / "pki")
    maker = pki.client("Maker", MAKER, ["provider", "operator"])
    university = pki.client("Uni", UNIVERSITY)
    try:
        with database_url(request.param, home) as url:
            asyncio.run(_setup(url, upstream.url))
            with running_gateway(gateway_settings(pki, home, url)) as base:
                with _client(base, pki, maker) as admin:
                    scopes = ["dataset:readings", "dataset:orders"]
                    body = {
                        "client_id": UNIVERSITY,
                        "auth_method": "tls_client_auth",
                        "scopes": scopes,
                    }
                    assert admin.post("/v1/admin/clients", json=body).status_code == 201
                with _client(base, pki, university) as client:
                    for dataset in ("readings", "orders"):
                        made = client.post(
                            "/v1/agreements", json={"dataset": dataset, "purpose": RESEARCH}
                        )
                        assert made.status_code in {200, 201}, made.text
                    form = {"grant_type": "client_credentials", "client_id": UNIVERSITY}
                    token = client.post("/oauth2/token", data=form).json()["access_token"]
                yield World(base, pki, university, token, upstream)
    finally:
        upstream.close()


PATHS = {
    "query": ("POST", "/v1/datasets/readings/query", {"columns": ["machine", "temp_c"]}),
    "data": ("GET", "/v1/datasets/readings/data?columns=machine,temp_c", None),
    "pass-through": ("GET", "/v1/datasets/orders/api/orders", None),
}


def _call(world: World, path: str) -> httpx.Response:
    method, target, body = PATHS[path]
    with _client(world.url, world.pki, world.university, world.token) as client:
        return client.request(method, target, json=body)


@pytest.mark.parametrize("path", list(PATHS))
def test_the_path_works_when_the_log_does(world: World, path: str) -> None:
    before = len(world.upstream.hits)
    response = _call(world, path)
    assert response.status_code == 200, response.text
    assert SECRET_MARK in response.text
    assert int(response.headers["sluis-audit-index"]) >= 0
    assert len(world.upstream.hits) == before + 1


@pytest.mark.parametrize("path", list(PATHS))
def test_when_the_decision_entry_cannot_be_appended_nothing_leaves(
    world: World, fault: AuditInsertFault, path: str
) -> None:
    before = len(world.upstream.hits)
    fault.mode = "fail"
    response = _call(world, path)
    fault.mode = None
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:sluis:problem:storage-unavailable"
    assert SECRET_MARK not in response.text
    assert "sluis-audit-index" not in response.headers
    assert world.upstream.hits[before:] == []  # the source was never asked
    assert _call(world, path).status_code == 200  # and the gateway recovers with the store


@pytest.mark.parametrize("path", list(PATHS))
def test_no_source_call_and_no_byte_before_the_decision_is_committed(
    world: World, fault: AuditInsertFault, path: str
) -> None:
    before = len(world.upstream.hits)
    fault.mode = "block"
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(_call, world, path)
        assert fault.entered.wait(20), "the decision entry was never appended"
        # The append is in flight and the event loop is free: give the gateway every chance
        # to run ahead before looking.
        for _ in range(20):
            if pending.done() or world.upstream.hits[before:]:
                break
            threading.Event().wait(0.02)
        assert world.upstream.hits[before:] == [], "the source was asked before the commit"
        assert not pending.done(), "a response left before the decision entry was committed"
        fault.mode = None
        fault.release.set()
        response = pending.result(timeout=30)
    assert response.status_code == 200, response.text
    assert SECRET_MARK in response.text
    assert len(world.upstream.hits) == before + 1
