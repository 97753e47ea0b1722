"""Consumer values checked against the column's exact Arrow type and the sources' limits.

Every hostile value is refused by ``validate`` as a ``QueryError`` naming the column and the
rule, before any source sees it (issue 12).
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors import Op, Predicate, Query, QueryError
from connectors._arrow import pa
from connectors.files import FileFormat, FilesConfig, FilesConnector
from connectors.validate import MAX_LIMIT, MAX_PARAMETERS, MAX_SET, validate
from tests.connectors.cases import collect

INTEGER_TYPES = {
    "i8": pa.int8(),
    "i16": pa.int16(),
    "i32": pa.int32(),
    "i64": pa.int64(),
    "u8": pa.uint8(),
    "u16": pa.uint16(),
    "u32": pa.uint32(),
    "u64": pa.uint64(),
}
SCHEMA = pa.schema(
    [
        *INTEGER_TYPES.items(),
        ("f64", pa.float64()),
        ("f32", pa.float32()),
        ("text", pa.string()),
        ("big_text", pa.large_string()),
        ("day", pa.date32()),
        ("naive", pa.timestamp("us")),
        ("aware", pa.timestamp("us", tz="UTC")),
        ("naive_ns", pa.timestamp("ns")),
        ("local", pa.timestamp("ms", tz="Europe/Amsterdam")),
        ("offset", pa.timestamp("s", tz="+02:00")),
        ("odd_zone", pa.timestamp("us", tz="Not/AZone")),
    ]
)


def _where(column: str, value: Any, op: Op = Op.EQ) -> Query:
    return Query(columns=("i64",), where=(Predicate(column, op, value),))


def _refused(query: Query, code: str, column: str | None = None) -> QueryError:
    with pytest.raises(QueryError) as caught:
        validate(query, SCHEMA)
    assert caught.value.code == code, caught.value
    if column is not None:
        assert getattr(caught.value, "column", None) == column
    return caught.value


def _bounds(kind: pa.DataType) -> tuple[int, int]:
    bits = kind.bit_width
    if pa.types.is_signed_integer(kind):
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


@pytest.mark.parametrize("column", INTEGER_TYPES)
def test_integers_at_the_bounds_of_their_width_pass(column: str) -> None:
    low, high = _bounds(INTEGER_TYPES[column])
    for value in (low, high):
        assert validate(_where(column, value), SCHEMA).where[0].value == value


@pytest.mark.parametrize("column", INTEGER_TYPES)
def test_integers_beyond_the_width_are_refused_naming_column_and_rule(column: str) -> None:
    low, high = _bounds(INTEGER_TYPES[column])
    for value in (low - 1, high + 1, 2**70, -(2**70)):
        error = _refused(_where(column, value), "value_refused", column)
        assert getattr(error, "rule", None) == "integer-range"
        assert column in error.reason


@given(st.integers(min_value=-(2**80), max_value=2**80))
def test_int32_accepts_exactly_the_int32_range(value: int) -> None:
    query = _where("i32", value)
    if -(2**31) <= value < 2**31:
        assert validate(query, SCHEMA).where[0].value == value
    else:
        _refused(query, "value_refused", "i32")


def test_set_members_are_checked_one_by_one() -> None:
    _refused(_where("i8", (1, 2, 300), Op.NOT_IN), "value_refused", "i8")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("column", ["f64", "f32"])
def test_nan_and_infinity_are_refused(column: str, value: float) -> None:
    error = _refused(_where(column, value), "value_refused", column)
    assert getattr(error, "rule", None) == "finite-number"


@pytest.mark.parametrize(
    ("column", "value"),
    [("f32", 1e39), ("f32", -1e39), pytest.param("f64", 10**400, id="f64-10**400")],
)
def test_numbers_beyond_the_float_width_are_refused(column: str, value: float) -> None:
    error = _refused(_where(column, value), "value_refused", column)
    assert getattr(error, "rule", None) == "number-range"


def test_finite_numbers_within_the_width_pass() -> None:
    assert validate(_where("f32", 3.0e38), SCHEMA).where[0].value == 3.0e38
    assert validate(_where("f64", 2**70), SCHEMA).where[0].value == float(2**70)


@pytest.mark.parametrize("column", ["text", "big_text"])
@pytest.mark.parametrize(
    ("value", "rule"), [("a\x00b", "text-nul"), ("\ud800", "text-utf8"), ("x\udfffy", "text-utf8")]
)
def test_text_with_nul_or_a_lone_surrogate_is_refused(column: str, value: str, rule: str) -> None:
    error = _refused(_where(column, value), "value_refused", column)
    assert getattr(error, "rule", None) == rule
    assert "\x00" not in error.reason
    error.reason.encode()  # the reason itself is safe to send


@given(st.text())
def test_text_passes_exactly_when_it_is_nul_free_utf8(value: str) -> None:
    query = _where("text", value)
    try:
        value.encode("utf-8")
        encodable = "\x00" not in value
    except UnicodeEncodeError:
        encodable = False
    if encodable:
        assert validate(query, SCHEMA).where[0].value == value
    else:
        _refused(query, "value_refused", "text")


@pytest.mark.parametrize(
    "value", ["2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00Z", datetime(2026, 1, 1, tzinfo=UTC)]
)
def test_a_naive_column_refuses_aware_values(value: object) -> None:
    error = _refused(_where("naive", value), "value_refused", "naive")
    assert getattr(error, "rule", None) == "timestamp-timezone"


@pytest.mark.parametrize("value", ["2026-01-01T00:00:00", datetime(2026, 1, 1)])
def test_an_aware_column_refuses_naive_values(value: object) -> None:
    error = _refused(_where("aware", value), "value_refused", "aware")
    assert getattr(error, "rule", None) == "timestamp-timezone"


def test_aware_values_are_converted_to_the_columns_zone() -> None:
    plus2 = timezone(timedelta(hours=2))
    value = validate(_where("aware", "2026-01-01T02:00:00+02:00"), SCHEMA).where[0].value
    assert value == datetime(2026, 1, 1, tzinfo=UTC)
    assert isinstance(value, datetime)
    assert value.utcoffset() == timedelta(0)
    assert value.tzinfo is not plus2


@pytest.mark.parametrize("value", ["1600-01-01T00:00:00", "2300-01-01T00:00:00"])
def test_timestamps_outside_the_unit_range_are_refused(value: str) -> None:
    error = _refused(_where("naive_ns", value), "value_refused", "naive_ns")
    assert getattr(error, "rule", None) == "timestamp-range"
    assert validate(_where("naive", value), SCHEMA).where[0].value == datetime.fromisoformat(value)


def test_dates_across_the_python_range_pass_and_impossible_ones_are_wrong_type() -> None:
    assert validate(_where("day", "0001-01-01"), SCHEMA).where[0].value == date(1, 1, 1)
    assert validate(_where("day", "9999-12-31"), SCHEMA).where[0].value == date(9999, 12, 31)
    _refused(_where("day", "10000-01-01"), "wrong_value_type", "day")


def test_the_parameter_budget_counts_every_value_of_the_query() -> None:
    values = tuple(range(MAX_SET))
    per_query = MAX_PARAMETERS // MAX_SET
    fits = Query(where=tuple(Predicate("i64", Op.NOT_IN, values) for _ in range(per_query)))
    assert len(validate(fits, SCHEMA).where) == per_query
    over = Query(where=(*fits.where, Predicate("i64", Op.EQ, 1)))
    error = _refused(over, "too_many_values")
    assert str(MAX_PARAMETERS) in error.reason


def test_one_list_holds_at_most_max_set_values() -> None:
    error = _refused(_where("i64", tuple(range(MAX_SET + 1)), Op.IN), "too_many_values")
    assert str(MAX_SET) in error.reason


@given(st.floats(allow_nan=True, allow_infinity=True, width=64))
def test_float32_takes_exactly_the_finite_values_within_its_width(value: float) -> None:
    query = _where("f32", value)
    if math.isfinite(value) and abs(value) <= 3.4028234663852886e38:
        assert validate(query, SCHEMA).where[0].value == value
    else:
        _refused(query, "value_refused", "f32")


OFFSETS = st.builds(
    timezone,
    st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23)),
)


@pytest.mark.parametrize("column", ["local", "offset", "odd_zone"])
def test_any_zone_of_an_aware_column_takes_aware_values(column: str) -> None:
    value = validate(_where(column, "2026-06-01T12:00:00+02:00"), SCHEMA).where[0].value
    assert value == datetime(2026, 6, 1, 10, tzinfo=UTC)
    assert isinstance(value, datetime)
    zone = SCHEMA.field(column).type.tz if column != "odd_zone" else "UTC"
    assert pa.scalar(value).type.tz == zone  # pyarrow compares it with the column
    _refused(_where(column, "2026-06-01T12:00:00"), "value_refused", column)


@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 1, 1), timezones=OFFSETS))
def test_an_aware_value_keeps_its_instant_in_the_columns_zone(value: datetime) -> None:
    """Consumers send ISO 8601 text, so their values carry fixed offsets."""
    checked = validate(_where("aware", value), SCHEMA).where[0].value
    assert isinstance(checked, datetime)
    assert checked == value
    assert checked.utcoffset() == timedelta(0)


def test_the_issue_query_forty_not_in_lists_of_a_thousand_is_refused() -> None:
    values = tuple(range(1000))
    query = Query(where=tuple(Predicate("i32", Op.NOT_IN, values) for _ in range(40)))
    _refused(query, "too_many_values")


@pytest.mark.parametrize("limit", [MAX_LIMIT + 1, 2**31, 2**63, 2**70])
def test_a_limit_beyond_the_range_is_refused(limit: int) -> None:
    _refused(Query(columns=("i64",), limit=limit), "limit_out_of_range")


@pytest.mark.parametrize("limit", [0, 1, MAX_LIMIT])
def test_a_limit_within_the_range_passes(limit: int) -> None:
    assert validate(Query(columns=("i64",), limit=limit), SCHEMA).limit == limit


def test_a_policys_huge_max_rows_caps_at_the_limit_range_and_a_huge_k_is_its_error() -> None:
    """The policy's bounds are the provider's: never a consumer's 400 (issue 12)."""
    from connectors import AggFunc, Aggregate, ConnectorConfigError, narrow  # noqa: PLC0415 - this test only
    from policies.decision import DataLimits  # noqa: PLC0415 - this test only

    capped = narrow(Query(columns=("i64",)), DataLimits(max_rows=10**12), SCHEMA)
    assert capped.query.limit == MAX_LIMIT
    with pytest.raises(ConnectorConfigError):
        narrow(
            Query(aggregates=(Aggregate(AggFunc.COUNT),)), DataLimits(min_group_size=2**40), SCHEMA
        )


def test_a_files_column_in_another_zone_answers_an_aware_value(tmp_path: Path) -> None:
    """pyarrow compares timestamps of one zone only: the value arrives in the column's."""
    kind = pa.timestamp("ms", tz="Europe/Amsterdam")
    moment = datetime(2026, 6, 1, 10, tzinfo=UTC)
    table = pa.table({"id": [1, 2], "at": pa.array([moment, moment + timedelta(hours=1)], kind)})
    pq.write_table(table, tmp_path / "t.parquet")
    connector = FilesConnector("t", FilesConfig(tmp_path, "t.parquet", FileFormat.PARQUET))
    query = Query(columns=("id",), where=(Predicate("at", Op.EQ, "2026-06-01T12:00:00+02:00"),))
    assert asyncio.run(collect(connector, query)) == [{"id": 1}]
