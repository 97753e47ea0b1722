"""The exchange's side of a privacy budget (issue 17): read the spends, spend, and tell.

The budget is spent by the decision entry's effect (``service._Spend``), in the audit log's
batch transaction, which holds the log's sequencer lock: the spends are re-read there, the
policy asked again when others spent since the decision, and :func:`spend` records this
query's epsilon with the use's number, in the same transaction as the use and the entry.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from connectors import Query
from connectors.noise import plan
from gateway.agreements import privacy
from gateway.agreements.usage import UsageKey
from gateway.audit.entry import PrivacyRecord
from gateway.storage import StorageUnavailable
from gateway.storage.db import Database
from policies import CompiledPolicy, Decision, PrivacyLimits
from policies.limits import privacy_of
from policies.operands.temporal import add_duration

Spends = tuple[tuple[datetime, Decimal], ...]


def budgeted(policy: CompiledPolicy) -> PrivacyLimits | None:
    """The policy's privacy budget (its first permission that sets one), or None."""
    return privacy_of(policy.policy)


def _since(limits: PrivacyLimits, now: datetime) -> datetime:
    """The start of the budget's period that ends ``now``."""
    return now - (add_duration(now, limits.period) - now)


async def spends(db: Database, key: UsageKey, limits: PrivacyLimits, now: datetime) -> Spends:
    """The spends within the budget's period ending ``now`` (read after the use count)."""
    async with db.session() as session:
        return await read(session, key, limits, now)


async def read(
    session: AsyncSession, key: UsageKey, limits: PrivacyLimits, now: datetime
) -> Spends:
    """:func:`spends`, in ``session`` (the decision entry's transaction).

    A spend stamped after ``now`` (a query decided after this one that committed first) is
    spent all the same: it counts as of ``now``, or the policy, which counts spends up to
    its ``now``, would not see it and a race could overspend the budget.
    """
    found = await privacy.read(session, key, _since(limits, now))
    return tuple((min(at, now), epsilon) for at, epsilon in found)


async def spend(
    session: AsyncSession, key: UsageKey, seq: int, limits: PrivacyLimits, now: datetime
) -> None:
    """Spend the query's epsilon (and delta) with use number ``seq``, just counted in
    ``session``: the use's number is new, so the spend is too."""
    cost, delta = limits.query_epsilon, limits.query_delta
    if not await privacy.spend(session, key, seq, now, epsilon=cost, delta=delta):
        raise StorageUnavailable(f"use {seq} has a privacy spend already")  # an invariant


def record(decision: Decision, spent: Spends, now: datetime) -> PrivacyRecord | None:
    """What the decision entry says of the budget: this query's epsilon and delta, and the
    budget spent with it as decided (queries committed in the same batch before this one
    are in their own entries; the entries' epsilons add up to what was spent)."""
    limits = decision.limits.privacy if decision.limits else None
    if limits is None:
        return None
    cost, delta = limits.query_epsilon, limits.query_delta
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
