"""ODRL operators over the left values an evaluator observed and a constraint's right operand.

Missing data never satisfies a constraint (closed world), with one exception the purpose
suite fixes: ``isNoneOf`` holds when the request declares nothing.
Hierarchy-aware operators (``isA``, ``isPartOf``, ``hasPart``, ``isAnyOf``, ``isNoneOf``,
``isAllOf``) use the state of the world's ``broader`` relation.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal

from policies.model import Iri, TypedLiteral, Value
from policies.request import State
from policies.vocab import ODRL

Values = tuple[Value, ...]
Comparison = Callable[[Values, Values, State], bool]


def as_text(value: Value) -> str | None:
    """IRIs and strings compare by their text; other values have none."""
    if isinstance(value, Iri | str):
        return str(value)
    return None


def orderable(value: Value) -> datetime | Decimal | None:
    """A value that ``lt``/``gt`` can order: instants (dates at UTC midnight) and numbers."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, TypedLiteral | str):
        return None
    return None


def same(left: Value, right: Value) -> bool:
    """Equality across representations (an xsd:date equals its midnight, 5 equals 5.0); a
    boolean equals only a boolean (Python's ``True == 1`` would let ``[x, eq, 1]`` hold for
    a declared ``true``)."""
    lo, ro = orderable(left), orderable(right)
    if lo is not None and ro is not None and type(lo) is type(ro):
        return lo == ro
    lt, rt = as_text(left), as_text(right)
    if lt is not None and rt is not None:
        return lt == rt
    return type(left) is type(right) and left == right  # True is not 1 (nor 1.0)


def _order(op: Callable[[object, object], bool]) -> Comparison:
    def compare(left: Values, right: Values, _state: State) -> bool:
        if len(left) != 1 or len(right) != 1:
            return False
        lo, ro = orderable(left[0]), orderable(right[0])
        if lo is None or ro is None or type(lo) is not type(ro):
            return False
        return op(lo, ro)

    return compare


def _under(value: Value, over: Value, state: State) -> bool:
    vt, ot = as_text(value), as_text(over)
    if vt is None or ot is None:
        return same(value, over)
    return state.within(vt, ot)


def _under_any(value: Value, overs: Values, state: State) -> bool:
    """``_under(value, over, state)`` for some ``over``; the value's ancestors looked up once."""
    vt = as_text(value)
    if vt is None:
        return any(same(value, over) for over in overs)
    above: frozenset[str] | None = None
    for over in overs:
        ot = as_text(over)
        if ot is None:
            if same(value, over):
                return True
            continue
        if ot == vt:
            return True
        if above is None:
            above = state.ancestors(vt)
        if ot in above:
            return True
    return False


def _eq(left: Values, right: Values, _state: State) -> bool:
    if not left or not right:
        return False
    return all(any(same(lv, rv) for rv in right) for lv in left) and all(
        any(same(lv, rv) for lv in left) for rv in right
    )


def _neq(left: Values, right: Values, state: State) -> bool:
    return bool(left) and bool(right) and not _eq(left, right, state)


def _is_a(left: Values, right: Values, state: State) -> bool:
    """Strict: the value is an instance / narrower term of the class, not the class itself."""
    texts = [(as_text(lv), as_text(rv)) for lv in left for rv in right]
    return any(lt and rt and rt in state.ancestors(lt) for lt, rt in texts)


def _is_part_of(left: Values, right: Values, state: State) -> bool:
    return bool(left) and all(_under_any(lv, right, state) for lv in left)


def _has_part(left: Values, right: Values, state: State) -> bool:
    return bool(left) and all(any(_under(rv, lv, state) for lv in left) for rv in right)


def _is_all_of(left: Values, right: Values, state: State) -> bool:
    return bool(left) and all(any(_under(lv, rv, state) for lv in left) for rv in right)


def _is_none_of(left: Values, right: Values, state: State) -> bool:
    return not any(_under_any(lv, right, state) for lv in left)


COMPARISONS: dict[str, Comparison] = {
    ODRL + "eq": _eq,
    ODRL + "neq": _neq,
    ODRL + "lt": _order(lambda a, b: a < b),  # type: ignore[operator]
    ODRL + "lteq": _order(lambda a, b: a <= b),  # type: ignore[operator]
    ODRL + "gt": _order(lambda a, b: a > b),  # type: ignore[operator]
    ODRL + "gteq": _order(lambda a, b: a >= b),  # type: ignore[operator]
    ODRL + "isA": _is_a,
    ODRL + "isPartOf": _is_part_of,
    ODRL + "hasPart": _has_part,
    ODRL + "isAllOf": _is_all_of,
    ODRL + "isAnyOf": _is_part_of,  # every declared value lies within one of the allowed ones
    ODRL + "isNoneOf": _is_none_of,
}


def compare(operator: str, left: Values, right: Values, state: State) -> bool:
    """Apply ``operator``; an operator the engine does not know is never satisfied."""
    comparison = COMPARISONS.get(operator)
    return comparison(left, right, state) if comparison else False
