"""A naive, obviously-correct evaluation of a Query over Python rows (SQL null semantics)."""

from __future__ import annotations

from datetime import date
from typing import Any

from connectors import AggFunc, Op, Query
from connectors.query import Aggregate, Predicate

Row = dict[str, Any]


def evaluate(query: Query, rows: list[Row]) -> list[Row]:
    """The rows ``query`` should return over ``rows``."""
    kept = [r for r in rows if all(_holds(p, r) for p in query.where)]
    out = (
        _aggregate(query, kept)
        if query.aggregates
        else [{c: r[c] for c in query.columns} for r in kept]
    )
    for order in reversed(query.order_by):
        present = [r for r in out if r[order.column] is not None]
        absent = [r for r in out if r[order.column] is None]
        present.sort(key=lambda r, c=order.column: r[c], reverse=order.descending)
        out = present + absent
    return out if query.limit is None else out[: query.limit]


def _holds(pred: Predicate, row: Row) -> bool:
    value = row[pred.column]
    if pred.op is Op.IS_NULL:
        return value is None
    if value is None:
        return False
    if pred.op is Op.NOT_NULL:
        return True
    target = pred.value
    if isinstance(target, str) and isinstance(value, date):
        target = date.fromisoformat(target)
    checks = {
        Op.EQ: lambda: value == target,
        Op.NE: lambda: value != target,
        Op.LT: lambda: value < target,
        Op.LE: lambda: value <= target,
        Op.GT: lambda: value > target,
        Op.GE: lambda: value >= target,
        Op.IN: lambda: value in target,  # type: ignore[operator]
        Op.NOT_IN: lambda: value not in target,  # type: ignore[operator]
    }
    return bool(checks[pred.op]())


def _aggregate(query: Query, rows: list[Row]) -> list[Row]:
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in query.group_by), []).append(row)
    if not query.group_by and not groups:
        groups[()] = []
    out = []
    for key, members in groups.items():
        if query.min_group_size and len(members) < query.min_group_size:
            continue
        result = dict(zip(query.group_by, key, strict=True))
        for agg in query.aggregates:
            result[agg.name] = _one(agg, members)
        out.append(result)
    return out


def _one(agg: Aggregate, members: list[Row]) -> Any:
    if agg.column is None:
        return len(members)
    values = [m[agg.column] for m in members if m[agg.column] is not None]
    if agg.func is AggFunc.COUNT:
        return len(values)
    if not values:
        return None
    if agg.func is AggFunc.SUM:
        return sum(values)
    if agg.func is AggFunc.AVG:
        return sum(values) / len(values)
    return min(values) if agg.func is AggFunc.MIN else max(values)


def comparable(rows: list[Row], ordered: bool) -> list[tuple[Any, ...]]:
    """Rows as tuples with floats rounded; sorted unless the order is part of the answer."""
    out = [tuple(round(v, 6) if isinstance(v, float) else v for v in r.values()) for r in rows]
    return out if ordered else sorted(out, key=repr)
