"""Gather a permission's Sluis data constraints and exchange-run duties into ``DataLimits``."""

from __future__ import annotations

from policies.decision import DataLimits, RateLimit, RuleReport
from policies.model import AnyConstraint, Constraint, Rule
from policies.operands import data as d
from policies.operands.temporal import duration_text
from policies.vocab import ODRL


def limits_of(rule: Rule, report: RuleReport) -> DataLimits:
    """The limits the exchange must apply when ``rule`` grants the request."""
    found: dict[str, Constraint] = {}
    for constraint in _leaves(rule.constraints):
        found.setdefault(constraint.left_operand, constraint)
    rate = d.parse_rate(found[d.RATE_LIMIT].right_operand) if d.RATE_LIMIT in found else None
    return DataLimits(
        columns=_texts(found.get(d.COLUMNS)),
        row_filter=_single_text(found.get(d.ROW_FILTER)),
        min_group_size=_single_int(found.get(d.MIN_GROUP_SIZE)),
        max_rows=_single_int(found.get(d.MAX_ROWS)),
        rate_limit=RateLimit(*rate) if rate else None,
        notify=_notify(rule),
        delete_after=_delete_after(rule),
        duties=tuple(r.uid for r in report.duties if r.applies and r.uid),
    )


def _leaves(constraints: tuple[AnyConstraint, ...]) -> list[Constraint]:
    out: list[Constraint] = []
    for c in constraints:
        out.extend([c] if isinstance(c, Constraint) else _leaves(c.operands))
    return out


def _texts(c: Constraint | None) -> tuple[str, ...] | None:
    return None if c is None else tuple(str(v) for v in c.right_operand)


def _single_text(c: Constraint | None) -> str | None:
    return str(c.right_operand[0]) if c is not None and len(c.right_operand) == 1 else None


def _single_int(c: Constraint | None) -> int | None:
    if c is None or len(c.right_operand) != 1:
        return None
    value = c.right_operand[0]
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _notify(rule: Rule) -> tuple[str, ...]:
    parties: list[str] = []
    for duty in rule.duties:
        if any(a.name == ODRL + "inform" for a in duty.actions):
            named = [r.uid for r in duty.assignees or rule.assigners]
            parties.extend(named or ["*"])
    return tuple(parties)


def _delete_after(rule: Rule) -> str | None:
    for duty in rule.duties:
        for action in duty.actions:
            if action.name == ODRL + "delete":
                for refinement in _leaves(action.refinements):
                    return duration_text(refinement.right_operand)
    return None
