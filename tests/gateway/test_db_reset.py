"""A pooled SQLite connection is rolled back on its return only when a transaction is open.

SQLAlchemy's pool rolls back every connection it takes back, a committed one too; with
aiosqlite that ROLLBACK is a hop to the driver's thread and back for nothing (issue 10: one
per audit batch and per session). The pool asks SQLite whether a transaction is open and
rolls back only then, so a connection left in a transaction (a cut-off session, a raw BEGIN)
still comes back clean: the write lock is released.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiosqlite
from sqlalchemy import text

from gateway.storage.db import Database


def _hops(calls: list[str]) -> Any:
    original = aiosqlite.Connection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(fn, "__qualname__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    return original, counted


def test_a_committed_session_is_not_rolled_back_on_return(tmp_path: Path) -> None:
    async def run() -> list[str]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
        try:
            async with db.session() as session:
                await session.execute(text("CREATE TABLE t (a INTEGER)"))
            calls: list[str] = []
            original, counted = _hops(calls)
            aiosqlite.Connection._execute = counted  # type: ignore[method-assign]
            try:
                async with db.session() as session:
                    await session.execute(text("INSERT INTO t VALUES (1)"))
            finally:
                aiosqlite.Connection._execute = original  # type: ignore[method-assign]
            return calls
        finally:
            await db.dispose()

    calls = asyncio.run(run())
    assert "Connection.commit" in calls
    assert "Connection.rollback" not in calls, calls


def test_a_connection_left_in_a_transaction_is_rolled_back_on_return(tmp_path: Path) -> None:
    """A raw BEGIN that SQLAlchemy does not know of (no transaction of its own): taken back
    by the pool, the connection is rolled back, its row gone and the write lock free."""

    async def run() -> tuple[list[str], int]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
        try:
            async with db.session() as session:
                await session.execute(text("CREATE TABLE t (a INTEGER)"))
            calls: list[str] = []
            original, counted = _hops(calls)
            aiosqlite.Connection._execute = counted  # type: ignore[method-assign]
            try:
                async with db.engine.connect() as conn:
                    auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
                    await auto.exec_driver_sql("BEGIN IMMEDIATE")
                    await auto.exec_driver_sql("INSERT INTO t VALUES (1)")
            finally:
                aiosqlite.Connection._execute = original  # type: ignore[method-assign]
            async with db.session() as session:  # would wait on the lock, then fail
                await session.execute(text("INSERT INTO t VALUES (2)"))
            async with db.session() as session:
                count = (await session.execute(text("SELECT count(*) FROM t"))).scalar_one()
            return calls, int(count)
        finally:
            await db.dispose()

    calls, count = asyncio.run(run())
    assert "Connection.rollback" in calls
    assert count == 1  # the raw transaction's row was rolled back, the session's kept
