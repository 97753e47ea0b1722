"""All SQL for agreements and the provider's holds on them (usage state: see usage.py)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.agreements.schemas import LIVE_STATES
from gateway.storage.models import AgreementHoldRow, AgreementRow, DatasetRow, UsageStateRow
from gateway.storage.sql import insert_unless_present


async def get(session: AsyncSession, agreement_id: str) -> AgreementRow | None:
    """One agreement."""
    return await session.get(AgreementRow, agreement_id)


async def live_for(session: AsyncSession, consumer_id: str, dataset_id: str) -> AgreementRow | None:
    """The consumer's live (requested or active) agreement for the dataset: at most one."""
    query = select(AgreementRow).where(
        AgreementRow.consumer_id == consumer_id,
        AgreementRow.dataset_id == dataset_id,
        AgreementRow.state.in_(LIVE_STATES),
    )
    return (await session.scalars(query)).first()


async def active_for(
    session: AsyncSession, consumer_id: str, dataset_id: str
) -> tuple[AgreementRow, int] | None:
    """The consumer's active agreement for the dataset and the uses spent under it, in one
    query (the exchange asks this on every request)."""
    query = (
        select(AgreementRow, func.coalesce(UsageStateRow.use_count, 0))
        .outerjoin(
            UsageStateRow,
            and_(
                UsageStateRow.consumer_id == AgreementRow.consumer_id,
                UsageStateRow.dataset_id == AgreementRow.dataset_id,
                UsageStateRow.policy_hash == AgreementRow.policy_hash,
            ),
        )
        .where(
            AgreementRow.consumer_id == consumer_id,
            AgreementRow.dataset_id == dataset_id,
            AgreementRow.state == "active",
        )
    )
    found = (await session.execute(query)).first()
    return None if found is None else (found[0], int(found[1]))


async def add(session: AsyncSession, row: AgreementRow) -> None:
    """Insert ``row``; an IntegrityError if the consumer already has a live one."""
    session.add(row)
    await session.flush()


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


async def newest(session: AsyncSession, limit: int) -> Sequence[AgreementRow]:
    """Every consumer's agreements, the most recently changed first (the officer's view)."""
    query = select(AgreementRow).order_by(AgreementRow.updated_at.desc()).limit(limit)
    return (await session.scalars(query)).all()


async def move(
    session: AsyncSession,
    agreement_id: str,
    allowed_from: Collection[str],
    to: str,
    *,
    reason: str | None,
    now: datetime,
) -> bool:
    """Move the agreement to ``to`` only if it is still in one of ``allowed_from``.

    One conditional UPDATE: of two concurrent transitions only the first can succeed.
    """
    moved = await session.execute(
        update(AgreementRow)
        .where(AgreementRow.id == agreement_id, AgreementRow.state.in_(allowed_from))
        .values(state=to, reason=reason, decided_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return moved.rowcount == 1  # type: ignore[attr-defined, no-any-return]  # CursorResult of an UPDATE


async def held(session: AsyncSession, consumer_id: str, dataset_id: str) -> bool:
    """Whether the provider revoked and has not approved the consumer again since."""
    hold = await session.get(AgreementHoldRow, (consumer_id, dataset_id))
    return hold is not None


async def hold(session: AsyncSession, row: AgreementRow, now: datetime) -> None:
    """Record the provider's revocation of ``row`` (kept if one is already recorded)."""
    values = {
        "consumer_id": row.consumer_id,
        "dataset_id": row.dataset_id,
        "agreement_id": row.id,
        "held_at": now,
    }
    await insert_unless_present(session, AgreementHoldRow, values)


async def release(session: AsyncSession, consumer_id: str, dataset_id: str) -> None:
    """The provider approved the consumer again: the hold is gone."""
    await session.execute(
        delete(AgreementHoldRow).where(
            AgreementHoldRow.consumer_id == consumer_id, AgreementHoldRow.dataset_id == dataset_id
        )
    )
