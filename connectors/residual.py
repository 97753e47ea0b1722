"""The gateway's part of a query, over a stream of Arrow record batches, in bounded memory.

Filtering and projection go batch by batch. Aggregation keeps partial aggregates per group
and merges them as they grow, so memory follows the number of groups, not of rows. Ordering
with a limit keeps only the best ``limit`` rows; ordering without one has to hold the whole
result (the policy's ``max_rows`` normally bounds it). The limit is always enforced here,
even when the source was asked to apply it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from connectors._arrow import pa, pc
from connectors.aggregate import Aggregator
from connectors.plan import Plan
from connectors.query import Op, Predicate, Query
from connectors.validate import output_schema

Batches = AsyncIterator[pa.RecordBatch]


async def apply(batches: Batches, plan: Plan, query: Query, schema: pa.Schema) -> Batches:
    """``batches`` from the source, with the plan's remaining stages applied.

    ``schema`` is the dataset's; the batches must already be in the source query's columns.
    """
    stream = batches
    if plan.do_filter:
        stream = _filtered(stream, query.where, plan.source.columns)
    if plan.do_aggregate:
        source = pa.schema([schema.field(c) for c in plan.source.columns])
        stream = _aggregated(stream, query, output_schema(query, schema), source)
    if plan.do_order:
        stream = _ordered(stream, query)
    async for batch in _limited(stream, query.limit):
        yield batch


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


async def _aggregated(batches: Batches, query: Query, out: pa.Schema, source: pa.Schema) -> Batches:
    aggregator = Aggregator(query, out, source)
    async for batch in batches:
        aggregator.add(batch)
    for batch in aggregator.result().to_batches():
        yield batch


def sort_keys(query: Query) -> list[tuple[str, str, str]]:
    """pyarrow sort keys for ``query.order_by`` (nulls go last, as the sources are told)."""
    return [
        (o.column, "descending" if o.descending else "ascending", "at_end") for o in query.order_by
    ]


async def _ordered(batches: Batches, query: Query) -> Batches:
    keys = sort_keys(query)
    kept: pa.Table | None = None
    async for batch in batches:
        table = pa.Table.from_batches([batch])
        kept = table if kept is None else pa.concat_tables([kept, table])
        if query.limit is not None:
            kept = kept.sort_by(keys).slice(0, query.limit)
    if kept is not None:
        for batch in kept.sort_by(keys).to_batches():
            yield batch


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
