"""Build the SELECT for a pushed-down query: SQLAlchemy Core, bound parameters only. Pure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from connectors._arrow import pa
from connectors.query import AggFunc, Aggregate, Op, Predicate, Query
from connectors.sql_types import sql_type
from connectors.validate import output_schema

if TYPE_CHECKING:
    from connectors.sql import SqlConfig


def build_select(
    query: Query, config: SqlConfig, columns: dict[str, Any], schema: pa.Schema, dialect: str
) -> tuple[sa.Select[Any], pa.Schema]:
    """The statement for ``query`` and the Arrow schema of its rows."""
    table = sa.table(
        config.table,
        *(sa.column(n, columns[n]) for n in schema.names),
        schema=config.schema,
    )
    read = {n: _readable(table.c[n], schema.field(n).type, columns[n]) for n in schema.names}
    out = output_schema(query, schema)
    if query.is_aggregate:
        exprs = {g: read[g] for g in query.group_by}
        exprs |= {a.name: _aggregate(a, read, out.field(a.name).type) for a in query.aggregates}
    else:
        exprs = {c: read[c] for c in query.columns}
    stmt = sa.select(*(e.label(n) for n, e in exprs.items())).select_from(table)
    stmt = stmt.where(*(_predicate(p, read[p.column]) for p in query.where))
    if query.is_aggregate:
        stmt = stmt.group_by(*(read[g] for g in query.group_by))
        if query.min_group_size:
            stmt = stmt.having(sa.func.count() >= query.min_group_size)
    for order in query.order_by:
        stmt = stmt.order_by(
            _order(exprs[order.column], out.field(order.column), order.descending, dialect)
        )
    if query.limit is not None:
        stmt = stmt.limit(query.limit)
    return stmt, out


def _readable(column: Any, arrow: Any, declared: Any) -> Any:
    """Numeric columns are read as floats; everything else as it is."""
    if pa.types.is_floating(arrow) and not isinstance(declared, sa.Float):
        return sa.cast(column, sa.Float())
    return column


def _aggregate(agg: Aggregate, read: dict[str, Any], arrow: Any) -> Any:
    if agg.column is None:
        return sa.cast(sa.func.count(), sa.BigInteger())
    column = read[agg.column]
    functions: dict[AggFunc, Any] = {
        AggFunc.COUNT: sa.func.count,
        AggFunc.SUM: sa.func.sum,
        AggFunc.AVG: sa.func.avg,
        AggFunc.MIN: sa.func.min,
        AggFunc.MAX: sa.func.max,
    }
    call = functions[agg.func](column)
    if agg.func in (AggFunc.MIN, AggFunc.MAX):
        return call
    return sa.cast(call, sql_type(arrow))


def _predicate(pred: Predicate, column: Any) -> Any:
    if pred.op is Op.IS_NULL:
        return column.is_(None)
    if pred.op is Op.NOT_NULL:
        return column.is_not(None)
    if pred.op is Op.IN:
        return column.in_(list(pred.value))  # type: ignore[arg-type]
    if pred.op is Op.NOT_IN:
        return column.not_in(list(pred.value))  # type: ignore[arg-type]
    compare = {
        Op.EQ: column.__eq__,
        Op.NE: column.__ne__,
        Op.LT: column.__lt__,
        Op.LE: column.__le__,
        Op.GT: column.__gt__,
        Op.GE: column.__ge__,
    }[pred.op]
    return compare(pred.value)


def _order(expr: Any, field: Any, descending: bool, dialect: str) -> Any:
    if dialect == "postgresql" and pa.types.is_string(field.type):
        expr = sa.collate(expr, "C")  # byte order, as SQLite and Arrow sort text
    return sa.nulls_last(expr.desc() if descending else expr.asc())
