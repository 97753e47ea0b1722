"""Hostile values against real SQLite and PostgreSQL tables (issue 12).

The schema tells the truth about the table's integer widths (an ``integer`` column on
PostgreSQL is int32), so validation refuses what the database would; and what the database
still refuses because of the query (a provider declared a wider type, a driver limit) is the
query's fault, 400, never "source unavailable".
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from connectors import (
    ConnectorError,
    LimitOutOfRange,
    Op,
    Predicate,
    Query,
    SourceRefusedQuery,
    SourceUnavailable,
    TooManyValues,
    ValueRefused,
)
from connectors.sql import SqlConfig, SqlConnector, classify
from tests.connectors.cases import collect
from tests.support.databases import postgres_database

META = sa.MetaData()
WIDTHS = sa.Table(
    "widths",
    META,
    sa.Column("small", sa.SmallInteger),
    sa.Column("normal", sa.Integer),
    sa.Column("big", sa.BigInteger),
    sa.Column("label", sa.Text),
    sa.Column("naive", sa.DateTime(timezone=False)),
    sa.Column("aware", sa.DateTime(timezone=True)),
    sa.Column("single", sa.REAL),
    sa.Column("double", sa.Double),
)
ROW = {
    "small": 1,
    "normal": 2,
    "big": 3,
    "label": "a",
    "naive": datetime(2026, 1, 1),
    "aware": datetime(2026, 1, 1, tzinfo=UTC),
    "single": 1.5,
    "double": 2.5,
}


async def _load(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    async with engine.begin() as conn:
        await conn.run_sync(META.create_all)
        await conn.execute(WIDTHS.insert(), [ROW])
    await engine.dispose()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        found = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('widths') / 'data.db'}"
        asyncio.run(_load(found))
        yield found
        return
    with postgres_database() as found:
        asyncio.run(_load(found))
        yield found


def _connector(url: str, types: tuple[tuple[str, str], ...] = ()) -> SqlConnector:
    engine = create_async_engine(url, poolclass=NullPool)
    return SqlConnector("widths", engine, SqlConfig("widths", types=types))


def _run(url: str, query: Query, types: tuple[tuple[str, str], ...] = ()) -> list[dict[str, Any]]:
    return asyncio.run(collect(_connector(url, types), query))


def _where(column: str, value: Any, op: Op = Op.EQ) -> Query:
    return Query(columns=("big",), where=(Predicate(column, op, value),))


def test_postgresql_integer_widths_are_the_schema(url: str) -> None:
    connector = _connector(url)

    async def main() -> dict[str, str]:
        try:
            return {f.name: str(f.type) for f in await connector.schema()}
        finally:
            await connector.aclose()

    types = asyncio.run(main())
    if url.startswith("postgresql"):
        assert (types["small"], types["normal"], types["big"]) == ("int16", "int32", "int64")
    else:  # SQLite stores any integer in up to 8 bytes, whatever the declared type
        assert (types["small"], types["normal"], types["big"]) == ("int64", "int64", "int64")


def test_postgresql_real_is_float32(url: str) -> None:
    connector = _connector(url)

    async def main() -> dict[str, str]:
        try:
            return {f.name: str(f.type) for f in await connector.schema()}
        finally:
            await connector.aclose()

    types = asyncio.run(main())
    if url.startswith("postgresql"):
        assert (types["single"], types["double"]) == ("float", "double")
    else:  # SQLite stores every REAL in 8 bytes
        assert (types["single"], types["double"]) == ("double", "double")
    query = Query(columns=("single", "double"), where=(Predicate("single", Op.EQ, 1.5),))
    assert _run(url, query) == [{"single": 1.5, "double": 2.5}]


def test_a_float_beyond_float32_is_refused_on_a_postgresql_real(url: str) -> None:
    query = Query(columns=("big",), where=(Predicate("single", Op.GT, 1e39),))
    if url.startswith("sqlite"):
        assert _run(url, query) == []
        return
    with pytest.raises(ValueRefused) as caught:
        _run(url, query)
    assert (caught.value.column, caught.value.rule) == ("single", "number-range")


@pytest.mark.parametrize(
    ("column", "value", "rule"),
    [
        ("big", 2**70, "integer-range"),
        ("big", 2**63, "integer-range"),
        ("label", "a\x00b", "text-nul"),
        ("label", "\ud800", "text-utf8"),
        ("naive", "2026-01-01T00:00:00+00:00", "timestamp-timezone"),
        ("aware", "2026-01-01T00:00:00", "timestamp-timezone"),
    ],
)
def test_hostile_values_are_refused_before_the_database(
    url: str, column: str, value: Any, rule: str
) -> None:
    if column == "aware" and url.startswith("sqlite"):
        value = "2026-01-01T00:00:00+00:00"  # SQLite has no zone-aware type: the column is naive
    with pytest.raises(ValueRefused) as caught:
        _run(url, _where(column, value))
    assert (caught.value.column, caught.value.rule) == (column, rule)


def test_an_int32_column_refuses_values_beyond_int32_on_postgresql(url: str) -> None:
    query = _where("normal", 2**40)
    if url.startswith("sqlite"):
        assert _run(url, query) == []
        return
    with pytest.raises(ValueRefused) as caught:
        _run(url, query)
    assert (caught.value.column, caught.value.rule) == ("normal", "integer-range")


def test_values_at_the_width_bounds_are_answered(url: str) -> None:
    high = 2**31 - 1 if url.startswith("postgresql") else 2**63 - 1
    assert _run(url, _where("normal", high)) == []
    assert _run(url, _where("small", 1)) == [{"big": 3}]
    if url.startswith("postgresql"):  # SQLite has no zone-aware type
        assert _run(url, _where("aware", "2026-01-01T01:00:00+01:00")) == [{"big": 3}]


def test_forty_not_in_lists_of_a_thousand_are_too_many_values(url: str) -> None:
    lists = tuple(Predicate("big", Op.NOT_IN, tuple(range(i, i + 1000))) for i in range(40))
    with pytest.raises(TooManyValues):
        _run(url, Query(columns=("big",), where=lists))


def test_a_limit_beyond_int32_is_refused(url: str) -> None:
    with pytest.raises(LimitOutOfRange):
        _run(url, Query(columns=("big",), limit=2**31))
    assert _run(url, Query(columns=("big",), limit=2**31 - 1)) == [{"big": 3}]


async def _driver_error(url: str, stmt: Any) -> BaseException:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(stmt)
    except Exception as exc:  # noqa: BLE001 - whatever the driver raises is what we classify
        return exc
    finally:
        await engine.dispose()
    raise AssertionError("the database took the statement")


def _classified(url: str, stmt: Any) -> ConnectorError:
    error = asyncio.run(_driver_error(url, stmt))
    mapped = classify(error, timeout=5.0)
    assert mapped is not None
    return mapped


def test_too_many_bind_parameters_are_the_querys_fault_not_the_sources(url: str) -> None:
    """asyncpg's 32,767 (an InterfaceError) and SQLite's variable limit are not outages."""
    table = sa.table("widths", sa.column("big", sa.BigInteger()))
    stmt = sa.select(table.c.big).where(table.c.big.not_in(list(range(300_000))))
    mapped = _classified(url, stmt)
    assert isinstance(mapped, SourceRefusedQuery), mapped
    assert not isinstance(mapped, SourceUnavailable)


def test_a_value_beyond_the_columns_sql_type_is_the_querys_fault(url: str) -> None:
    """What validation lets through and the database refuses is a 400, never an outage."""
    if url.startswith("sqlite"):
        pytest.skip("SQLite takes any 64-bit integer in any integer column")
    table = sa.table("widths", sa.column("normal", sa.Integer()), sa.column("big", sa.BigInteger()))
    stmt = sa.select(table.c.big).where(table.c.normal == 2**40)
    assert isinstance(_classified(url, stmt), SourceRefusedQuery)


def test_a_value_the_driver_cannot_encode_is_the_querys_fault(url: str) -> None:
    table = sa.table("widths", sa.column("label", sa.Text()), sa.column("big", sa.BigInteger()))
    stmt = sa.select(table.c.big).where(table.c.label == "\ud800")
    assert isinstance(_classified(url, stmt), SourceRefusedQuery)


def test_a_database_that_is_down_is_still_unavailable() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/test"
    connector = _connector(url)

    async def main() -> None:
        try:
            await connector.schema()
        finally:
            await connector.aclose()

    with pytest.raises(SourceUnavailable):
        asyncio.run(main())
