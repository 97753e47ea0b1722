"""All SQL for DSP contract negotiations."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.storage.models import DspNegotiationRow


async def get(session: AsyncSession, provider_pid: str) -> DspNegotiationRow | None:
    """One negotiation."""
    return await session.get(DspNegotiationRow, provider_pid)


async def add(session: AsyncSession, row: DspNegotiationRow) -> None:
    """Insert ``row``."""
    session.add(row)
    await session.flush()


async def move(
    session: AsyncSession,
    provider_pid: str,
    seen: str,
    to: str,
    *,
    reason: str | None,
    now: datetime,
) -> bool:
    """Move the negotiation from ``seen`` to ``to``; False when it is no longer ``seen``."""
    result = await session.execute(
        update(DspNegotiationRow)
        .where(DspNegotiationRow.provider_pid == provider_pid, DspNegotiationRow.state == seen)
        .values(state=to, reason=reason, updated_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]  # CursorResult has rowcount


async def waiting_on(session: AsyncSession, agreement_id: str) -> Sequence[DspNegotiationRow]:
    """Negotiations still REQUESTED on the Sluis agreement ``agreement_id``."""
    query = select(DspNegotiationRow).where(
        DspNegotiationRow.agreement_id == agreement_id, DspNegotiationRow.state == "REQUESTED"
    )
    return (await session.scalars(query)).all()


async def finalized_for(session: AsyncSession, agreement_id: str, consumer_id: str) -> bool:
    """Whether a FINALIZED negotiation of ``consumer_id`` made agreement ``agreement_id``."""
    query = select(DspNegotiationRow.provider_pid).where(
        DspNegotiationRow.agreement_id == agreement_id,
        DspNegotiationRow.consumer_id == consumer_id,
        DspNegotiationRow.state == "FINALIZED",
    )
    return (await session.scalars(query)).first() is not None
