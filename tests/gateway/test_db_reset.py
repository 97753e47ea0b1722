"""A pooled SQLite connection is rolled back on its return only when a transaction is open.

SQLAlchemy's pool rolls back every connection it takes back, a committed one too; with
aiosqlite that ROLLBACK is a hop to the driver's thread and back for nothing (issue 10: one
per audit batch and per session). The pool asks SQLite whether a transaction is open and
rolls back only then, so a connection left in a transaction (a cut-off session, a raw BEGIN)
still comes back clean: the write lock is released.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import pytest
from sqlalchemy import text

from gateway.storage.db import Database

T = TypeVar("T")


@asynccontextmanager
async def _hops(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[str]]:
    """The calls queued to aiosqlite's threads while entered (each one a hop)."""
    calls: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(fn, "__qualname__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(aiosqlite.Connection, "_execute", counted)
        yield calls


def _with_table(tmp_path: Path, work: Callable[[Database], Awaitable[T]]) -> T:
    """``work`` on a fresh SQLite database holding an empty table ``t``."""

    async def run() -> T:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
        try:
            async with db.session() as session:
                await session.execute(text("CREATE TABLE t (a INTEGER)"))
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


def test_a_committed_session_is_not_rolled_back_on_return(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def work(db: Database) -> list[str]:
        async with _hops(monkeypatch) as calls, db.session() as session:
            await session.execute(text("INSERT INTO t VALUES (1)"))
        return calls

    calls = _with_table(tmp_path, work)
    assert "Connection.commit" in calls
    assert "Connection.rollback" not in calls, calls


def test_a_connection_left_in_a_transaction_is_rolled_back_on_return(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A raw BEGIN that SQLAlchemy does not know of (no transaction of its own): taken back
    by the pool, the connection is rolled back, its row gone and the write lock free."""

    async def work(db: Database) -> tuple[list[str], int]:
        async with _hops(monkeypatch) as calls, db.engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.exec_driver_sql("BEGIN IMMEDIATE")
            await auto.exec_driver_sql("INSERT INTO t VALUES (1)")
        async with db.session() as session:  # would wait on the lock, then fail
            await session.execute(text("INSERT INTO t VALUES (2)"))
        async with db.session() as session:
            count = (await session.execute(text("SELECT count(*) FROM t"))).scalar_one()
        return calls, int(count)

    calls, count = _with_table(tmp_path, work)
    assert "Connection.rollback" in calls
    assert count == 1  # the raw transaction's row was rolled back, the session's kept
