"""The cost of private aggregates: one grouped aggregate, exact and private, same run.

Run by hand: ``python -m bench.private_aggregates [rows]`` (default 10,000,000). The same
rows (``rows / 10`` contributors, 20 departments) go into a Parquet file (files connector)
and, when PostgreSQL is reachable (``SLUIS_BENCH_POSTGRES``), a table (SQL connector). Each
source answers ``count, sum(salary), avg(salary) GROUP BY dept`` three ways:

- exact: groups of at least k rows (the baseline);
- contributors: a privacy unit, k counting distinct contributors;
- private: the same with a privacy budget (contribution bounding, OpenDP noise, partition
  selection).

The table prints seconds per query (the best of ``REPEAT``) and the ratio to the baseline.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import duckdb
from rich.console import Console
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bench.load import _postgres
from connectors import AggFunc, Aggregate, Connector, Query, narrow
from connectors.files import FileFormat, FilesConfig, FilesConnector
from connectors.sql import SqlConfig, SqlConnector
from policies.decision import DataLimits, PrivacyLimits

REPEAT = 3
QUERY = Query(
    group_by=("dept",),
    aggregates=(
        Aggregate(AggFunc.COUNT),
        Aggregate(AggFunc.SUM, "salary"),
        Aggregate(AggFunc.AVG, "salary"),
    ),
)
EXACT = DataLimits(min_group_size=10)
CONTRIBUTORS = DataLimits(min_group_size=10, privacy_unit=("emp",))
PRIVATE = DataLimits(
    min_group_size=10,
    privacy_unit=("emp",),
    privacy=PrivacyLimits(
        epsilon=Decimal(10),
        period="P30D",
        query_epsilon=Decimal(1),
        query_delta=Decimal("1e-7"),
        bounds=(("salary", Decimal(0), Decimal(150_000)),),
    ),
)
SELECT = (
    "SELECT i AS id, i % {units} AS emp, 'D' || CAST(i % 20 AS VARCHAR) AS dept,"
    " (i * 7919) % 150000 AS salary FROM {source}"
)


def _parquet(root: Path, rows: int) -> Path:
    path = root / "salaries.parquet"
    select = SELECT.format(units=max(rows // 10, 1), source=f"range({rows}) t(i)")
    duckdb.connect().execute(f"COPY ({select}) TO '{path}' (FORMAT parquet)")
    return path


async def _load_postgres(url: str, rows: int) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    select = SELECT.format(
        units=max(rows // 10, 1), source=f"generate_series(0::bigint, {rows - 1}) i"
    ).replace("VARCHAR", "TEXT")
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE TABLE salaries AS {select}"))  # bench-made constants
    await engine.dispose()


async def _time(connector: Connector, limits: DataLimits) -> float:
    best = float("inf")
    for _ in range(REPEAT):
        started = time.perf_counter()
        permitted = narrow(QUERY, limits, await connector.schema())
        async for _batch in connector.stream(permitted):
            pass
        best = min(best, time.perf_counter() - started)
    return best


def _row(table: Table, source: str, connector: Connector) -> None:
    async def run() -> list[float]:
        try:
            return [await _time(connector, limits) for limits in (EXACT, CONTRIBUTORS, PRIVATE)]
        finally:
            await connector.aclose()

    exact, contributors, private = asyncio.run(run())
    table.add_row(
        source,
        f"{exact:.2f}",
        f"{contributors:.2f} ({contributors / exact:.1f}x)",
        f"{private:.2f} ({private / exact:.1f}x)",
    )


@contextmanager
def _maybe_postgres(rows: int) -> Iterator[str | None]:
    try:
        with _postgres() as url:
            asyncio.run(_load_postgres(url, rows))
            yield url
    except RuntimeError as exc:
        Console().print(f"PostgreSQL skipped: {exc}")
        yield None


def main(argv: list[str] | None = None) -> None:
    """Print the table."""
    args = sys.argv[1:] if argv is None else argv
    rows = int(args[0]) if args else 10_000_000
    root = Path(tempfile.mkdtemp(prefix="sluis-bench-private-"))
    try:
        path = _parquet(root, rows)
        table = Table(title=f"private aggregates: {rows:,} rows, {rows // 10:,} contributors")
        for column in ("source", "exact s", "contributors s", "private (OpenDP) s"):
            table.add_column(column)
        config = FilesConfig(root, path.name, FileFormat.PARQUET)
        _row(table, "Parquet file", FilesConnector("salaries", config))
        with _maybe_postgres(rows) as url:
            if url is not None:
                engine = create_async_engine(url, poolclass=NullPool)
                _row(table, "PostgreSQL", SqlConnector("salaries", engine, SqlConfig("salaries")))
        Console().print(table)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
