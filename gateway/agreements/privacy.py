"""All SQL for privacy budgets: the epsilon each private query spent (``privacy_spends``).

A privacy budget is usage state: it belongs to the consumer's use of a dataset under one
policy version (:class:`~gateway.agreements.usage.UsageKey`), and a new agreement does not
reset it. :func:`spend` is run in the same transaction as the use it rides with (the use
spend's conditional UPDATE, and with it the decision entry when that moves into the audit
log's group commit) and records the spend under the use's number: the decision was made
against the spends read after the use count, so a replica that decided against an older
state loses the use count's race, or collides on this row's key. Either way nothing is
overspent; the loser decides again.

Epsilon is stored in nano-units (integers, so sums are exact); a cost is rounded up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, Decimal

from sqlalchemy import and_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.agreements.usage import UsageKey
from gateway.storage.models import PrivacySpendRow
from policies import PrivacyLimits
from policies.operands.privacy import spent_in

NANO = Decimal("1e9")


@dataclass(frozen=True)
class Budget:
    """What a consumer may still spend: the policy's budget, what is spent, what is left."""

    epsilon: Decimal
    period: str
    query_epsilon: Decimal
    spent: Decimal

    @property
    def remaining(self) -> Decimal:
        """Epsilon left in the period (never below zero)."""
        return max(self.epsilon - self.spent, Decimal(0))

    @property
    def queries_left(self) -> int:
        """How many more queries the budget allows now."""
        return int(self.remaining // self.query_epsilon)

    def to_json(self) -> dict[str, object]:
        """JSON-ready (stable field names; new ones are appended)."""
        return {
            "epsilon": text(self.epsilon),
            "period": self.period,
            "query_epsilon": text(self.query_epsilon),
            "spent": text(self.spent),
            "remaining": text(self.remaining),
            "queries_left": self.queries_left,
        }


def text(value: Decimal) -> str:
    """A decimal as plain text, without trailing zeros: ``0.5``, ``1``, ``0.25``."""
    return format(value.normalize(), "f")


def nano(epsilon: Decimal) -> int:
    """``epsilon`` in nano-units, rounded up (a spend is never recorded as less)."""
    return int((epsilon * NANO).to_integral_value(rounding=ROUND_CEILING))


def budget_of(
    limits: PrivacyLimits, spends: tuple[tuple[datetime, Decimal], ...], now: datetime
) -> Budget:
    """The budget ``limits`` set, with ``spends`` counted over its period ending ``now``."""
    spent = spent_in(spends, limits.period, now)
    return Budget(limits.epsilon, limits.period, limits.query_epsilon, spent)


async def read(
    session: AsyncSession, key: UsageKey, since: datetime
) -> tuple[tuple[datetime, Decimal], ...]:
    """The spends under ``key`` after ``since``: (time, epsilon), oldest first.

    Read after the use count the decision is made against (see the module docstring).
    """
    rows = await session.execute(
        select(PrivacySpendRow.at, PrivacySpendRow.epsilon_nano)
        .where(
            and_(
                PrivacySpendRow.consumer_id == key.consumer_id,
                PrivacySpendRow.dataset_id == key.dataset_id,
                PrivacySpendRow.policy_hash == key.policy_hash,
                PrivacySpendRow.at > since,
            )
        )
        .order_by(PrivacySpendRow.seq)
    )
    return tuple((at, Decimal(e) / NANO) for at, e in rows.all())


async def spend(
    session: AsyncSession,
    key: UsageKey,
    seq: int,
    now: datetime,
    *,
    epsilon: Decimal,
    delta: Decimal | None,
) -> bool:
    """Record that use number ``seq`` spent ``epsilon`` (and ``delta``); False when that use
    already has a spend (a replica that decided against the same state won)."""
    row = PrivacySpendRow(
        **key.columns(),
        seq=seq,
        at=now,
        epsilon_nano=nano(epsilon),
        delta=float(delta) if delta is not None else None,
    )
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        return False
    return True
