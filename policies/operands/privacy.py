"""Private aggregates: the privacy unit, contributor thresholds and a differential-privacy budget.

sluis:privacyUnit        isAnyOf ["employee_id"]    a contributor is one value of these columns
sluis:allowMinMax        eq      true               min/max released under a privacy unit
sluis:privacyBudget      lteq    "1.0/P30D"         epsilon per consumer and dataset per period
sluis:queryEpsilon       eq      0.1                what one query costs
sluis:queryDelta         eq      0.000001           delta of one grouped query (key selection)
sluis:bounds             isAnyOf ["salary=0..200000"]  clamping bounds per column
sluis:maxContributions   lteq    1                  rows a contributor adds to one group
sluis:maxGroups          lteq    1                  groups a contributor adds to

Pure. Only ``privacyUnit`` (aggregates only) and ``privacyBudget`` (the budget left in the
period, counting this query) decide anything; the other terms travel in the permit's
``DataLimits`` and the connector applies them. A budget without a per-query cost, or without
a privacy unit in the same rule, fails (fail closed: an unbounded or unitless budget means
nothing).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from policies.model import Constraint, Rule, Value
from policies.operands.data import AGGREGATE
from policies.operands.registry import EvalInput, Outcome, left_operand
from policies.operands.temporal import add_duration, period_text
from policies.vocab import SLUIS

PRIVACY_UNIT = SLUIS + "privacyUnit"
ALLOW_MIN_MAX = SLUIS + "allowMinMax"
PRIVACY_BUDGET = SLUIS + "privacyBudget"
QUERY_EPSILON = SLUIS + "queryEpsilon"
QUERY_DELTA = SLUIS + "queryDelta"
BOUNDS = SLUIS + "bounds"
MAX_CONTRIBUTIONS = SLUIS + "maxContributions"
MAX_GROUPS = SLUIS + "maxGroups"
TERMS = frozenset(
    {
        PRIVACY_UNIT,
        ALLOW_MIN_MAX,
        PRIVACY_BUDGET,
        QUERY_EPSILON,
        QUERY_DELTA,
        BOUNDS,
        MAX_CONTRIBUTIONS,
        MAX_GROUPS,
    }
)


@left_operand(PRIVACY_UNIT)
def privacy_unit(constraint: Constraint, given: EvalInput) -> Outcome:
    """Only aggregates are allowed; the exchange counts contributors, not rows."""
    del constraint
    asked = given.request.values(AGGREGATE)
    ok = any(v is True for v in asked)
    reason = "aggregate request" if ok else "only aggregate requests are allowed"
    return Outcome(ok, asked, f"sluis:privacyUnit: {reason}")


@left_operand(ALLOW_MIN_MAX, QUERY_EPSILON, QUERY_DELTA, BOUNDS, MAX_CONTRIBUTIONS, MAX_GROUPS)
def applied(constraint: Constraint, given: EvalInput) -> Outcome:
    """Always in force: the term travels with the permit and the connector applies it."""
    del given
    name = constraint.left_operand.removeprefix(SLUIS)
    return Outcome(True, (), f"sluis:{name} will be applied")


@left_operand(PRIVACY_BUDGET)
def privacy_budget(constraint: Constraint, given: EvalInput) -> Outcome:
    """The epsilon spent in the period, plus this query's cost, must stay within the budget."""
    budget = parse_budget(constraint.right_operand)
    cost = query_epsilon(given.rule)
    if budget is None:
        return Outcome(False, (), "sluis:privacyBudget fails (right operand is not E/duration)")
    if cost is None:
        return Outcome(False, (), "sluis:privacyBudget fails (the rule sets no queryEpsilon)")
    if not _has(given.rule, PRIVACY_UNIT):
        return Outcome(False, (), "sluis:privacyBudget fails (the rule sets no privacyUnit)")
    epsilon, period = budget
    spent = spent_in(given.state.privacy_spends, period, given.now)
    ok = spent + cost <= epsilon
    return Outcome(
        ok,
        (spent + cost,),
        f"sluis:privacyBudget {epsilon}/{period}: {spent} spent, this query costs {cost}",
    )


def spent_in(spends: tuple[tuple[datetime, Decimal], ...], period: str, now: datetime) -> Decimal:
    """Epsilon spent in the ``period`` (ISO 8601 duration) that ends at ``now``."""
    since = now - (add_duration(now, period) - now)
    return sum((e for t, e in spends if since < t <= now), Decimal(0))


def parse_budget(right: tuple[Value, ...]) -> tuple[Decimal, str] | None:
    """``"1.0/P30D"`` -> ``(Decimal("1.0"), "P30D")``; None unless a positive epsilon over a
    period of positive length (:func:`period_text`)."""
    if len(right) != 1 or not isinstance(right[0], str):
        return None
    amount, _, window = right[0].partition("/")
    epsilon, period = positive(amount.strip()), period_text(window)
    return None if epsilon is None or period is None else (epsilon, period)


def positive(value: object) -> Decimal | None:
    """``value`` as a positive finite Decimal, else None (booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() and number > 0 else None


def parse_bound(text: Value) -> tuple[str, Decimal, Decimal] | None:
    """``"salary=0..200000"`` -> ``("salary", 0, 200000)``; None unless low <= high."""
    if not isinstance(text, str):
        return None
    column, eq, rest = text.partition("=")
    low, dots, high = rest.partition("..")
    try:
        lo, hi = Decimal(low.strip()), Decimal(high.strip())
    except InvalidOperation:
        return None
    ok = eq and dots and column.strip() and lo.is_finite() and hi.is_finite() and lo <= hi
    return (column.strip(), lo, hi) if ok else None


def query_epsilon(rule: Rule) -> Decimal | None:
    """The per-query epsilon a rule sets (its first ``queryEpsilon``), or None."""
    found = _first(rule, QUERY_EPSILON)
    return positive(found.right_operand[0]) if found and len(found.right_operand) == 1 else None


def _has(rule: Rule, left_operand: str) -> bool:
    return _first(rule, left_operand) is not None


def _first(rule: Rule, left_operand: str) -> Constraint | None:
    todo = list(rule.constraints)
    while todo:
        c = todo.pop(0)
        if isinstance(c, Constraint):
            if c.left_operand == left_operand:
                return c
        else:
            todo.extend(c.operands)
    return None
