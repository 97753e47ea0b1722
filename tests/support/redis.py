"""The Redis URL for the suite; skips with a reason when no server answers."""

from __future__ import annotations

import asyncio
import os

import pytest

REDIS_URL = os.environ.get("SLUIS_TEST_REDIS", "redis://127.0.0.1:6379/0")


async def _ping() -> None:
    from redis.asyncio import Redis  # noqa: PLC0415 - the optional dependency, only here

    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()
    finally:
        await client.aclose(close_connection_pool=True)


def redis_url() -> str:
    """``SLUIS_TEST_REDIS`` (default local Redis) when it answers a PING; else skip."""
    try:
        import redis  # noqa: F401, PLC0415 - is the package installed at all?
    except ImportError:
        pytest.skip("the redis package is not installed (pip install '.[redis]')")
    from redis.exceptions import RedisError  # noqa: PLC0415

    try:
        asyncio.run(_ping())
    except (RedisError, OSError) as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc!r}")
    return REDIS_URL
