"""The engine's output: a ``Decision`` with its compliance report and, for permits, limits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from functools import cached_property

from policies.model import Value


class Effect(StrEnum):
    """Permit or deny; there is nothing in between."""

    PERMIT = "permit"
    DENY = "deny"


@dataclass(frozen=True)
class RateLimit:
    """At most ``max_requests`` in any window of ``window`` (ISO 8601 duration)."""

    max_requests: int
    window: str


@dataclass(frozen=True)
class PrivacyLimits:
    """A differential-privacy budget and how each query spends it (``sluis:privacyBudget``).

    ``bounds`` maps a column to its clamping range; ``max_contributions`` is the rows one
    contributor adds to a group, ``max_groups`` the groups it adds to.
    """

    epsilon: Decimal
    period: str
    query_epsilon: Decimal
    query_delta: Decimal | None = None
    bounds: tuple[tuple[str, Decimal, Decimal], ...] = ()
    max_contributions: int = 1
    max_groups: int = 1


@dataclass(frozen=True)
class DataLimits:
    """What the exchange must apply to a permitted request (pushed down to the connector).

    ``columns`` None means every column; ``duties`` names duty uids still to be discharged.
    ``privacy_unit`` names the columns that identify a contributor: k then counts distinct
    contributors (see ``connectors.contributors``), and ``privacy`` adds calibrated noise.
    """

    columns: tuple[str, ...] | None = None
    row_filter: str | None = None
    min_group_size: int | None = None
    max_rows: int | None = None
    rate_limit: RateLimit | None = None
    notify: tuple[str, ...] = ()
    delete_after: str | None = None
    duties: tuple[str, ...] = ()
    # Appended with defaults (STYLE.md 7): contributor-level thresholds and a privacy budget.
    privacy_unit: tuple[str, ...] | None = None
    allow_min_max: bool = False
    privacy: PrivacyLimits | None = None


@dataclass(frozen=True)
class ConstraintReport:
    """One constraint: what it asked, what was observed, whether it held, and why."""

    uid: str | None
    left_operand: str
    operator: str
    right_operand: tuple[Value, ...]
    observed: tuple[Value, ...]
    satisfied: bool
    reason: str


@dataclass(frozen=True)
class RuleReport:
    """One rule: whether it applies to the request, whether it is active, and why."""

    uid: str | None
    kind: str
    applies: bool
    active: bool
    reasons: tuple[str, ...]
    constraints: tuple[ConstraintReport, ...] = ()
    duties: tuple[RuleReport, ...] = ()


def _no_rules() -> tuple[RuleReport, ...]:
    return ()


@dataclass(frozen=True, eq=False)
class Decision:
    """Permit or deny, naming the policy version it was decided under.

    ``reason`` is a short stable code for the client (``permitted``, ``prohibited``,
    ``no_active_permission``, ``unknown_left_operand``, ``unknown_operator``,
    ``unknown_action``, ``obligation_violated``, ``invalid_value``);
    ``rules`` is the full compliance report for the audit log; ``limits`` is set on permits.
    ``report`` writes ``rules``: a deny carries them written, a permit writes them the first
    time they are read (the audit entry of a permit does not need them). Two decisions are
    equal when every field and ``rules`` are.
    """

    effect: Effect
    reason: str
    policy_id: str
    policy_hash: str
    limits: DataLimits | None = None
    rule: str | None = None  # the permission that grants, on permits
    notes: tuple[str, ...] = field(default=())
    report: Callable[[], tuple[RuleReport, ...]] = field(default=_no_rules, repr=False)

    @cached_property
    def rules(self) -> tuple[RuleReport, ...]:
        """The compliance report, one entry per top-level rule (written once, on demand)."""
        return self.report()

    @property
    def permitted(self) -> bool:
        """True only for a permit."""
        return self.effect is Effect.PERMIT

    def _key(self) -> tuple[object, ...]:
        return (
            self.effect,
            self.reason,
            self.policy_id,
            self.policy_hash,
            self.limits,
            self.rule,
            self.notes,
            self.rules,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Decision):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())
