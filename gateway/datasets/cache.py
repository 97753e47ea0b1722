"""Connectors (and pass-through proxies) cached per dataset, closed once they are replaced.

A connector holds pools, clients and files; when a dataset's configuration changes, the
next use builds a new one and the old one is *retired*: it is closed as soon as the last
request that leased it releases it (at once when nobody holds it). Every use is a lease,
so a request in flight never sees its connector closed under it. ``aclose`` closes all,
retired ones included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(eq=False)
class _Entry(Generic[T]):
    key: str
    value: T
    users: int = 0
    retired: bool = False


class Lease(Generic[T]):
    """One use of a cached value; ``release`` exactly once (later calls do nothing)."""

    def __init__(self, cache: ClosingCache[T], entry: _Entry[T]) -> None:
        self._cache, self._entry, self._held = cache, entry, True
        self.value = entry.value

    async def release(self) -> None:
        """End this use; the last use of a retired value closes it."""
        if self._held:
            self._held = False
            await self._cache.release(self._entry)


class ClosingCache(Generic[T]):
    """Values by dataset id and configuration key; replaced values closed when idle."""

    def __init__(self, close: Callable[[T], Awaitable[None]]) -> None:
        self._close = close
        self._entries: dict[str, _Entry[T]] = {}
        self._retired: list[_Entry[T]] = []

    async def lease(self, dataset_id: str, key: str, build: Callable[[], T]) -> Lease[T]:
        """A lease on the value for ``(dataset_id, key)``, built when the key changed."""
        entry = self._entries.get(dataset_id)
        if entry is None or entry.key != key:
            fresh = _Entry(key, build())
            self._entries[dataset_id] = fresh
            if entry is not None:
                await self._retire(entry)
            entry = fresh
        entry.users += 1
        return Lease(self, entry)

    @asynccontextmanager
    async def using(self, dataset_id: str, key: str, build: Callable[[], T]) -> AsyncIterator[T]:
        """``lease`` as a context: released when the block ends."""
        lease = await self.lease(dataset_id, key, build)
        try:
            yield lease.value
        finally:
            await lease.release()

    async def release(self, entry: _Entry[T]) -> None:
        """One use of ``entry`` ended."""
        entry.users -= 1
        if entry.retired and entry.users == 0 and entry in self._retired:
            self._retired.remove(entry)
            await self._close(entry.value)

    async def aclose(self) -> None:
        """Close every value, current and retired."""
        entries = [*self._entries.values(), *self._retired]
        self._entries.clear()
        self._retired.clear()
        for entry in entries:
            await self._close(entry.value)

    async def _retire(self, entry: _Entry[T]) -> None:
        if entry.users == 0:
            await self._close(entry.value)
            return
        entry.retired = True
        self._retired.append(entry)
