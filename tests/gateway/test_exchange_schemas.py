"""The consumer's query as JSON and as URL parameters (gateway/exchange/schemas.py).

``QueryIn`` and its limits, the connector query it becomes, ``where=`` parameters read
into predicates (numbers and booleans typed, everything else text), the CLI's ``--agg``,
and each refusal's words. The same through the API: test_exchange.py (over mTLS).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from connectors import AggFunc, Aggregate, Op, Order, Predicate, Query
from gateway.exchange.schemas import (
    WHERE_SCHEMA,
    AggregateIn,
    PredicateIn,
    QueryIn,
    parse_aggregates,
    parse_where,
)

OPS = "eq, ne, lt, le, gt, ge, in, not_in, is_null, not_null"


def test_a_query_becomes_the_connector_query() -> None:
    body = QueryIn.model_validate({
        "columns": ["machine", "temp_c"],
        "where": [{"column": "temp_c", "op": "gt", "value": 70},
                  {"column": "site", "op": "in", "value": ["s1", "s2"]},
                  {"column": "owner", "op": "is_null"}],
        "group_by": ["machine"],
        "aggregates": [{"func": "avg", "column": "temp_c", "alias": "mean"},
                       {"func": "count"}],
        "order_by": [{"column": "mean", "descending": True}, {"column": "machine"}],
        "limit": 10,
        "format": "csv",
    })  # fmt: skip
    assert body.format == "csv"
    assert body.to_query() == Query(
        columns=("machine", "temp_c"),
        where=(Predicate("temp_c", Op.GT, 70), Predicate("site", Op.IN, ("s1", "s2")),
               Predicate("owner", Op.IS_NULL, None)),
        group_by=("machine",),
        aggregates=(Aggregate(AggFunc.AVG, "temp_c", "mean"), Aggregate(AggFunc.COUNT, None, "")),
        order_by=(Order("mean", True), Order("machine", False)),
        limit=10,
    )  # fmt: skip


def test_an_empty_query_is_every_column_as_json_lines() -> None:
    body = QueryIn()
    assert body.format == "jsonl"
    assert body.to_query() == Query(
        columns=(), where=(), group_by=(), aggregates=(), order_by=(), limit=None
    )


@pytest.mark.parametrize(
    "field",
    [{"columns": ["a"] * 257}, {"where": [{"column": "a", "op": "is_null"}] * 65},
     {"group_by": ["a"] * 33}, {"aggregates": [{"func": "count"}] * 33},
     {"order_by": [{"column": "a"}] * 17}, {"limit": 0}, {"limit": 100_000_001},
     {"format": "xml"}, {"other": 1}],
)  # fmt: skip
def test_a_query_past_its_limits_is_refused(field: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        QueryIn.model_validate(field)


def test_a_query_at_its_limits_is_read() -> None:
    body = QueryIn.model_validate({
        "columns": ["a"] * 256, "where": [{"column": "a", "op": "is_null"}] * 64,
        "group_by": ["a"] * 32, "aggregates": [{"func": "count"}] * 32,
        "order_by": [{"column": "a"}] * 16, "limit": 100_000_000,
    })  # fmt: skip
    assert body.limit == 100_000_000
    assert QueryIn(limit=1).limit == 1


def test_names_and_aliases_have_their_limits() -> None:
    PredicateIn(column="c" * 128, op=Op.EQ, value=1)
    with pytest.raises(ValidationError):
        PredicateIn(column="c" * 129, op=Op.EQ, value=1)
    AggregateIn(func=AggFunc.SUM, column="c" * 128, alias="A_z9" * 32)
    for bad in ({"column": "c" * 129}, {"alias": "a" * 129}, {"alias": "a-b"}, {"alias": "é"}):
        with pytest.raises(ValidationError):
            AggregateIn.model_validate({"func": "sum", "column": "c", **bad})
    with pytest.raises(ValidationError):
        PredicateIn.model_validate({"column": "c", "op": "eq", "value": 1, "x": 2})


# --- where= URL parameters ------------------------------------------------------------------


def test_the_where_schema_names_every_operator() -> None:
    assert WHERE_SCHEMA == {
        "type": "string",
        "pattern": "^[^,]{1,128},(?:eq|ne|lt|le|gt|ge|in|not_in|is_null|not_null)(?:,.*)?$",
    }


@pytest.mark.parametrize(
    ("text", "predicate"),
    [("temp_c,gt,70", PredicateIn(column="temp_c", op=Op.GT, value=70)),
     ("temp_c,le,1.5", PredicateIn(column="temp_c", op=Op.LE, value=1.5)),
     ("on,eq,true", PredicateIn(column="on", op=Op.EQ, value=True)),
     ("on,eq,false", PredicateIn(column="on", op=Op.EQ, value=False)),
     ("name,eq,X200", PredicateIn(column="name", op=Op.EQ, value="X200")),
     ("name,eq,", PredicateIn(column="name", op=Op.EQ, value="")),
     ("name,eq,a,b", PredicateIn(column="name", op=Op.EQ, value="a,b")),
     ("name,ne,null", PredicateIn(column="name", op=Op.NE, value="null")),
     ("name,eq,\"x\"", PredicateIn(column="name", op=Op.EQ, value="\"x\"")),
     ("name,eq,[1]", PredicateIn(column="name", op=Op.EQ, value="[1]")),
     ("name,eq,[[1]]", PredicateIn(column="name", op=Op.EQ, value="[[1]]")),
     ("name,eq,{}", PredicateIn(column="name", op=Op.EQ, value="{}")),
     ("name,in,a|2|true", PredicateIn(column="name", op=Op.IN, value=["a", 2, True])),
     ("name,not_in,a", PredicateIn(column="name", op=Op.NOT_IN, value=["a"])),
     ("name,in,", PredicateIn(column="name", op=Op.IN, value=[""])),
     ("name,is_null", PredicateIn(column="name", op=Op.IS_NULL, value=None)),
     ("name,not_null,7", PredicateIn(column="name", op=Op.NOT_NULL, value=None))],
)  # fmt: skip
def test_a_where_parameter_is_read(text: str, predicate: PredicateIn) -> None:
    [read] = parse_where([text])
    assert read == predicate
    assert type(read.value) is type(predicate.value)


def test_several_where_parameters_in_order() -> None:
    assert parse_where(["a,eq,1", "b,is_null"]) == [
        PredicateIn(column="a", op=Op.EQ, value=1), PredicateIn(column="b", op=Op.IS_NULL),
    ]  # fmt: skip
    assert parse_where([]) == []


@pytest.mark.parametrize(
    ("text", "words"),
    [("temp_c", "where='temp_c': use column,op,value"),
     ("", "where='': use column,op,value"),
     (",eq,1", "where=',eq,1': use column,op,value"),
     ("a,,1", "where='a,,1': use column,op,value"),
     ("a,like,x", f"where='a,like,x': unknown operator 'like'; use one of {OPS}"),
     ("a,EQ,1", f"where='a,EQ,1': unknown operator 'EQ'; use one of {OPS}"),
     ("c" * 129 + ",eq,1", f"where='{'c' * 129},eq,1': String should have at most 128 characters")],
)  # fmt: skip
def test_a_where_parameter_that_does_not_parse_is_named(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)) as refused:
        parse_where(["a,eq,1", text])
    assert str(refused.value) == words


# --- --agg ----------------------------------------------------------------------------------


def test_aggregates_are_read() -> None:
    assert parse_aggregates(["count", "avg:temp_c", "count:machine", "max:x"]) == [
        AggregateIn(func=AggFunc.COUNT), AggregateIn(func=AggFunc.AVG, column="temp_c"),
        AggregateIn(func=AggFunc.COUNT, column="machine"),
        AggregateIn(func=AggFunc.MAX, column="x"),
    ]  # fmt: skip
    assert parse_aggregates(["count:"]) == [AggregateIn(func=AggFunc.COUNT, column=None)]
    assert parse_aggregates([]) == []


@pytest.mark.parametrize(
    ("text", "words"),
    [("median:x", "--agg 'median:x': unknown function 'median'; use one of count, sum, min, "
                  "max, avg"),
     ("COUNT", "--agg 'COUNT': unknown function 'COUNT'; use one of count, sum, min, max, avg"),
     ("sum", "--agg 'sum': sum needs a column (sum:COLUMN)"),
     ("avg:", "--agg 'avg:': avg needs a column (avg:COLUMN)"),
     ("min:" + "c" * 129, f"--agg 'min:{'c' * 129}': String should have at most 128 characters")],
)  # fmt: skip
def test_an_aggregate_that_does_not_parse_is_named(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)) as refused:
        parse_aggregates(["count", text])
    assert str(refused.value) == words
