"""What a refused consumer may be told: which of its own choices the policy refused.

Pure. A denial says ``no_active_permission`` whatever failed; the audit entry keeps the full
report. When a permission applies to the caller and every one of its constraints holds except
the data terms the consumer chose in the request itself (the columns it named, a row-level
read where the permission requires aggregates), the consumer is told which, so it can change
the request:

- ``column-not-allowed`` with the requested columns the permission does not release (never the
  list of columns it does release);
- ``aggregate-required`` when only aggregates over groups are allowed (never the group size).

Nothing else is revealed: when any other constraint (purpose, count, time, party) fails too,
or a prohibition or a duty decides, the refusal stays the plain ``policy-denied``.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.decision import ConstraintReport, Decision, RuleReport
from policies.operands import data as d

_FAILS = ("a constraint fails",)


@dataclass(frozen=True)
class Refusal:
    """``code`` (a problem type) and the requested ``columns`` it concerns."""

    code: str
    columns: tuple[str, ...] = ()


def refusal_of(decision: Decision) -> Refusal | None:
    """The refusal the consumer may learn, or ``None`` for the plain denial."""
    if decision.permitted or decision.reason != "no_active_permission":
        return None
    for report in decision.rules:
        refusal = _of_permission(report)
        if refusal is not None:
            return refusal
    return None


def _of_permission(report: RuleReport) -> Refusal | None:
    if report.kind != "permission" or not report.applies or report.reasons != _FAILS:
        return None
    failing = [c for c in report.constraints if not c.satisfied]
    if not failing or any(c.left_operand not in (d.COLUMNS, d.MIN_GROUP_SIZE) for c in failing):
        return None
    withheld = tuple(col for c in failing if c.left_operand == d.COLUMNS for col in _outside(c))
    if withheld:
        return Refusal("column-not-allowed", withheld)
    if any(c.left_operand == d.COLUMNS for c in failing):
        return None  # a columns term failed for another reason: say nothing more
    return Refusal("aggregate-required")


def _outside(report: ConstraintReport) -> tuple[str, ...]:
    allowed = set(report.right_operand)
    return tuple(str(v) for v in report.observed if v not in allowed)
