"""All SQL for participants."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.storage.models import ParticipantRow


async def get(session: AsyncSession, participant_id: str) -> ParticipantRow | None:
    """One participant by id."""
    return await session.get(ParticipantRow, participant_id)


async def list_all(session: AsyncSession) -> Sequence[ParticipantRow]:
    """Every participant, by id."""
    result = await session.scalars(select(ParticipantRow).order_by(ParticipantRow.id))
    return result.all()


async def add(session: AsyncSession, row: ParticipantRow) -> None:
    """Insert a participant (flushes, so a duplicate raises IntegrityError here)."""
    session.add(row)
    await session.flush()
