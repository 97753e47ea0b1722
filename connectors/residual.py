"""The gateway's part of a query, over a stream of Arrow record batches, in bounded memory.

Filtering and projection go batch by batch. Grouping and ordering go to ``connectors.spill``
(DuckDB under a memory limit, spilling to disk), so neither the number of groups nor an
ordering without a limit can hold the result in memory; past the spill limit the query is
refused (``QueryTooLarge``, 400). The limit is always enforced here, even when the source
was asked to apply it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from connectors._arrow import pa, pc
from connectors.plan import Plan
from connectors.query import Op, Predicate, Query
from connectors.spill import DEFAULT, SpillConfig, finish
from connectors.validate import output_schema

Batches = AsyncIterator[pa.RecordBatch]


async def apply(
    batches: Batches, plan: Plan, query: Query, schema: pa.Schema, spill: SpillConfig = DEFAULT
) -> Batches:
    """``batches`` from the source, with the plan's remaining stages applied.

    ``schema`` is the dataset's; the batches must already be in the source query's columns.
    Grouping and ordering run within ``spill``'s limits.
    """
    stream = batches
    if plan.do_filter:
        stream = _filtered(stream, query.where, plan.source.columns)
    if plan.do_aggregate or plan.do_order:
        source = pa.schema([schema.field(c) for c in plan.source.columns])
        if not plan.do_aggregate:  # the source grouped: its batches are the aggregate's output
            source = output_schema(plan.source, schema)
        stream = finish(stream, _unpushed(query, plan), source, spill)
    try:
        async for batch in _limited(stream, query.limit):
            yield batch
    finally:
        await close(stream)  # now, not when collected: an ordering engine stops with us


async def close(stream: Batches) -> None:
    """Close ``stream`` if it can be closed (an async generator)."""
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


def mask(batch: pa.RecordBatch, where: tuple[Predicate, ...]) -> Any:
    """The boolean mask selecting the rows of ``batch`` that satisfy every predicate."""
    result = None
    for pred in where:
        column = batch.column(pred.column)
        one = _compare(column, pred)
        result = one if result is None else pc.and_(result, one)
    return result


def _compare(column: Any, pred: Predicate) -> Any:
    if pred.op is Op.IS_NULL:
        return pc.is_null(column)
    if pred.op is Op.NOT_NULL:
        return pc.is_valid(column)
    if pred.op in (Op.IN, Op.NOT_IN):
        found = pc.is_in(column, value_set=pa.array(pred.value, type=column.type))
        if pred.op is Op.IN:
            return found
        return pc.and_(pc.is_valid(column), pc.invert(found))  # SQL: NULL NOT IN (...) drops
    value = pa.scalar(pred.value, type=column.type)
    return _COMPARE[pred.op](column, value)


_COMPARE = {
    Op.EQ: pc.equal,
    Op.NE: pc.not_equal,
    Op.LT: pc.less,
    Op.LE: pc.less_equal,
    Op.GT: pc.greater,
    Op.GE: pc.greater_equal,
}


async def _filtered(
    batches: Batches, where: tuple[Predicate, ...], keep: tuple[str, ...]
) -> Batches:
    async for batch in batches:
        chosen = batch.filter(mask(batch, where)) if where else batch
        if chosen.num_rows:
            yield chosen.select(list(keep))


def _unpushed(query: Query, plan: Plan) -> Query:
    """What ``spill.finish`` still has to do: grouping only when the source did not."""
    if plan.do_aggregate:
        return query
    return replace(
        query, columns=query.output_columns, group_by=(), aggregates=(), min_group_size=None
    )


async def _limited(batches: Batches, limit: int | None) -> Batches:
    left = limit
    if left == 0:
        return
    async for batch in batches:
        if left is not None and batch.num_rows >= left:
            yield batch.slice(0, left)
            return
        if left is not None:
            left -= batch.num_rows
        yield batch
