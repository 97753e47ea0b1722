"""All SQL for the consumer side's DSP negotiations and transfers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.storage.models import DspConsumerNegotiationRow, DspConsumerTransferRow

Row = DspConsumerNegotiationRow | DspConsumerTransferRow


async def negotiation(session: AsyncSession, pid: str) -> DspConsumerNegotiationRow | None:
    """One negotiation by its consumerPid."""
    return await session.get(DspConsumerNegotiationRow, pid)


async def transfer(session: AsyncSession, pid: str) -> DspConsumerTransferRow | None:
    """One transfer by its consumerPid."""
    return await session.get(DspConsumerTransferRow, pid)


async def waiting(session: AsyncSession) -> list[str]:
    """The consumerPids of negotiations left AGREED or OFFERED (this side's answer to the
    provider not yet stored)."""
    found = await session.scalars(
        select(DspConsumerNegotiationRow.consumer_pid).where(
            DspConsumerNegotiationRow.state.in_(("AGREED", "OFFERED"))
        )
    )
    return list(found.all())


async def add(session: AsyncSession, row: Row) -> None:
    """Insert ``row``."""
    session.add(row)
    await session.flush()


async def move(
    session: AsyncSession,
    kind: type[Row],
    pid: str,
    seen: str,
    to: str,
    *,
    now: datetime,
    **values: Any,
) -> Row | None:
    """Move ``pid`` from ``seen`` to ``to`` with ``values``; the row, or None when it is no
    longer ``seen`` (another message moved it first)."""
    result = await session.execute(
        update(kind)
        .where(kind.consumer_pid == pid, kind.state == seen)
        .values(state=to, updated_at=now, **values)
    )
    if not result.rowcount:  # type: ignore[attr-defined]  # CursorResult has rowcount
        return None
    found: Row | None = await session.get(kind, pid)
    assert found is not None  # noqa: S101 - rows are never deleted
    await session.refresh(found)
    return found


async def set_provider_pid(session: AsyncSession, kind: type[Row], pid: str, given: str) -> None:
    """Remember the provider's pid (its answer, or its first callback, whichever is first)."""
    await session.execute(
        update(kind)
        .where(kind.consumer_pid == pid, kind.provider_pid.is_(None))
        .values(provider_pid=given)
    )
