"""Check a query against a dataset's Arrow schema: names exist, values fit, shapes make sense.

Pure. Returns the query with ``columns`` resolved and values coerced to the column's type
(ISO text for dates and timestamps, ints for float columns), so every connector sees the
same, well-typed query. Raises ``UnknownColumn``, ``WrongValueType`` or ``QueryError``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any

from connectors._arrow import pa
from connectors.errors import QueryError, UnknownColumn, WrongValueType
from connectors.query import NULL_OPS, SET_OPS, AggFunc, Aggregate, Predicate, Query, Scalar

MAX_SET = 1000  # values in one in/not_in list
MAX_BOUND = 2**31 - 1  # limit and min_group_size: a 32-bit integer in every SQL backend


def validate(query: Query, schema: pa.Schema) -> Query:
    """The query, checked and normalised against ``schema``."""
    names = set(schema.names)
    for column in query.source_columns():
        if column not in names:
            raise UnknownColumn(column)
    query = _resolve_columns(query, schema)
    _check_shape(query, schema)
    where = tuple(_predicate(p, schema.field(p.column)) for p in query.where)
    return replace(query, where=where)


def output_schema(query: Query, schema: pa.Schema) -> pa.Schema:
    """The Arrow schema of the result of a validated ``query`` over ``schema``."""
    if not query.is_aggregate:
        return pa.schema([schema.field(c) for c in query.columns])
    fields = [schema.field(c) for c in query.group_by]
    fields += [pa.field(a.name, _agg_type(a, schema)) for a in query.aggregates]
    return pa.schema(fields)


def _agg_type(agg: Aggregate, schema: pa.Schema) -> pa.DataType:
    if agg.func is AggFunc.COUNT:
        return pa.int64()
    source = schema.field(agg.column).type
    if agg.func is AggFunc.AVG:
        return pa.float64()
    if agg.func is AggFunc.SUM:
        return pa.int64() if pa.types.is_integer(source) else pa.float64()
    return source


def _resolve_columns(query: Query, schema: pa.Schema) -> Query:
    if query.is_aggregate:
        if query.columns:
            raise QueryError("an aggregate query names its output with group_by and aggregates")
        return query
    if query.group_by:
        raise QueryError("group_by needs at least one aggregate")
    if not query.columns:
        return replace(query, columns=tuple(schema.names))
    return query


def _check_shape(query: Query, schema: pa.Schema) -> None:
    outputs = query.output_columns
    if len(set(outputs)) != len(outputs):
        raise QueryError("output column names must be unique")
    for agg in query.aggregates:
        _check_aggregate(agg, schema)
    for order in query.order_by:
        if order.column not in outputs:
            raise QueryError(f"order_by column {order.column!r} is not in the output")
    for bound in (query.limit, query.min_group_size):
        if bound is not None and (
            isinstance(bound, bool) or not isinstance(bound, int) or not 0 <= bound <= MAX_BOUND
        ):
            raise QueryError(f"limit and min_group_size must be integers from 0 to {MAX_BOUND}")


def _check_aggregate(agg: Aggregate, schema: pa.Schema) -> None:
    if agg.column is None:
        if agg.func is not AggFunc.COUNT:
            raise QueryError(f"{agg.func.value} needs a column")
        return
    kind = schema.field(agg.column).type
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
    if agg.func in (AggFunc.SUM, AggFunc.AVG) and not numeric:
        raise WrongValueType(agg.column, "numeric (for sum/avg)", agg.func)


def _predicate(pred: Predicate, field: pa.Field) -> Predicate:
    if pred.op in NULL_OPS:
        return replace(pred, value=None)
    if pred.op in SET_OPS:
        if not isinstance(pred.value, tuple | list) or len(pred.value) > MAX_SET:
            raise QueryError(f"{pred.op.value} on {pred.column!r} takes a list of values")
        return replace(pred, value=tuple(_scalar(pred.column, field.type, v) for v in pred.value))
    return replace(pred, value=_scalar(pred.column, field.type, pred.value))


def _scalar(column: str, kind: pa.DataType, value: Any) -> Scalar:
    """``value`` as a Python value of the column's Arrow type, or ``WrongValueType``."""
    for check, convert, label in _CONVERTERS:
        if check(kind):
            try:
                return convert(value)
            except (TypeError, ValueError):
                raise WrongValueType(column, label, value) from None
    raise WrongValueType(column, f"no comparable ({kind})", value)


def _to_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(value)
    return value


def _to_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(value)
    return float(value)


def _to_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def _to_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(value)
    return value


def _to_date(value: Any) -> date:
    if isinstance(value, datetime):
        raise TypeError(value)
    if isinstance(value, date):
        return value
    return date.fromisoformat(_to_str(value))


def _to_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(_to_str(value))


_CONVERTERS = (
    (pa.types.is_integer, _to_int, "integer"),
    (pa.types.is_floating, _to_float, "number"),
    (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), _to_str, "text"),
    (pa.types.is_boolean, _to_bool, "true/false"),
    (pa.types.is_date, _to_date, "date (YYYY-MM-DD)"),
    (pa.types.is_timestamp, _to_datetime, "timestamp (ISO 8601)"),
)
