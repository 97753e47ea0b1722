"""The Sluis data profile: limits the exchange applies, checked against what the request asks.

sluis:columns       isAnyOf  ["a", "b"]     project to these columns
sluis:rowFilter     eq       "region = 'NL'" add this row predicate
sluis:minGroupSize  gteq     10             aggregates only, groups of at least k
sluis:maxRows       lteq     1000           at most this many rows per request
sluis:rateLimit     lteq     "100/PT1H"     at most N requests per window
"""

from __future__ import annotations

from functools import partial

from policies.model import Constraint, Value
from policies.operands.registry import Bound, EvalInput, Outcome, binds, judge, left_operand
from policies.operands.temporal import add_duration, period_text
from policies.vocab import ODRL, SLUIS

COLUMNS = SLUIS + "columns"
ROW_FILTER = SLUIS + "rowFilter"
MIN_GROUP_SIZE = SLUIS + "minGroupSize"
MAX_ROWS = SLUIS + "maxRows"
RATE_LIMIT = SLUIS + "rateLimit"
AGGREGATE = SLUIS + "aggregate"


@left_operand(COLUMNS)
def columns(constraint: Constraint, given: EvalInput) -> Outcome:
    """Requested columns must all be allowed; a request naming none gets the allowed ones."""
    asked = given.request.values(COLUMNS)
    if not asked:
        return Outcome(True, (), "sluis:columns: the allowed columns will be applied")
    subset = Constraint(COLUMNS, ODRL + "isAnyOf", constraint.right_operand, constraint.uid)
    return judge(subset, asked, given.state)


@left_operand(ROW_FILTER)
def row_filter(constraint: Constraint, given: EvalInput) -> Outcome:
    """Always in force: the filter travels with the permit, the connector applies it."""
    del given
    shown = ", ".join(str(v) for v in constraint.right_operand)
    return Outcome(True, (), f"sluis:rowFilter {shown} will be applied")


@left_operand(MIN_GROUP_SIZE)
def min_group_size(constraint: Constraint, given: EvalInput) -> Outcome:
    """Only aggregate requests are allowed; the exchange suppresses groups below k."""
    del constraint  # k travels in the permit's DataLimits, the connector applies it
    asked = given.request.values(AGGREGATE)
    ok = any(v is True for v in asked)
    reason = "aggregate request" if ok else "only aggregate requests are allowed"
    return Outcome(ok, asked, f"sluis:minGroupSize: {reason}")


@left_operand(MAX_ROWS)
def max_rows(constraint: Constraint, given: EvalInput) -> Outcome:
    """A request asking for more rows than allowed fails; one asking for none is capped."""
    asked = given.request.values(MAX_ROWS)
    if not asked:
        return Outcome(True, (), "sluis:maxRows: the cap will be applied")
    return judge(constraint, asked, given.state)


@left_operand(RATE_LIMIT)
def rate_limit(constraint: Constraint, given: EvalInput) -> Outcome:
    """Requests within the window, counting this one, must stay within the limit."""
    return _rate(parse_rate(constraint.right_operand), given)


@binds(RATE_LIMIT)
def bind_rate_limit(constraint: Constraint) -> Bound:
    """``rate_limit`` with the right operand parsed once."""
    return partial(_rate, parse_rate(constraint.right_operand))


def _rate(parsed: tuple[int, str] | None, given: EvalInput) -> Outcome:
    if parsed is None:
        return Outcome(False, (), "sluis:rateLimit fails (right operand is not N/duration)")
    limit, window = parsed
    since = given.now - (add_duration(given.now, window) - given.now)
    recent = sum(1 for t in given.state.request_times if since < t <= given.now) + 1
    ok = recent <= limit
    return Outcome(ok, (recent,), f"sluis:rateLimit {limit}/{window}: request {recent} in window")


def parse_rate(right: tuple[Value, ...]) -> tuple[int, str] | None:
    """``"100/PT1H"`` -> ``(100, "PT1H")``."""
    if len(right) != 1 or not isinstance(right[0], str):
        return None
    count, _, window = right[0].partition("/")
    period = period_text(window)
    if not count.strip().isascii() or not count.strip().isdigit() or period is None:
        return None  # isdigit alone takes "²", which int() refuses
    return int(count), period
