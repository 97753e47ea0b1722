"""The SQL connector against real SQLite and PostgreSQL databases."""

from __future__ import annotations

import asyncio
import resource
from collections.abc import Awaitable, Callable, Iterator
from contextlib import aclosing
from typing import TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from connectors import (
    AggFunc,
    Aggregate,
    ConnectorConfigError,
    Op,
    Predicate,
    Query,
    QueryError,
    SourceUnavailable,
    UnknownColumn,
    narrow,
)
from connectors.sql import SqlConfig, SqlConnector
from policies.decision import DataLimits
from tests.connectors.cases import CASES, check_case, collect, sample_rows
from tests.support.databases import postgres_database

COUNT = Aggregate(AggFunc.COUNT)
META = sa.MetaData()
SAMPLE = sa.Table(
    "sample",
    META,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("region", sa.String(8)),
    sa.Column("amount", sa.Float),
    sa.Column("qty", sa.Integer),
    sa.Column("day", sa.Date),
    sa.Column("active", sa.Boolean),
)
VIEWS = {
    "sqlite": "CREATE VIEW big AS WITH RECURSIVE c(x) AS "
    "(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000000) SELECT x AS id FROM c",
    "postgresql": "CREATE VIEW big AS SELECT (a * 10000 + b)::bigint AS id "
    "FROM generate_series(0, 999) a, generate_series(1, 10000) b",
}


async def _load(url: str, backend: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    async with engine.begin() as conn:
        await conn.run_sync(META.create_all)
        await conn.execute(SAMPLE.insert(), sample_rows())
        await conn.execute(
            sa.text("CREATE VIEW nl AS SELECT id, qty FROM sample WHERE region = 'NL'")
        )
        await conn.execute(sa.text(VIEWS[backend]))
    await engine.dispose()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        found = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sql') / 'data.db'}"
        asyncio.run(_load(found, "sqlite"))
        yield found
        return
    with postgres_database() as found:
        asyncio.run(_load(found, "postgresql"))
        yield found


T = TypeVar("T")


def _connector(url: str, table: str = "sample", batch_size: int = 1000) -> SqlConnector:
    engine = create_async_engine(url, poolclass=NullPool)
    types = (("id", "int64"),) if table == "big" else ()  # SQLite views do not type expressions
    return SqlConnector("sample", engine, SqlConfig(table, batch_size=batch_size, types=types))


def _closing(connector: SqlConnector, action: Callable[[SqlConnector], Awaitable[T]]) -> T:
    """Run ``action`` and close the connector in the same event loop, also on failure."""

    async def main() -> T:
        try:
            return await action(connector)
        finally:
            await connector.aclose()

    return asyncio.run(main())


@pytest.mark.parametrize("case", CASES)
def test_answers_match_the_reference(url: str, case: str) -> None:
    check_case(_connector(url, batch_size=50), case, sample_rows())


def test_the_schema_is_reflected(url: str) -> None:
    info = _closing(_connector(url), lambda c: c.describe())
    types = {f.name: str(f.type) for f in info.schema}
    assert types == {
        "id": "int64",
        "region": "string",
        "amount": "double",
        "qty": "int32" if url.startswith("postgresql") else "int64",  # the width PG enforces
        "day": "date32[day]",
        "active": "bool",
    }


def test_a_view_reads_like_a_table(url: str) -> None:
    rows = asyncio.run(collect(_connector(url, "nl"), Query(columns=("id",))))
    assert sorted(r["id"] for r in rows) == [r["id"] for r in sample_rows() if r["region"] == "NL"]


def test_values_are_bound_never_spliced(url: str) -> None:
    evil = "NL' OR '1'='1"
    query = Query(columns=("id",), where=(Predicate("region", Op.EQ, evil),))
    assert asyncio.run(collect(_connector(url), query)) == []
    assert len(asyncio.run(collect(_connector(url), Query(columns=("id",))))) == 240


def test_a_column_name_from_the_consumer_never_reaches_sql(url: str) -> None:
    schema = _closing(_connector(url), lambda c: c.schema())
    with pytest.raises(UnknownColumn, match="id; DROP"):
        narrow(Query(columns=("id; DROP TABLE sample",)), DataLimits(), schema)


def test_ten_million_rows_stream_without_loading(url: str) -> None:
    async def first_batches() -> int:
        connector = _connector(url, "big", batch_size=5000)
        schema = await connector.schema()
        seen = 0
        # aclosing: the stream (and its database connection) closes here, in this loop,
        # not later when the abandoned generator is collected
        async with aclosing(connector.stream(narrow(Query(), DataLimits(), schema))) as batches:
            async for batch in batches:
                seen += batch.num_rows
                if seen >= 20_000:
                    break
        await connector.aclose()
        return seen

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert asyncio.run(first_batches()) == 20_000
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 200 * 1024  # 10 million rows fetched at once would take gigabytes


def test_a_missing_table_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConnectorConfigError):
        _closing(_connector(url, "no_such_table"), lambda c: c.describe())


def test_a_database_that_is_down_is_unavailable() -> None:
    # (a SQLite file that cannot be opened is not tried here: aiosqlite's worker thread
    # then outlives the event loop and reports into the next test)
    with pytest.raises(SourceUnavailable):
        _closing(
            _connector("postgresql+asyncpg://postgres@127.0.0.1:1/test"), lambda c: c.describe()
        )


@pytest.mark.parametrize(
    ("limits", "query"),
    [
        (DataLimits(), Query(columns=("id",), limit=2**31)),
        (DataLimits(), Query(limit=2**63)),
        (DataLimits(), Query(group_by=("region",), aggregates=(COUNT,), min_group_size=2**31)),
    ],
)
def test_a_limit_out_of_range_is_a_query_error_naming_the_rule(
    url: str, limits: DataLimits, query: Query
) -> None:
    schema = _closing(_connector(url), lambda c: c.schema())
    with pytest.raises(QueryError, match="2147483647"):
        narrow(query, limits, schema)


def test_a_policy_k_above_the_range_is_the_providers_mistake(url: str) -> None:
    query = Query(group_by=("region",), aggregates=(COUNT,))
    with pytest.raises(ConnectorConfigError, match="2147483647"):
        asyncio.run(collect(_connector(url), query, DataLimits(min_group_size=2**31)))


def test_a_policy_cap_above_the_range_still_serves(url: str) -> None:
    rows = asyncio.run(collect(_connector(url), Query(columns=("id",)), DataLimits(max_rows=2**40)))
    assert len(rows) == 240
