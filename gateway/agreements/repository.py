"""All SQL for agreements and their uses."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.storage.models import AgreementRow, AgreementUseRow, DatasetRow


async def get(session: AsyncSession, agreement_id: str) -> AgreementRow | None:
    """One agreement."""
    return await session.get(AgreementRow, agreement_id)


async def active_for(
    session: AsyncSession, consumer_id: str, dataset_id: str
) -> AgreementRow | None:
    """The consumer's newest active agreement for the dataset."""
    query = (
        select(AgreementRow)
        .where(AgreementRow.consumer_id == consumer_id, AgreementRow.dataset_id == dataset_id)
        .where(AgreementRow.state == "active")
        .order_by(AgreementRow.created_at.desc())
        .limit(1)
    )
    return (await session.scalars(query)).first()


async def visible_to(session: AsyncSession, participant_id: str) -> Sequence[AgreementRow]:
    """Agreements the participant is party to, as consumer or as the dataset's provider."""
    provided = select(DatasetRow.id).where(DatasetRow.provider_id == participant_id)
    query = (
        select(AgreementRow)
        .where(
            or_(AgreementRow.consumer_id == participant_id, AgreementRow.dataset_id.in_(provided))
        )
        .order_by(AgreementRow.created_at)
    )
    return (await session.scalars(query)).all()


async def recent_uses(session: AsyncSession, agreement_id: str, since: datetime) -> list[datetime]:
    """Times of the agreement's uses since ``since``."""
    query = select(AgreementUseRow.at).where(
        AgreementUseRow.agreement_id == agreement_id, AgreementUseRow.at > since
    )
    return list((await session.scalars(query)).all())


async def spend(session: AsyncSession, agreement_id: str, seen: int, now: datetime) -> bool:
    """Count one use, if nobody counted one since ``seen``; the (agreement, seq) key decides."""
    bumped = await session.execute(
        update(AgreementRow)
        .where(AgreementRow.id == agreement_id, AgreementRow.use_count == seen)
        .values(use_count=seen + 1, updated_at=now)
    )
    if bumped.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
        return False
    session.add(AgreementUseRow(agreement_id=agreement_id, seq=seen + 1, at=now))
    await session.flush()
    return True
