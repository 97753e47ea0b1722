"""All SQL for the DSP callback outbox (:mod:`gateway.dsp.outbox`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.storage.models import DspOutboxRow

PENDING = "pending"


async def add(session: AsyncSession, row: DspOutboxRow) -> int:
    """Store ``row`` (in the caller's transaction); its id."""
    session.add(row)
    await session.flush()
    return row.id


async def claim(session: AsyncSession, row_id: int, now: datetime, until: datetime) -> bool:
    """Lease a pending row until ``until``; False if delivered, given up or leased already."""
    result = await session.execute(
        update(DspOutboxRow)
        .where(
            DspOutboxRow.id == row_id,
            DspOutboxRow.status == PENDING,
            or_(DspOutboxRow.lease_until.is_(None), DspOutboxRow.lease_until < now),
        )
        .values(lease_until=until)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]  # CursorResult has rowcount


async def earlier_pending(session: AsyncSession, row: DspOutboxRow) -> bool:
    """Whether an earlier message of the same process still waits (order is kept)."""
    found = await session.execute(
        select(DspOutboxRow.id)
        .where(
            DspOutboxRow.process == row.process,
            DspOutboxRow.status == PENDING,
            DspOutboxRow.id < row.id,
        )
        .limit(1)
    )
    return found.first() is not None


async def due(
    session: AsyncSession, now: datetime, limit: int, *, every: bool = False
) -> Sequence[DspOutboxRow]:
    """Pending rows nobody holds whose next attempt is due (``every``: due or not), oldest
    first."""
    found = await session.scalars(
        select(DspOutboxRow)
        .where(
            DspOutboxRow.status == PENDING,
            true() if every else DspOutboxRow.next_attempt_at <= now,
            or_(DspOutboxRow.lease_until.is_(None), DspOutboxRow.lease_until < now),
        )
        .order_by(DspOutboxRow.id)
        .limit(limit)
    )
    return found.all()


async def finish(session: AsyncSession, row_id: int, **values: Any) -> None:
    """Record the outcome of a send and release the lease."""
    await session.execute(
        update(DspOutboxRow).where(DspOutboxRow.id == row_id).values(lease_until=None, **values)
    )


async def purge(session: AsyncSession, before: datetime) -> None:
    """Forget delivered and given-up messages last changed before ``before``."""
    await session.execute(
        delete(DspOutboxRow).where(DspOutboxRow.status != PENDING, DspOutboxRow.updated_at < before)
    )
