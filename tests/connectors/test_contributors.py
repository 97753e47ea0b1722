"""Contributor-level thresholds and private aggregates, attacked as the issue describes.

Each attack runs on an in-memory dataset (the gateway computing everything, and the source
pushing everything down) and on real SQLite and PostgreSQL tables through the SQL connector.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Iterator
from decimal import Decimal

import pyarrow as pa
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from connectors import (
    AggFunc,
    Aggregate,
    AggregateNotAllowed,
    Connector,
    Op,
    Order,
    Predicate,
    Query,
    narrow,
)
from connectors.noise import plan
from connectors.plan import ALL, NONE
from connectors.sql import SqlConfig, SqlConnector
from connectors.testing import InMemoryConnector
from policies.decision import DataLimits, PrivacyLimits
from tests.support.databases import postgres_database

SCHEMA = pa.schema(
    [("id", pa.int64()), ("emp", pa.int64()), ("dept", pa.string()), ("salary", pa.int64())]
)
# dept A: employees 1..5 (employee 7 too); dept B: three rows, one salary known;
# dept C: one machine-like employee with many rows.
ROWS = (
    [(i, i, "A", 1000 * i) for i in range(1, 6)]
    + [(7, 7, "A", 99_000)]
    + [(20, 20, "B", None), (21, 21, "B", 55_000), (22, 22, "B", None)]
    + [(30 + i, 30, "C", 10) for i in range(10)]
)
TABLE = pa.table({name: [r[i] for r in ROWS] for i, name in enumerate(SCHEMA.names)}, schema=SCHEMA)
K3 = DataLimits(columns=("dept", "salary"), min_group_size=3, privacy_unit=("emp",))
SUM = Aggregate(AggFunc.SUM, "salary", "total")
AVG = Aggregate(AggFunc.AVG, "salary", "mean")
COUNT = Aggregate(AggFunc.COUNT, None, "n")


def _memory(pushdown: frozenset) -> Connector:  # type: ignore[type-arg]
    return InMemoryConnector("salaries", TABLE, pushdown=pushdown, batch_size=4)


async def _load(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    meta = sa.MetaData()
    table = sa.Table(
        "salaries", meta,
        sa.Column("id", sa.BigInteger, primary_key=True), sa.Column("emp", sa.BigInteger),
        sa.Column("dept", sa.String(4)), sa.Column("salary", sa.BigInteger),
    )  # fmt: skip
    async with engine.begin() as conn:
        await conn.run_sync(meta.create_all)
        await conn.execute(table.insert(), [dict(zip(SCHEMA.names, r, strict=True)) for r in ROWS])
    await engine.dispose()


@pytest.fixture(
    scope="module",
    params=[
        "memory-gateway",
        "memory-pushed",
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ],
)
def source(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Where the data lives: a name, or a database URL."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('contrib') / 'data.db'}"
        asyncio.run(_load(url))
        yield url
    elif request.param == "postgresql":
        with postgres_database() as url:
            asyncio.run(_load(url))
            yield url
    else:
        yield request.param


def _run(source: str, query: Query, limits: DataLimits) -> list[dict[str, object]]:
    async def main() -> list[dict[str, object]]:
        if source.startswith("memory"):
            connector = _memory(NONE if source == "memory-gateway" else ALL)
        else:
            engine = create_async_engine(source, poolclass=NullPool)
            connector = SqlConnector("salaries", engine, SqlConfig("salaries"))
        try:
            permitted = narrow(query, limits, await connector.schema())
            rows: list[dict[str, object]] = []
            async for batch in connector.stream(permitted):
                rows.extend(batch.to_pylist())
            return rows
        finally:
            await connector.aclose()

    return asyncio.run(main())


def _by_dept(rows: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    return {r["dept"]: r for r in rows}


def test_k_counts_contributors_with_values_not_rows(source: str) -> None:
    query = Query(group_by=("dept",), aggregates=(COUNT, SUM, AVG))
    got = _by_dept(_run(source, query, K3))
    assert got["A"] == {"dept": "A", "n": 6, "total": 114_000, "mean": 19_000.0}
    # three rows in B, but only one contributor with a salary: no value is released
    assert got["B"] == {"dept": "B", "n": 3, "total": None, "mean": None}
    # one employee with ten rows does not fill a group of three
    assert "C" not in got


def test_min_and_max_are_refused_unless_the_policy_allows_them(source: str) -> None:
    query = Query(group_by=("dept",), aggregates=(Aggregate(AggFunc.MAX, "salary", "top"),))
    with pytest.raises(AggregateNotAllowed):
        _run(source, query, K3)
    allowed = DataLimits(
        columns=("dept", "salary"), min_group_size=3, privacy_unit=("emp",), allow_min_max=True
    )
    got = _by_dept(_run(source, query, allowed))
    assert got["A"]["top"] == 99_000
    assert got["B"]["top"] is None  # one contributor's value: not released


@pytest.mark.parametrize(
    "where",
    [
        (Predicate("emp", Op.NE, 7),),  # differencing: everyone but employee 7
        (Predicate("emp", Op.GT, 5),),  # paging by the contributor's id
        (Predicate("emp", Op.IN, (7,)),),
    ],
)
def test_filtering_on_the_privacy_unit_is_refused(where: tuple[Predicate, ...]) -> None:
    limits = DataLimits(min_group_size=3, privacy_unit=("emp",))
    query = Query(where=where, group_by=("dept",), aggregates=(SUM,))
    with pytest.raises(AggregateNotAllowed):
        narrow(query, limits, SCHEMA)
    with pytest.raises(AggregateNotAllowed):
        narrow(Query(group_by=("emp",), aggregates=(SUM,)), limits, SCHEMA)


def test_the_policys_own_filter_may_name_the_unit() -> None:
    limits = DataLimits(min_group_size=1, privacy_unit=("emp",), row_filter="emp != 7")
    got = _run("memory-gateway", Query(aggregates=(SUM,)), limits)
    assert got == [{"total": 1000 + 2000 + 3000 + 4000 + 5000 + 55_000 + 100}]


# -- differential privacy ---------------------------------------------------------------

PRIVATE = DataLimits(
    min_group_size=3,
    privacy_unit=("emp",),
    privacy=PrivacyLimits(
        epsilon=Decimal(1),
        period="P30D",
        query_epsilon=Decimal("0.5"),
        query_delta=Decimal("1e-6"),
        bounds=(("salary", Decimal(0), Decimal(100_000)),),
    ),
)


def test_a_private_answer_is_noisy_and_differs_each_time() -> None:
    query = Query(aggregates=(COUNT, SUM))
    first = _run("memory-gateway", query, PRIVATE)
    second = _run("memory-gateway", query, PRIVATE)
    assert len(first) == len(second) == 1
    # a Laplace sample at scale 400,000 equals another (or the exact sum) with probability ~0
    assert first[0]["total"] != second[0]["total"]
    assert first[0]["total"] != 114_000 + 55_000 + 100


def test_differencing_under_noise_does_not_recover_one_salary() -> None:
    """sum(A) - sum(A without 7) is refused; the total minus the total is pure noise."""
    with pytest.raises(AggregateNotAllowed):
        narrow(Query(where=(Predicate("emp", Op.NE, 7),), aggregates=(SUM,)), PRIVATE, SCHEMA)
    # the noise in one answer: scale = sensitivity / (epsilon / 2 releases) = 100,000 / 0.25
    permitted = narrow(Query(aggregates=(COUNT, SUM)), PRIVATE, SCHEMA).query
    assert plan(permitted).scales(permitted)["total"] == pytest.approx(400_000)


def test_repeated_answers_keep_their_spread() -> None:
    """Averaging away the noise needs many answers; the budget (gateway tests) stops it.

    One count at epsilon 0.5 with sensitivity 1: discrete Laplace at scale 2, whose standard
    deviation is about 2.8. Forty answers with a spread below 0.5 would need some 34 of them
    equal (each value has probability at most 0.25): far below 1e-15, while noise-free
    answers would all be equal (spread 0).
    """
    connector = _memory(ALL)
    permitted = narrow(Query(aggregates=(COUNT,)), PRIVATE, SCHEMA)
    assert permitted.query.noise is not None
    assert plan(permitted.query).scales(permitted.query) == {"n": pytest.approx(2.0)}

    async def answers() -> list[float]:
        found = []
        for _ in range(40):
            async for batch in connector.stream(permitted):
                found.append(float(batch.column("n")[0].as_py()))
        return found

    assert statistics.pstdev(asyncio.run(answers())) > 0.5


def test_groups_are_released_only_past_a_noisy_threshold() -> None:
    """With a delta of 1e-6 the threshold is far above the few contributors of each dept."""
    query = Query(group_by=("dept",), aggregates=(COUNT,))
    assert _run("memory-gateway", query, PRIVATE) == []


def test_private_queries_refuse_min_max_and_unbounded_columns() -> None:
    for agg in (Aggregate(AggFunc.MIN, "salary"), Aggregate(AggFunc.AVG, "id")):
        with pytest.raises(AggregateNotAllowed):
            narrow(Query(aggregates=(agg,)), PRIVATE, SCHEMA)


def test_order_and_limit_apply_to_the_released_groups() -> None:
    limits = DataLimits(min_group_size=1, privacy_unit=("emp",))
    query = Query(group_by=("dept",), aggregates=(COUNT,), order_by=(Order("n", True),), limit=2)
    assert _run("memory-pushed", query, limits) == [{"dept": "C", "n": 10}, {"dept": "A", "n": 6}]


def test_a_nan_in_a_private_sum_is_clamped_not_a_crash() -> None:
    schema = pa.schema([("emp", pa.int64()), ("salary", pa.float64())])
    table = pa.table({"emp": [1, 2, 3], "salary": [1.0, float("nan"), 2.0]}, schema=schema)

    async def main() -> list[dict[str, object]]:
        connector = InMemoryConnector("nan", table)
        permitted = narrow(Query(aggregates=(SUM,)), PRIVATE, schema)
        return [r async for b in connector.stream(permitted) for r in b.to_pylist()]

    (row,) = asyncio.run(main())
    assert isinstance(row["total"], float)
