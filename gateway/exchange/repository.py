"""All SQL of the exchange itself: open exchanges (usage state: gateway/agreements/usage.py).

A permitted exchange is open from its decision entry (the row is inserted in the same
transaction) until its completion entry (the row is deleted in that entry's transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Table, bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.audit.log import is_staged_for_delete, stage, staged_delete
from gateway.audit.repository import execute_one
from gateway.storage.models import GatewayInstanceRow, OpenExchangeRow
from gateway.storage.sql import insert_or_replace

_OPEN: Table = OpenExchangeRow.__table__  # type: ignore[assignment]  # a Table, typed FromClause


async def open_exchange(
    session: AsyncSession, opened: tuple[str, str, str, str], *, started_at: datetime
) -> None:
    """Record a permitted exchange ``(id, owner, consumer, dataset)`` as open, under the
    gateway process ``owner``."""
    exchange_id, owner, consumer_id, dataset_id = opened
    row: dict[str, object] = {"id": exchange_id, "owner": owner, "consumer_id": consumer_id}
    row |= {"dataset_id": dataset_id, "started_at": started_at}
    await stage(session, OpenExchangeRow, row)


async def close_exchange(session: AsyncSession, exchange_id: str) -> bool:
    """Mark the exchange ended; False when it was not open (already closed, or staged to
    be closed by an earlier effect of the same batch)."""
    if is_staged_for_delete(session, OpenExchangeRow, {"id": exchange_id}):
        return False
    count, _ = await execute_one(session, _CLOSE, {"exchange": exchange_id})
    return count == 1


async def end_exchange(session: AsyncSession, exchange_id: str) -> None:
    """Mark the exchange ended if it is open, without asking whether it was: in an audit
    batch staged with its other rows (one statement for the batch), elsewhere at once."""
    if not staged_delete(session, OpenExchangeRow, {"id": exchange_id}):
        await close_exchange(session, exchange_id)


# Core, not the ORM: one statement, no session synchronisation; built once, values bound
_CLOSE = delete(_OPEN).where(_OPEN.c.id == bindparam("exchange"))


async def left_open(session: AsyncSession, owner: str) -> Sequence[OpenExchangeRow]:
    """The exchanges ``owner`` opened and never closed, oldest first."""
    rows = await session.scalars(
        select(OpenExchangeRow)
        .where(OpenExchangeRow.owner == owner)
        .order_by(OpenExchangeRow.started_at)
    )
    return rows.all()


async def seen(session: AsyncSession, owner: str, now: datetime) -> None:
    """Record that the gateway process ``owner`` is alive at ``now``."""
    await insert_or_replace(session, GatewayInstanceRow, {"name": owner, "seen_at": now})


async def abandoned(
    session: AsyncSession, owner: str, cutoff: datetime
) -> Sequence[OpenExchangeRow]:
    """Open exchanges of other processes not seen since ``cutoff`` (or never: a row from
    before instances were recorded), started before it, oldest first."""
    alive = select(GatewayInstanceRow.name).where(GatewayInstanceRow.seen_at >= cutoff)
    rows = await session.scalars(
        select(OpenExchangeRow)
        .where(
            OpenExchangeRow.owner != owner,
            OpenExchangeRow.owner.not_in(alive),
            OpenExchangeRow.started_at < cutoff,
        )
        .order_by(OpenExchangeRow.started_at)
    )
    return rows.all()


async def forget_instances(session: AsyncSession, cutoff: datetime) -> None:
    """Drop the rows of processes not seen since ``cutoff`` (one that comes back re-adds
    its own)."""
    await session.execute(delete(GatewayInstanceRow).where(GatewayInstanceRow.seen_at < cutoff))
