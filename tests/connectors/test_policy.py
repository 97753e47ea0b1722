"""Narrowing a consumer's query by a permit's DataLimits, and the row-filter grammar."""

from __future__ import annotations

import asyncio

import pytest

from connectors import (
    AggFunc,
    Aggregate,
    AggregateRequired,
    ColumnNotAllowed,
    ConnectorConfigError,
    Op,
    Order,
    PermittedQuery,
    Predicate,
    Query,
    QueryError,
    UnknownColumn,
    WrongValueType,
    narrow,
    parse_row_filter,
)
from connectors.testing import InMemoryConnector
from policies.decision import DataLimits
from tests.connectors.cases import SCHEMA, collect, sample_table

ALLOWED = DataLimits(columns=("id", "qty", "region"), row_filter="region = 'NL'", max_rows=10)


def test_no_columns_asked_gets_the_allowed_ones_filtered_and_capped() -> None:
    query = narrow(Query(), ALLOWED, SCHEMA).query
    assert query.columns == ("id", "region", "qty")
    assert query.where == (Predicate("region", Op.EQ, "NL"),)
    assert query.limit == 10


def test_a_withheld_column_is_refused_wherever_it_appears() -> None:
    for query in (
        Query(columns=("amount",)),
        Query(columns=("id",), where=(Predicate("amount", Op.GT, 1),)),
        Query(group_by=("active",), aggregates=(Aggregate(AggFunc.COUNT),)),
        Query(aggregates=(Aggregate(AggFunc.SUM, "amount"),)),
    ):
        with pytest.raises(ColumnNotAllowed) as caught:
            narrow(query, ALLOWED, SCHEMA)
        assert caught.value.code == "column_not_allowed"


def test_an_unknown_column_is_a_query_error_naming_it_before_any_policy_check() -> None:
    with pytest.raises(UnknownColumn) as caught:
        narrow(Query(columns=("nope",)), ALLOWED, SCHEMA)
    assert caught.value.column == "nope"
    assert caught.value.code == "unknown_column"


@pytest.mark.parametrize(
    ("column", "value"),
    [("qty", "3"), ("qty", True), ("qty", 1.5), ("region", 3), ("day", "yesterday"), ("active", 1)],
)
def test_a_value_of_the_wrong_type_names_the_column(column: str, value: object) -> None:
    query = Query(columns=("id",), where=(Predicate(column, Op.EQ, value),))  # type: ignore[arg-type]
    with pytest.raises(WrongValueType) as caught:
        narrow(query, DataLimits(), SCHEMA)
    assert caught.value.column == column


def test_malformed_shapes_are_query_errors() -> None:
    for query in (
        Query(columns=("id",), group_by=("id",)),
        Query(columns=("id",), aggregates=(Aggregate(AggFunc.COUNT),)),
        Query(columns=("id",), order_by=(Order("qty"),)),
        Query(aggregates=(Aggregate(AggFunc.SUM),)),
        Query(aggregates=(Aggregate(AggFunc.AVG, "region"),)),
        Query(columns=("id",), limit=-1),
        Query(columns=("id",), where=(Predicate("id", Op.IN, 3),)),
    ):
        with pytest.raises(QueryError):
            narrow(query, DataLimits(), SCHEMA)


def test_a_k_threshold_allows_aggregates_only_and_drops_small_groups() -> None:
    limits = DataLimits(min_group_size=50)
    with pytest.raises(AggregateRequired):
        narrow(Query(columns=("id",)), limits, SCHEMA)
    query = Query(group_by=("qty",), aggregates=(Aggregate(AggFunc.COUNT),))
    rows = asyncio.run(collect(InMemoryConnector("s", sample_table()), query, limits))
    assert rows == []  # 240 rows over 9 qty values: every group is under 50
    rows = asyncio.run(
        collect(InMemoryConnector("s", sample_table()), query, DataLimits(min_group_size=27))
    )
    assert sorted(r["qty"] for r in rows) == [0, 1, 2, 3, 4, 5]


def test_the_consumer_limit_never_exceeds_max_rows() -> None:
    assert narrow(Query(limit=500), DataLimits(max_rows=10), SCHEMA).query.limit == 10
    assert narrow(Query(limit=5), DataLimits(max_rows=10), SCHEMA).query.limit == 5


def test_a_permitted_query_is_minted_by_narrow_only() -> None:
    with pytest.raises(TypeError):
        PermittedQuery(Query())


def test_the_policy_filter_may_use_a_column_the_consumer_cannot_see() -> None:
    limits = DataLimits(columns=("id",), row_filter="region IN ('NL', 'BE') AND qty >= 2")
    rows = asyncio.run(collect(InMemoryConnector("s", sample_table()), Query(), limits))
    assert rows
    assert all(set(r) == {"id"} for r in rows)
    assert all(r["id"] % 5 in (0, 1) and r["id"] % 9 >= 2 for r in rows)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("region = 'NL'", (Predicate("region", Op.EQ, "NL"),)),
        ("name <> 'O''Brien'", (Predicate("name", Op.NE, "O'Brien"),)),
        ("a >= -2.5 and b < 3", (Predicate("a", Op.GE, -2.5), Predicate("b", Op.LT, 3))),
        ("x IS NULL AND y is not null", (Predicate("x", Op.IS_NULL), Predicate("y", Op.NOT_NULL))),
        (
            "k NOT IN (1, 2) AND f = TRUE",
            (Predicate("k", Op.NOT_IN, (1, 2)), Predicate("f", Op.EQ, True)),
        ),
    ],
)
def test_row_filters_parse(text: str, expected: tuple[Predicate, ...]) -> None:
    assert parse_row_filter(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "region = 'NL' OR 1 = 1",
        "region = NL",
        "(a = 1)",
        "a = 1 AND",
        "a IN (1",
        "lower(a) = 'x'",
        "a == 1",
    ],
)
def test_anything_else_in_a_row_filter_fails_closed(text: str) -> None:
    with pytest.raises(ConnectorConfigError):
        parse_row_filter(text)


def test_a_row_filter_on_an_unknown_column_is_the_providers_error() -> None:
    with pytest.raises(ConnectorConfigError):
        narrow(Query(), DataLimits(row_filter="nope = 1"), SCHEMA)
