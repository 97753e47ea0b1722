"""Time left operands: dateTime, elapsedTime (since the agreement), dayOfWeek."""

from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from types import MappingProxyType

from policies.model import Constraint, TypedLiteral, Value
from policies.operands.registry import EvalInput, Outcome, judge, left_operand
from policies.operators import compare
from policies.vocab import ODRL, SLUIS

_DURATION = re.compile(
    r"P(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)
_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)  # any instant: a positive duration moves it
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@left_operand(ODRL + "dateTime")
def date_time(constraint: Constraint, given: EvalInput) -> Outcome:
    """The time of the request: ``now``."""
    return judge(constraint, (given.now,), given.state)


@left_operand(ODRL + "elapsedTime")
def elapsed_time(constraint: Constraint, given: EvalInput) -> Outcome:
    """Time since the agreement started, against an xsd:duration (calendar-exact)."""
    start = given.state.agreement_start
    limit = duration_text(constraint.right_operand)
    if start is None or limit is None:
        why = "no agreement start in the state" if start is None else "right operand not a duration"
        return Outcome(False, (), f"odrl:elapsedTime fails ({why})")
    deadline = add_duration(start, limit)
    # elapsed <op> duration  <=>  now <op> start + duration
    ok = compare(constraint.operator, (given.now,), (deadline,), given.state)
    elapsed = str(given.now - start)
    return Outcome(ok, (elapsed,), f"odrl:elapsedTime {limit} {'holds' if ok else 'fails'}")


@left_operand(SLUIS + "dayOfWeek", "ex:dayOfWeek")
def day_of_week(constraint: Constraint, given: EvalInput) -> Outcome:
    """The weekday of ``now`` (English name, capitalised: "Sunday")."""
    return judge(constraint, (_DAYS[given.now.weekday()].capitalize(),), given.state)


def duration_text(right: tuple[Value, ...]) -> str | None:
    """The single ISO 8601 duration in ``right``, if that is what it is."""
    if len(right) != 1:
        return None
    value = right[0]
    text = value.lexical if isinstance(value, TypedLiteral) else str(value)
    return text if _DURATION.fullmatch(text) and text not in ("P", "PT") else None


def period_text(text: str) -> str | None:
    """``text`` (stripped) when it is an ISO 8601 duration of positive length, else None.

    A rate window or a budget period of zero length ("P", "PT0S", "P0D") would count no
    earlier request or spend at all, so the limit would never bind: refused, not read as 0.
    """
    text = text.strip()
    if not _DURATION.fullmatch(text):
        return None
    return text if add_duration(_ORIGIN, text) > _ORIGIN else None


@lru_cache(maxsize=256)  # a policy's few durations, parsed once (the text is the key)
def _parts(text: str) -> Mapping[str, float]:
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"not an ISO 8601 duration: {text}")
    return MappingProxyType({k: float(v) if v else 0.0 for k, v in match.groupdict().items()})


def add_duration(start: datetime, text: str) -> datetime:
    """``start`` plus an ISO 8601 duration, with years and months on the calendar."""
    part = _parts(text)
    months = start.month - 1 + int(part["mo"]) + 12 * int(part["y"])
    year, month = start.year + months // 12, months % 12 + 1
    day = min(start.day, monthrange(year, month)[1])
    shifted = start.replace(year=year, month=month, day=day)
    return shifted + timedelta(
        weeks=part["w"], days=part["d"], hours=part["h"], minutes=part["mi"], seconds=part["s"]
    )
