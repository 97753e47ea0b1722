"""Check a query against a dataset's Arrow schema: names exist, values fit, shapes make sense.

Pure. Returns the query with ``columns`` resolved and values coerced to the column's type
(ISO text for dates and timestamps, ints for float columns), so every connector sees the
same, well-typed query. Every value must also be one every source can take
(``connectors.values``: ``ValueRefused`` names the column and the rule), the query may carry
at most ``MAX_PARAMETERS`` values in all (``TooManyValues``: below asyncpg's 32,767 bind
parameters and SQLite's default 32,766) and ``limit`` lies in ``0..MAX_LIMIT``
(``LimitOutOfRange``). Raises those, ``UnknownColumn``, ``WrongValueType`` or ``QueryError``.
"""

from __future__ import annotations

from dataclasses import replace

from connectors._arrow import pa
from connectors.errors import (
    LimitOutOfRange,
    QueryError,
    TooManyValues,
    UnknownColumn,
    WrongValueType,
)
from connectors.query import NULL_OPS, SET_OPS, AggFunc, Aggregate, Predicate, Query
from connectors.values import scalar

MAX_SET = 1000  # values in one in/not_in list
MAX_PARAMETERS = 10_000  # values in one query, all predicates together
MAX_LIMIT = 2**31 - 1  # the largest limit (and k) a query may carry


def validate(query: Query, schema: pa.Schema) -> Query:
    """The query, checked and normalised against ``schema``."""
    names = set(schema.names)
    for column in query.source_columns():
        if column not in names:
            raise UnknownColumn(column)
    query = _resolve_columns(query, schema)
    _check_shape(query, schema)
    _check_budget(query)
    where = tuple(_predicate(p, schema.field(p.column)) for p in query.where)
    return replace(query, where=where)


def parameter_count(query: Query) -> int:
    """The values ``query`` binds: one per comparison, one per member of a set."""
    return sum(_values_in(p) for p in query.where)


def _values_in(pred: Predicate) -> int:
    if pred.op in NULL_OPS:
        return 0
    if pred.op in SET_OPS and isinstance(pred.value, tuple | list):
        return len(pred.value)
    return 1


def _check_budget(query: Query) -> None:
    count = parameter_count(query)
    if count > MAX_PARAMETERS:
        raise TooManyValues(
            f"the query carries {count} values; at most {MAX_PARAMETERS} in one query"
        )


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
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int)):
            raise QueryError("limit and min_group_size must be non-negative integers")
        if bound is not None and not 0 <= bound <= MAX_LIMIT:
            raise LimitOutOfRange(f"limit and min_group_size lie in 0..{MAX_LIMIT}")


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
        if not isinstance(pred.value, tuple | list):
            raise QueryError(f"{pred.op.value} on {pred.column!r} takes a list of values")
        if len(pred.value) > MAX_SET:
            raise TooManyValues(
                f"{pred.op.value} on {pred.column!r} takes at most {MAX_SET} values"
            )
        return replace(pred, value=tuple(scalar(pred.column, field.type, v) for v in pred.value))
    return replace(pred, value=scalar(pred.column, field.type, pred.value))
