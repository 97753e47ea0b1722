"""All SQL for datasets and policy versions."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.storage.models import DatasetRow, PolicyVersionRow


async def get(session: AsyncSession, dataset_id: str) -> DatasetRow | None:
    """One dataset."""
    return await session.get(DatasetRow, dataset_id)


async def list_active(session: AsyncSession) -> Sequence[DatasetRow]:
    """Every active dataset, by id."""
    query = select(DatasetRow).where(DatasetRow.status == "active").order_by(DatasetRow.id)
    return (await session.scalars(query)).all()


async def policy_version(session: AsyncSession, policy_hash: str) -> PolicyVersionRow | None:
    """A stored policy version."""
    return await session.get(PolicyVersionRow, policy_hash)
