"""Counter backends: one atomic increment per hit of a fixed-window counter.

* :class:`MemoryCounters`: this process only (tests, one replica that wants no IO).
* :class:`DatabaseCounters`: the gateway's own database; on PostgreSQL every replica shares
  the ``rate_counters`` table, and one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``
  per hit is atomic across them. Closed windows are deleted as new ones start.
* :class:`RedisCounters`: ``INCR`` and ``EXPIRE`` in one transaction (the redis package).

Every backend failure comes out as :class:`~gateway.storage.StorageUnavailable`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.ratelimit.window import Window
from gateway.storage import StorageUnavailable
from gateway.storage.models import RateCounterRow

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from gateway.storage.db import Database

MAX_KEY = 300  # the width of rate_counters.key


class Counters(Protocol):
    """Where fixed-window counts live."""

    async def hit(self, key: str, window: Window) -> int:
        """Add one to ``key`` in ``window``; the count after this hit."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class MemoryCounters:
    """Counts in this process; windows other than the newest are dropped as time moves on."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self._newest = 0

    async def hit(self, key: str, window: Window) -> int:
        if window.start > self._newest:
            self._newest = window.start
            self._counts = {k: v for k, v in self._counts.items() if k[1] >= window.start}
        count = self._counts.get((key, window.start), 0) + 1
        self._counts[(key, window.start)] = count
        return count

    async def aclose(self) -> None:
        self._counts.clear()


class DatabaseCounters:
    """Counts in ``rate_counters`` (SQLite for one process, PostgreSQL across replicas)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pruned_before = 0

    async def hit(self, key: str, window: Window) -> int:
        insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        statement = (
            insert(RateCounterRow)
            .values(key=key[:MAX_KEY], window_start=window.start, count=1)
            .on_conflict_do_update(
                index_elements=["key", "window_start"],
                set_={"count": RateCounterRow.count + 1},
            )
            .returning(RateCounterRow.count)
        )
        async with self.db.session() as session:
            count = int((await session.execute(statement)).scalar_one())
            if window.start > self._pruned_before:  # once per window and replica
                self._pruned_before = window.start
                await session.execute(
                    delete(RateCounterRow).where(RateCounterRow.window_start < window.start)
                )
        return count

    async def aclose(self) -> None:
        """The database belongs to the app; nothing to close here."""


class RedisCounters:
    """Counts in Redis, each key expiring one window after its window ends."""

    PREFIX = "sluis:rate:"

    MAX_CONNECTIONS = 32
    TIMEOUT = 2.0  # seconds, for a connection from the pool, to connect, and per command

    def __init__(self, url: str) -> None:
        # The optional dependency, imported only when this backend is chosen.
        from redis.asyncio import BlockingConnectionPool, Redis  # noqa: PLC0415

        # A blocking pool: a burst of hits waits its turn instead of failing outright.
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=self.MAX_CONNECTIONS,
            timeout=self.TIMEOUT,
            socket_timeout=self.TIMEOUT,
            socket_connect_timeout=self.TIMEOUT,
        )
        self.redis: Redis = Redis(connection_pool=pool)

    async def hit(self, key: str, window: Window) -> int:
        from redis.exceptions import RedisError  # noqa: PLC0415 - optional dependency

        name = f"{self.PREFIX}{key[:MAX_KEY]}:{window.start}"
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, 2 * window.seconds)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise StorageUnavailable(f"redis: {type(exc).__name__}") from exc
        return int(count)

    async def aclose(self) -> None:
        await self.redis.aclose(close_connection_pool=True)
