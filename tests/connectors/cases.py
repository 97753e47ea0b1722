"""Sample data and the query cases every connector must answer like the reference."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pyarrow as pa

from connectors import (
    AggFunc,
    Aggregate,
    Connector,
    Op,
    Order,
    Predicate,
    Query,
    narrow,
)
from policies.decision import DataLimits
from tests.connectors.reference import Row, comparable, evaluate

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("region", pa.string()),
        ("amount", pa.float64()),
        ("qty", pa.int64()),
        ("day", pa.date32()),
        ("active", pa.bool_()),
    ]
)
REGIONS = ["NL", "BE", "DE", None, "FR"]


def sample_rows(n: int = 240) -> list[Row]:
    """Deterministic rows with nulls, duplicates and every type."""
    return [
        {
            "id": i,
            "region": REGIONS[i % 5],
            "amount": None if i % 7 == 0 else round((i * 37 % 101) / 4, 2),
            "qty": i % 9,
            "day": date(2024, 1, 1) + timedelta(days=i % 60),
            "active": i % 3 != 0,
        }
        for i in range(n)
    ]


def sample_table(n: int = 240) -> pa.Table:
    return pa.Table.from_pylist(sample_rows(n), schema=SCHEMA)


def P(column: str, op: str, value: Any = None) -> Predicate:  # noqa: N802 (reads like a literal)
    return Predicate(column, Op(op), value)


COUNT_ROWS = Aggregate(AggFunc.COUNT)
CASES: dict[str, Query] = {
    "all": Query(),
    "project_eq": Query(columns=("id", "region"), where=(P("region", "eq", "NL"),)),
    "range_and": Query(
        columns=("id", "amount", "qty"), where=(P("amount", "gt", 10.5), P("qty", "le", 5))
    ),
    "in": Query(columns=("id", "region"), where=(P("region", "in", ("NL", "BE")),)),
    "not_in_drops_nulls": Query(columns=("id",), where=(P("region", "not_in", ("NL", "BE")),)),
    "is_null": Query(columns=("id",), where=(P("amount", "is_null"),)),
    "not_null_ne": Query(columns=("id",), where=(P("region", "not_null"), P("qty", "ne", 3))),
    "date_from_text": Query(columns=("id", "day"), where=(P("day", "ge", "2024-02-15"),)),
    "bool": Query(columns=("id",), where=(P("active", "eq", False), P("qty", "lt", 4))),
    "group": Query(
        group_by=("region",),
        aggregates=(
            COUNT_ROWS,
            Aggregate(AggFunc.COUNT, "amount"),
            Aggregate(AggFunc.SUM, "qty"),
            Aggregate(AggFunc.AVG, "amount"),
            Aggregate(AggFunc.MIN, "day"),
            Aggregate(AggFunc.MAX, "amount", alias="top"),
        ),
        order_by=(Order("region"),),
    ),
    "global": Query(aggregates=(COUNT_ROWS, Aggregate(AggFunc.SUM, "amount"))),
    "global_empty": Query(
        aggregates=(COUNT_ROWS, Aggregate(AggFunc.SUM, "qty")), where=(P("qty", "gt", 100),)
    ),
    "k_threshold": Query(
        group_by=("region", "active"),
        aggregates=(COUNT_ROWS, Aggregate(AggFunc.SUM, "qty")),
        where=(P("qty", "ge", 2),),
        min_group_size=30,
    ),
    "order_limit": Query(
        columns=("id", "amount"),
        order_by=(Order("amount", descending=True), Order("id")),
        limit=7,
    ),
    "order_nulls_last": Query(columns=("id", "region"), order_by=(Order("region"), Order("id"))),
    "group_order_desc_limit": Query(
        group_by=("qty",),
        aggregates=(Aggregate(AggFunc.SUM, "amount", alias="s"),),
        order_by=(Order("qty", descending=True),),
        limit=4,
    ),
    "limit_zero": Query(columns=("id",), limit=0),
    "limit_only": Query(columns=("id", "qty"), where=(P("qty", "eq", 2),), limit=5),
}


async def collect(
    connector: Connector, query: Query, limits: DataLimits | None = None
) -> list[Row]:
    try:
        schema = await connector.schema()
        permitted = narrow(query, limits or DataLimits(), schema)
        rows: list[Row] = []
        async for batch in connector.stream(permitted):
            rows.extend(batch.to_pylist())
        return rows
    finally:
        await connector.aclose()  # in this event loop: asyncpg closes connections in it


def check_case(connector: Connector, name: str, rows: list[Row]) -> None:
    """``connector`` answers case ``name`` exactly as the reference does over ``rows``."""
    query = CASES[name]
    got = asyncio.run(collect(connector, query))
    columns = () if query.aggregates else query.columns or tuple(SCHEMA.names)
    full = replace(query, columns=columns)
    want = evaluate(full, rows)
    if query.limit is not None and not query.order_by:
        unlimited = evaluate(replace(full, limit=None), rows)
        assert len(got) == min(query.limit, len(unlimited))
        assert set(comparable(got, ordered=False)) <= set(comparable(unlimited, ordered=False))
        return
    assert comparable(got, bool(query.order_by)) == comparable(want, bool(query.order_by))
