"""The exchange's side of a privacy budget (issue 17): read the spends, spend, and tell.

Kept apart from ``service.py`` so that the use spend and the budget spend stay one
composable step: :func:`spend` takes the session the use is spent in (today the use's own
transaction; the decision entry's group-commit effect when the use moves there) and raises
:class:`LostRace` to roll both back when a replica that decided against the same state won.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from connectors import Query
from connectors.noise import plan
from gateway.agreements import privacy
from gateway.agreements.usage import Usage, UsageKey
from gateway.audit.entry import PrivacyRecord
from gateway.storage.db import Database
from policies import CompiledPolicy, Decision, PrivacyLimits
from policies.limits import privacy_of
from policies.operands.temporal import add_duration

Spends = tuple[tuple[datetime, Decimal], ...]


class LostRace(Exception):
    """Another replica spent against the same state first; the transaction rolls back."""


def budgeted(policy: CompiledPolicy) -> PrivacyLimits | None:
    """The policy's privacy budget (its first permission that sets one), or None."""
    return privacy_of(policy.policy)


async def spends(db: Database, key: UsageKey, limits: PrivacyLimits, now: datetime) -> Spends:
    """The spends within the budget's period ending ``now`` (read after the use count)."""
    since = now - (add_duration(now, limits.period) - now)
    async with db.session() as session:
        return await privacy.read(session, key, since)


async def spend(  # noqa: PLR0917 - the use spend's own arguments, plus what was decided
    session: AsyncSession,
    key: UsageKey,
    used: Usage,
    decision: Decision,
    spent: Spends,
    now: datetime,
) -> PrivacyRecord | None:
    """Spend the query's epsilon with use number ``used.use_count + 1``; the audit record."""
    limits = decision.limits.privacy if decision.limits else None
    if limits is None:
        return None
    cost, delta = limits.query_epsilon, limits.query_delta
    if not await privacy.spend(session, key, used.use_count + 1, now, epsilon=cost, delta=delta):
        raise LostRace
    budget = privacy.budget_of(limits, spent, now)
    return PrivacyRecord(
        epsilon=privacy.text(cost),
        delta=privacy.text(delta) if delta is not None else None,
        spent=privacy.text(budget.spent + cost),
        budget=privacy.text(limits.epsilon),
        period=limits.period,
    )


def headers(record: PrivacyRecord | None, query: Query) -> dict[str, str]:
    """What the response tells the consumer: epsilon spent, budget left, noise per column."""
    if record is None:
        return {}
    left = max(Decimal(record.budget) - Decimal(record.spent), Decimal(0))
    out = {
        "Sluis-Privacy-Epsilon": record.epsilon,
        "Sluis-Privacy-Budget-Remaining": f"{privacy.text(left)}/{record.period}",
    }
    if query.noise is not None:
        scales = plan(query).scales(query)
        out["Sluis-Privacy-Noise-Scale"] = ", ".join(f"{k}={v:.6g}" for k, v in scales.items())
    return out
