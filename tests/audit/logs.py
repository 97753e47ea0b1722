"""Builders for the storage-backed audit tests: a log on a real database, and its checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from gateway.audit.entry import Actor, AuditEntry, DecisionRecord
from gateway.audit.keys import Signer
from gateway.audit.log import AuditLog, AuditReader
from gateway.audit.merkle import leaf_hash, root_hash
from gateway.storage.db import Database

ORIGIN = "sluis.example/audit"
SIGNER = Signer(ORIGIN, bytes(range(32)))
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def sample(n: int, **fields: Any) -> AuditEntry:
    """A distinct access-decision entry."""
    base: dict[str, Any] = {
        "time": NOW,
        "event": "access-decision",
        "actor": Actor(participant=f"NTRNL-{n % 3:08d}"),
        "dataset": f"ds{n % 2}",
        "decision": DecisionRecord(result="permit" if n % 4 else "deny", reasons=(f"r{n}",)),
        "request_id": f"req-{n}",
    }
    return AuditEntry(**(base | fields))


@asynccontextmanager
async def opened(url: str, **options: Any) -> AsyncIterator[AuditLog]:
    """A migrated database and an AuditLog over it, closed afterwards."""
    db = Database(url)
    await db.upgrade()
    log = AuditLog(db, SIGNER, ORIGIN, **options)
    try:
        yield log
    finally:
        await log.close()
        await db.dispose()


async def assert_consistent(reader: AuditReader) -> int:
    """Indices 0..n-1 without gaps, nothing past the head, and nodes matching the entries."""
    size = await reader.size()
    records = await reader.entry_range(0, size + 1000)
    assert [r.index for r in records] == list(range(size))
    assert await reader.root_at(size) == root_hash([leaf_hash(r.data) for r in records])
    return size
