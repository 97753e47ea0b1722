"""The rows a batch writes, column by column, on SQLite and PostgreSQL.

The writer's last steps bypass the ORM (SQLite: the driver's own connection in one hop;
PostgreSQL: one ``unnest`` statement for entries and nodes). Read back through the ORM,
every column must hold what the entry says, as SQLAlchemy itself would have stored it:
times as aware UTC (a zone other than UTC converted), NUL in text as U+FFFD in the filter
columns only, the entry's canonical bytes, its leaf hash, the nodes, the checkpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text

from gateway.audit.entry import Actor, AuditEntry, DecisionRecord, encode_entry
from gateway.audit.merkle import leaf_hash, root_hash
from gateway.storage.models import AuditCheckpointRow, AuditEntryRow, AuditNodeRow
from tests.audit.logs import opened
from tests.support.databases import database_url

SIGNED_AT = datetime(2026, 12, 3, 10, 0, 0, 123456, tzinfo=UTC)
AMSTERDAM = timezone(timedelta(hours=1))


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as value:
        yield value


def _entries() -> list[AuditEntry]:
    return [
        AuditEntry(
            time=datetime(2026, 12, 3, 11, 0, n, 654321, tzinfo=AMSTERDAM), event="access-decision",
            actor=Actor(participant=f"NTRNL-{n:08d}"), dataset=f"ds-{n}\x00x", action="read",
            decision=DecisionRecord(result="deny" if n % 2 else "permit", reasons=(f"r{n}",)),
            target=f"agreement:{n}", trace_id=f"{n:032x}", request_id=f"req-{n}",
        )
        if n % 3
        else AuditEntry(time=datetime(2026, 12, 3, 10, 0, n, tzinfo=UTC), event="token-issued")
        for n in range(7)
    ]  # fmt: skip


def test_every_column_holds_what_the_entry_says(url: str) -> None:
    async def run() -> None:
        async with opened(url, clock=lambda: SIGNED_AT) as log:
            entries = _entries()
            receipts = await asyncio.gather(*(log.append(e) for e in entries))
            assert sorted(r.index for r in receipts) == list(range(7))
            async with log.db.session() as session:
                rows = (await session.scalars(select(AuditEntryRow))).all()
                nodes = (await session.scalars(select(AuditNodeRow))).all()
                checkpoints = (await session.scalars(select(AuditCheckpointRow))).all()
                stored = await session.execute(text(_STORED_TIMES))
                times = {int(i): str(t) for i, t in stored}
        by_index = {r.index: e for r, e in zip(receipts, entries, strict=True)}
        leaves = []
        for row in sorted(rows, key=lambda r: r.idx):
            entry = by_index[row.idx]
            data = encode_entry(entry)
            leaves.append(leaf_hash(data))
            assert bytes(row.entry) == data
            assert bytes(row.leaf_hash) == leaf_hash(data)
            assert row.time == entry.time  # the same instant, read back as aware UTC
            assert row.time.utcoffset() == timedelta(0)
            assert row.event == entry.event
            assert row.participant == entry.actor.participant
            assert row.dataset == (
                None if entry.dataset is None else entry.dataset.replace("\x00", "\ufffd")
            )
            assert row.decision == (entry.decision.result if entry.decision else None)
            assert (row.target, row.trace_id, row.request_id) == (
                entry.target,
                entry.trace_id,
                entry.request_id,
            )
        assert {(n.level, n.idx) for n in nodes if n.level == 0} == {(0, i) for i in range(7)}
        assert {bytes(n.hash) for n in nodes if n.level == 0} == set(leaves)
        last = max(checkpoints, key=lambda c: c.size)
        assert last.size == 7
        assert bytes(last.root_hash) == root_hash(leaves)
        assert all(c.signed_at == SIGNED_AT for c in checkpoints)
        if log.db.dialect == "sqlite":  # the text SQLAlchemy's own DATETIME writes (sortable)
            spelled = {
                r.index: _sqlite_text(e.time) for r, e in zip(receipts, entries, strict=True)
            }
            assert times == {**spelled, -1: _sqlite_text(SIGNED_AT)}

    asyncio.run(run())


#: The stored times as text: every entry's, and (as -1) the newest checkpoint's.
_STORED_TIMES = (
    "SELECT idx, CAST(time AS TEXT) FROM audit_entries UNION ALL "
    "SELECT -1, CAST(signed_at AS TEXT) FROM audit_checkpoints WHERE size = 7"
)


def _sqlite_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
