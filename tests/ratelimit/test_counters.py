"""Every counter backend counts atomically, also across two "replicas" hitting it at once.

Memory, SQLite, PostgreSQL and Redis for real (PostgreSQL and Redis skip with a reason
when absent). Two backend objects on one store stand for two gateway replicas.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.ratelimit.counters import Counters, DatabaseCounters, MemoryCounters, RedisCounters
from gateway.ratelimit.window import Window
from gateway.storage import StorageUnavailable
from gateway.storage.db import Database
from tests.support.databases import database_url
from tests.support.redis import redis_url

WINDOW = Window(1_900_000_000, 60)


@pytest.fixture(params=["memory", "sqlite", "postgresql", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param in {"sqlite", "postgresql"}:
        with database_url(request.param, tmp_path) as url:
            asyncio.run(_migrate(url))
            yield url
    elif request.param == "redis":
        yield redis_url()
    else:
        yield "memory"


async def _migrate(url: str) -> None:
    db = Database(url)
    await db.upgrade()
    await db.dispose()


def _open(store: str, shared: MemoryCounters) -> tuple[Counters, Database | None]:
    if store == "memory":
        return shared, None
    if store.startswith("redis"):
        return RedisCounters(store), None
    db = Database(store)
    return DatabaseCounters(db), db


def test_two_replicas_count_one_sequence(store: str) -> None:
    key = f"refusals:192.0.2.{uuid.uuid4().hex}"  # fresh in a Redis that outlives the test

    async def run() -> None:
        shared = MemoryCounters()
        replicas = [_open(store, shared) for _ in range(2)]
        hits = [replicas[i % 2][0].hit(key, WINDOW) for i in range(300)]  # > a pool
        counts = await asyncio.gather(*hits)
        assert sorted(counts) == list(range(1, 301))  # no lost update, no duplicate
        assert await replicas[0][0].hit(f"{key}:other", WINDOW) == 1
        following = Window(WINDOW.end, WINDOW.seconds)
        assert await replicas[1][0].hit(key, following) == 1  # a new window starts at 1
        for counters, db in replicas:
            await counters.aclose()
            if db is not None:
                await db.dispose()

    asyncio.run(run())


def test_an_unreachable_backend_is_storage_unavailable() -> None:
    async def run() -> None:
        redis = RedisCounters("redis://127.0.0.1:1/0")
        with pytest.raises(StorageUnavailable):
            await redis.hit("k", WINDOW)
        await redis.aclose()
        db = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")
        with pytest.raises(StorageUnavailable):
            await DatabaseCounters(db).hit("k", WINDOW)
        await db.dispose()

    asyncio.run(run())
