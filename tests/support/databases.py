"""Database URLs for the suite: SQLite always, PostgreSQL when the real server answers."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest

PG_DSN = os.environ.get("SLUIS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_DSN, timeout=3)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database, dropped afterwards; skips when unreachable."""
    name = f"sluis_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_DSN}: {exc!r}")
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def database_url(backend: str, directory: Path) -> Iterator[str]:
    """A URL for ``backend`` ('sqlite' or 'postgresql') on a database nobody else uses."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'sluis.db'}"
    else:
        with postgres_database() as url:
            yield url
