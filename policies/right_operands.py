"""What a left operand's right operand must be, checked on write whatever the syntax.

A constraint whose right operand cannot mean anything (``[dateTime, lt, tomorrow]``,
``sluis:maxRows "lots"``, ``sluis:rateLimit "often"``) would only ever fail, or, under
``isNoneOf``, always hold: either way not what the provider wrote. ``problem(constraint)``
says what is wrong with it in one line, or ``None``. Left operands not listed here take
any non-empty right operand; the profile decides whether they are known at all.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from policies.model import Constraint, Value
from policies.operands import data as d
from policies.operands import privacy as pv
from policies.operands.temporal import duration_text
from policies.vocab import ODRL, SLUIS

Check = Callable[[tuple[Value, ...]], str | None]
_DAYS = frozenset(("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"))


def problem(constraint: Constraint) -> str | None:
    """Why ``constraint``'s right operand is unusable for its left operand (else ``None``)."""
    values = constraint.right_operand
    if not values:
        return "the right operand is empty"
    check = _CHECKS.get(constraint.left_operand)
    return check(values) if check is not None else None


def _every(test: Callable[[Value], bool], what: str) -> Check:
    def check(values: tuple[Value, ...]) -> str | None:
        bad = next((v for v in values if not test(v)), None)
        return None if bad is None else f"{str(bad)!r} is not {what}"

    return check


def _single(inner: Check) -> Check:
    def check(values: tuple[Value, ...]) -> str | None:
        return "takes exactly one value" if len(values) != 1 else inner(values)

    return check


def _is_count(value: Value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_time(value: Value) -> bool:
    return isinstance(value, date)  # a datetime is a date too


def _is_text(value: Value) -> bool:
    return type(value) is str and bool(value.strip())


def _duration(values: tuple[Value, ...]) -> str | None:
    return None if duration_text(values) else f"{values[0]!s} is not an ISO 8601 duration"


def _rate(values: tuple[Value, ...]) -> str | None:
    return None if d.parse_rate(values) else f"{values[0]!s} is not N/duration (e.g. 100/PT1H)"


def _budget(values: tuple[Value, ...]) -> str | None:
    ok = pv.parse_budget(values)
    return None if ok else f"{values[0]!s} is not epsilon/duration (e.g. 1.0/P30D)"


def _is_delta(value: Value) -> bool:
    number = pv.positive(value)
    return number is not None and number < 1


_CHECKS: dict[str, Check] = {
    ODRL + "dateTime": _every(_is_time, "a date-time or a date"),
    ODRL + "elapsedTime": _single(_duration),
    ODRL + "count": _single(_every(_is_count, "a count (an integer >= 0)")),
    d.COLUMNS: _every(_is_text, "a column name"),
    d.ROW_FILTER: _single(_every(_is_text, "a row filter")),
    d.MIN_GROUP_SIZE: _single(_every(lambda v: _is_count(v) and v != 0, "a group size >= 1")),
    d.MAX_ROWS: _single(_every(_is_count, "a row count (an integer >= 0)")),
    d.RATE_LIMIT: _single(_rate),
    pv.PRIVACY_UNIT: _every(_is_text, "a column name"),
    pv.ALLOW_MIN_MAX: _single(_every(lambda v: v is True, "true")),
    pv.PRIVACY_BUDGET: _single(_budget),
    pv.QUERY_EPSILON: _single(_every(lambda v: pv.positive(v) is not None, "a number > 0")),
    pv.QUERY_DELTA: _single(_every(_is_delta, "a number in (0, 1)")),
    pv.BOUNDS: _every(lambda v: pv.parse_bound(v) is not None, "column=low..high"),
    pv.MAX_CONTRIBUTIONS: _single(_every(lambda v: _is_count(v) and v != 0, "a count >= 1")),
    pv.MAX_GROUPS: _single(_every(lambda v: _is_count(v) and v != 0, "a count >= 1")),
    SLUIS + "dayOfWeek": _every(lambda v: str(v) in _DAYS, "a weekday (Monday ... Sunday)"),
}
