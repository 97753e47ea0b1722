"""Gather a permission's Sluis data constraints and exchange-run duties into ``DataLimits``."""

from __future__ import annotations

from policies.decision import DataLimits, PrivacyLimits, RateLimit, RuleReport
from policies.model import AnyConstraint, Constraint, Policy, Rule
from policies.operands import data as d
from policies.operands import privacy as pv
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
        privacy_unit=_texts(found.get(pv.PRIVACY_UNIT)),
        allow_min_max=pv.ALLOW_MIN_MAX in found,
        privacy=_privacy(found, rule),
    )


def privacy_of(policy: Policy) -> PrivacyLimits | None:
    """The privacy budget of the policy's first permission that sets one (else None)."""
    for rule in policy.permissions:
        found: dict[str, Constraint] = {}
        for constraint in _leaves(rule.constraints):
            found.setdefault(constraint.left_operand, constraint)
        limits = _privacy(found, rule)
        if limits is not None:
            return limits
    return None


def _privacy(found: dict[str, Constraint], rule: Rule) -> PrivacyLimits | None:
    budget = (
        pv.parse_budget(found[pv.PRIVACY_BUDGET].right_operand)
        if pv.PRIVACY_BUDGET in found
        else None
    )
    cost = pv.query_epsilon(rule)
    if budget is None or cost is None:
        return None  # the budget's own constraint failed: this rule granted nothing
    delta = found.get(pv.QUERY_DELTA)
    bounds = found.get(pv.BOUNDS)
    return PrivacyLimits(
        epsilon=budget[0],
        period=budget[1],
        query_epsilon=cost,
        query_delta=pv.positive(delta.right_operand[0]) if delta else None,
        bounds=tuple(b for b in map(pv.parse_bound, bounds.right_operand) if b) if bounds else (),
        max_contributions=_single_int(found.get(pv.MAX_CONTRIBUTIONS)) or 1,
        max_groups=_single_int(found.get(pv.MAX_GROUPS)) or 1,
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
