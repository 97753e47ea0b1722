"""All SQL for usage state: what count, rate and elapsed-time limits see.

Usage state belongs to a consumer's use of a dataset under one policy version
(:class:`UsageKey`), not to an agreement: ending an agreement and asking for a new one
continues the same count, rate window and start. :func:`spend` is the one place a use is
counted; it is a single conditional UPDATE plus the use's row, so it can move into a larger
transaction (the audit log's group commit) as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.storage.models import AgreementRow, UsageEventRow, UsageStateRow
from gateway.storage.sql import insert_unless_present

RATE_WINDOW = timedelta(days=31)  # how far back use times are read for rate limits


@dataclass(frozen=True)
class UsageKey:
    """Whose use of what, under which policy version."""

    consumer_id: str
    dataset_id: str
    policy_hash: str

    def columns(self) -> dict[str, str]:
        """The key as column values."""
        return {
            "consumer_id": self.consumer_id,
            "dataset_id": self.dataset_id,
            "policy_hash": self.policy_hash,
        }


@dataclass(frozen=True)
class Usage:
    """What the policy engine is told: uses so far, recent use times, the start."""

    use_count: int
    request_times: tuple[datetime, ...]
    started_at: datetime | None


def _where(key: UsageKey, table: type[UsageStateRow] | type[UsageEventRow]) -> ColumnElement[bool]:
    return and_(
        table.consumer_id == key.consumer_id,
        table.dataset_id == key.dataset_id,
        table.policy_hash == key.policy_hash,
    )


async def start(session: AsyncSession, key: UsageKey, now: datetime) -> None:
    """Begin counting for ``key`` at ``now``, unless it began before (then nothing changes)."""
    values = {**key.columns(), "use_count": 0, "started_at": now, "updated_at": now}
    await insert_unless_present(session, UsageStateRow, values)


async def read(session: AsyncSession, key: UsageKey, since: datetime) -> Usage | None:
    """The state for ``key`` with the times of its uses after ``since``; None before a start.

    One query: the state row joined to its recent uses (one row per use, or one without).
    """
    recent = and_(
        UsageEventRow.consumer_id == UsageStateRow.consumer_id,
        UsageEventRow.dataset_id == UsageStateRow.dataset_id,
        UsageEventRow.policy_hash == UsageStateRow.policy_hash,
        UsageEventRow.at > since,
    )
    rows = (
        await session.execute(
            select(UsageStateRow.use_count, UsageStateRow.started_at, UsageEventRow.at)
            .outerjoin(UsageEventRow, recent)
            .where(_where(key, UsageStateRow))
            .order_by(UsageEventRow.seq)
        )
    ).all()
    if not rows:
        return None
    times = tuple(at for _, _, at in rows if at is not None)
    return Usage(rows[0].use_count, times, rows[0].started_at)


async def counts(session: AsyncSession, keys: set[UsageKey]) -> dict[UsageKey, int]:
    """Uses spent under each of ``keys`` (0 where none began)."""
    found: dict[UsageKey, int] = dict.fromkeys(keys, 0)
    consumers = {k.consumer_id for k in keys}
    if not consumers:
        return found
    rows = await session.execute(
        select(
            UsageStateRow.consumer_id,
            UsageStateRow.dataset_id,
            UsageStateRow.policy_hash,
            UsageStateRow.use_count,
        ).where(UsageStateRow.consumer_id.in_(consumers))
    )
    for consumer_id, dataset_id, policy_hash, used in rows.all():
        key = UsageKey(consumer_id, dataset_id, policy_hash)
        if key in found:
            found[key] = used
    return found


async def spend(
    session: AsyncSession, key: UsageKey, seen: int, now: datetime, *, agreement_id: str
) -> bool:
    """Count use number ``seen + 1`` under ``agreement_id``, only if nobody counted one since
    ``seen`` was read and the agreement is still active.

    The decision that allowed this use was made against ``seen`` uses; the UPDATE succeeds
    only while the count is still ``seen`` (so two replicas cannot both spend the same, or
    the last, use) and while the agreement is active (so a revocation that commits first
    stops it). The use's row, keyed by (usage key, seq), records its time for rate limits.
    """
    still_active = exists().where(AgreementRow.id == agreement_id, AgreementRow.state == "active")
    bumped = await session.execute(
        update(UsageStateRow)
        .where(_where(key, UsageStateRow), UsageStateRow.use_count == seen, still_active)
        .values(use_count=seen + 1, updated_at=now)
    )
    if bumped.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
        return False
    session.add(UsageEventRow(**key.columns(), seq=seen + 1, at=now))
    await session.flush()
    return True
