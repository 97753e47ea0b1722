"""The PostgreSQL pool: no pre-ping round trip per session, dead connections replaced.

A real PostgreSQL server: the backends of a running gateway are killed with
``pg_terminate_backend`` between two requests, and the asyncpg query logger counts
what each session sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from connectors import Query, narrow
from gateway.datasets.factory import create_connector
from gateway.participants.schemas import ParticipantCreate
from gateway.participants.service import ParticipantService
from gateway.storage.db import Database
from policies import DataLimits
from tests.support.databases import PG_DSN, postgres_database
from tests.support.pki import NOW, Pki
from tests.support.server import gateway_settings, https, running_gateway

UNIVERSITY = "NTRNL-41000000"
pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


async def _terminate_backends(url: str) -> int:
    """Kill every server process attached to ``url``'s database; how many there were."""
    name = make_url(url).database
    conn = await asyncpg.connect(PG_DSN, timeout=3)
    try:
        rows = await conn.fetch(
            # with a timeout, pg_terminate_backend waits until the backend is gone
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
    finally:
        await conn.close()
    return len(rows)


def _log_queries(db: Database, seen: list[str]) -> None:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(lambda r: seen.append(r.query))

    event.listen(db.engine.sync_engine, "connect", on_connect)


def test_a_session_sends_no_ping(pg_url: str) -> None:
    async def run() -> list[str]:
        db = Database(pg_url)
        seen: list[str] = []
        _log_queries(db, seen)
        try:
            for _ in range(3):
                async with db.session() as session:
                    await session.execute(text("SELECT 41 + 1"))
        finally:
            await db.dispose()
        return seen

    seen = [q.strip().rstrip(";").upper() for q in asyncio.run(run())]
    # SQLAlchemy 2.0.30 (the lowest allowed) names the isolation level in its BEGIN
    seen = ["BEGIN" if q == "BEGIN ISOLATION LEVEL READ COMMITTED" else q for q in seen]
    # Per session BEGIN and COMMIT around the statement (sent as a prepared statement, which
    # the logger does not list), nothing else: no empty ";" ping in a BEGIN ... ROLLBACK.
    assert seen == ["BEGIN", "COMMIT"] * 3, seen


def test_prepared_statements_are_reused(pg_url: str) -> None:
    """asyncpg's prepared statement cache stays on: a repeated statement is prepared once."""

    async def run() -> tuple[int, int]:
        db = Database(pg_url)
        try:
            async with db.engine.connect() as conn:
                raw = await conn.get_raw_connection()
                cache = raw.dbapi_connection._prepared_statement_cache  # type: ignore[union-attr]
                await conn.execute(text("SELECT 6 * 7"))
                prepared = len(cache)
                for _ in range(3):
                    await conn.execute(text("SELECT 6 * 7"))
                assert any("6 * 7" in key for key in cache)
                return cache.capacity, len(cache) - prepared
        finally:
            await db.dispose()

    capacity, added = asyncio.run(run())
    assert capacity >= 100
    assert added == 0


def test_a_killed_connection_is_replaced_without_an_error(pg_url: str) -> None:
    async def run() -> list[int]:
        db = Database(pg_url)
        answers = []
        try:
            for _ in range(2):
                async with db.session() as session:
                    answers.append((await session.execute(text("SELECT 7"))).scalar_one())
                assert await _terminate_backends(pg_url) >= 1
                await asyncio.sleep(0)  # the loop reads the server's goodbye
            async with db.session() as session:
                answers.append((await session.execute(text("SELECT 7"))).scalar_one())
        finally:
            await db.dispose()
        return answers

    assert asyncio.run(run()) == [7, 7, 7]


def test_the_gateway_survives_killed_backends(pg_url: str, tmp_path: Path) -> None:
    async def register() -> None:
        db = Database(pg_url)
        await db.upgrade()
        data = ParticipantCreate(id=UNIVERSITY, name="TU Delft", roles=["consumer"])
        await ParticipantService(db).create(data, now=NOW)
        await db.dispose()

    asyncio.run(register())
    pki = Pki(tmp_path / "pki")
    university = pki.client("TU Delft", UNIVERSITY)
    with (
        running_gateway(gateway_settings(pki, tmp_path, pg_url)) as base,
        https(pki, university, base) as client,
    ):
        assert client.get("/v1/whoami").status_code == 200
        assert asyncio.run(_terminate_backends(pg_url)) >= 1
        first = client.get("/v1/whoami")
        # Fail closed at worst (503 problem+json), never a 500; the next one must succeed.
        assert first.status_code in {200, 503}, first.text
        if first.status_code == 503:
            assert first.headers["content-type"].startswith("application/problem+json")
        assert client.get("/v1/whoami").status_code == 200
        assert client.get("/v1/whoami").status_code == 200


def test_a_sql_source_survives_killed_backends(pg_url: str) -> None:
    """The same for a provider's PostgreSQL source behind a ``type: sql`` dataset."""

    async def run() -> list[int]:
        admin = Database(pg_url)
        async with admin.session() as session:
            await session.execute(text("CREATE TABLE readings (id bigint PRIMARY KEY)"))
            await session.execute(text("INSERT INTO readings VALUES (1), (2), (3)"))
        await admin.dispose()
        connector = create_connector(
            "readings", {"type": "sql", "url": pg_url, "table": "readings"}
        )
        rows = []
        try:
            schema = await connector.schema()
            for _ in range(2):
                permitted = narrow(Query(), DataLimits(), schema)
                async with aclosing(connector.stream(permitted)) as batches:
                    rows.append(sum([batch.num_rows async for batch in batches]))
                assert await _terminate_backends(pg_url) >= 1
                await asyncio.sleep(0)
        finally:
            await connector.aclose()
        return rows

    assert asyncio.run(run()) == [3, 3]
