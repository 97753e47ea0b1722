"""All SQL the console's charts and agreement histories read (issue 15).

Each query walks an index of ``audit_entries`` (migration 0014) over the chosen window and
groups in SQL where it can: the log's rows are not loaded, except the denials' own bytes
(their reasons are inside the entry) and one dataset's ``agreement-changed`` entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.storage.models import AuditEntryRow

Bucket = Literal["hour", "day"]
#: the bucket as text, "YYYY-MM-DD HH" or "YYYY-MM-DD", from the stored UTC time
_WIDTH = {"hour": 13, "day": 10}
_PG_FORMAT = {"hour": "YYYY-MM-DD HH24", "day": "YYYY-MM-DD"}


@dataclass(frozen=True)
class Window:
    """A half-open time window ``[since, until)``; either end may be open."""

    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        """What limits a statement to the entries in the window."""
        found = []
        if self.since is not None:
            found.append(AuditEntryRow.time >= self.since)
        if self.until is not None:
            found.append(AuditEntryRow.time < self.until)
        return found


def _bucket(session: AsyncSession, bucket: Bucket) -> ColumnElement[str]:
    if session.get_bind().dialect.name == "postgresql":
        utc = func.timezone("UTC", AuditEntryRow.time)
        return func.to_char(utc, _PG_FORMAT[bucket])
    return func.substr(AuditEntryRow.time, 1, _WIDTH[bucket])  # stored "YYYY-MM-DD HH:MM:SS"


async def timeline(
    session: AsyncSession, window: Window, bucket: Bucket
) -> list[tuple[str, str, int]]:
    """``(dataset, bucket, count)`` of the access decisions in the window."""
    label = _bucket(session, bucket).label("bucket")
    stmt = (
        select(AuditEntryRow.dataset, label, func.count())
        .where(AuditEntryRow.event == "access-decision", AuditEntryRow.dataset.is_not(None))
        .group_by(AuditEntryRow.dataset, label)
    )
    rows = await session.execute(stmt.where(*window.conditions()))
    return [(str(d), str(b), int(n)) for d, b, n in rows]


async def denials(session: AsyncSession, window: Window, cap: int) -> list[tuple[str, bytes]]:
    """``(event, canonical bytes)`` of at most ``cap`` denials in the window, newest first."""
    stmt = (
        select(AuditEntryRow.event, AuditEntryRow.entry)
        .where(AuditEntryRow.decision == "deny")
        .order_by(AuditEntryRow.time.desc())
        .limit(cap)
    )
    return [
        (str(e), bytes(data)) for e, data in await session.execute(stmt.where(*window.conditions()))
    ]


async def dataset_changes(session: AsyncSession, dataset: str, cap: int) -> list[tuple[int, bytes]]:
    """``(index, bytes)`` of the dataset's ``agreement-changed`` entries, oldest first."""
    stmt = (
        select(AuditEntryRow.idx, AuditEntryRow.entry)
        .where(AuditEntryRow.dataset == dataset, AuditEntryRow.event == "agreement-changed")
        .order_by(AuditEntryRow.idx)
        .limit(cap)
    )
    return [(int(i), bytes(data)) for i, data in await session.execute(stmt)]
