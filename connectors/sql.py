"""PostgreSQL and SQLite tables or views through SQLAlchemy Core (async).

Everything is pushed down: projection, predicates, group-by with aggregates and the
k-threshold (``HAVING count(*) >= k``), order (nulls last, byte-wise text order) and limit.
Names come from the reflected schema, values travel as bound parameters; no consumer text
is ever spliced into SQL. Rows are read through a server-side cursor in partitions of
``batch_size`` and turned into Arrow batches, so a table of any size streams.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from connectors._arrow import pa
from connectors.base import Batches, Connector
from connectors.errors import (
    ConnectorConfigError,
    ConnectorError,
    SchemaMismatch,
    SourceRefusedQuery,
    SourceRejected,
    SourceTimeout,
    SourceUnavailable,
)
from connectors.plan import ALL, Pushdown
from connectors.query import Query
from connectors.sql_build import build_select
from connectors.sql_types import arrow_type, sql_type


@dataclass(frozen=True)
class SqlConfig:
    """A table or view: ``table`` in ``schema`` (None: the default search path)."""

    table: str
    schema: str | None = None
    batch_size: int = 10_000
    timeout: float = 30.0  # seconds for connecting and for each partition of rows
    # Arrow type names ("int64", "string", ...) for columns the database does not type,
    # such as SQLite view expressions; they win over the reflected types.
    types: tuple[tuple[str, str], ...] = ()


class SqlConnector(Connector):
    """A dataset in a SQL table or view; owns ``engine`` unless ``owns_engine=False``."""

    kind = "sql"

    def __init__(
        self,
        name: str,
        engine: AsyncEngine,
        config: SqlConfig,
        *,
        owns_engine: bool = True,
        description: str = "",
    ) -> None:
        super().__init__(name, description=description)
        self._engine = engine
        self._config = config
        self._owns_engine = owns_engine
        self._columns: dict[str, Any] | None = None

    @classmethod
    def from_url(cls, name: str, url: str, config: SqlConfig, **kwargs: Any) -> SqlConnector:
        """A connector with its own engine (``sqlite+aiosqlite://``, ``postgresql+asyncpg://``)."""
        return cls(name, create_async_engine(url), config, **kwargs)

    @property
    def pushdown(self) -> frozenset[Pushdown]:
        """Everything."""
        return ALL

    async def aclose(self) -> None:
        """Dispose of the engine if this connector made it."""
        await super().aclose()
        if self._owns_engine:
            await self._engine.dispose()

    async def _schema(self) -> pa.Schema:
        timeout = self._config.timeout
        async with _errors(timeout), asyncio.timeout(timeout), self._engine.connect() as conn:
            reflected = await conn.run_sync(self._reflect)
        fields, self._columns = [], {}
        declared = dict(self._config.types)
        dialect = self._engine.dialect.name
        for column in reflected:
            if column["name"] in declared:
                kind = _alias(declared[column["name"]])
                column["type"] = sql_type(kind)
            else:
                kind = arrow_type(column["type"], dialect)
            if kind is not None:  # a column of a type we cannot map is not exposed
                fields.append(pa.field(column["name"], kind, column.get("nullable", True)))
                self._columns[column["name"]] = column["type"]
        if not fields:
            raise ConnectorConfigError(f"{self.name}: no readable columns in the table")
        return pa.schema(fields)

    def _reflect(self, conn: sa.Connection) -> list[Any]:
        inspector = sa.inspect(conn)
        try:
            return list(inspector.get_columns(self._config.table, schema=self._config.schema))
        except sa_exc.NoSuchTableError as exc:
            raise ConnectorConfigError(f"{self.name}: no such table or view") from exc

    async def _batches(self, query: Query) -> Batches:
        schema = await self.schema()
        assert self._columns is not None  # noqa: S101 (set together with the schema)
        stmt, out = build_select(
            query, self._config, self._columns, schema, self._engine.dialect.name
        )
        size = self._config.batch_size
        async with _errors(self._config.timeout):
            async with asyncio.timeout(self._config.timeout):
                conn = await self._engine.connect()
            try:
                result = await conn.stream(stmt.execution_options(yield_per=size))
                partitions = result.partitions(size)
                while True:
                    async with asyncio.timeout(self._config.timeout):
                        rows = await anext(partitions, None)
                    if rows is None:
                        return
                    yield _to_batch(rows, out)
            finally:
                await conn.close()


def _alias(name: str) -> Any:
    try:
        return pa.type_for_alias(name)
    except ValueError as exc:
        raise ConnectorConfigError(f"unknown Arrow type name: {name!r}") from exc


def _to_batch(rows: Sequence[Any], schema: pa.Schema) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    try:
        arrays = [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)]
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise SchemaMismatch(f"the database returned values outside the schema ({exc})") from exc
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


class _errors:  # noqa: N801 (used as a statement: ``async with _errors(...)``)
    """Map driver and SQLAlchemy failures onto the connector errors (``classify``)."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _tb: object
    ) -> bool:
        mapped = None if exc is None else classify(exc, timeout=self._timeout)
        if mapped is not None:
            raise mapped from exc
        return False


_PARAMETER_LIMITS = (
    "number of query arguments cannot exceed",  # asyncpg (32,767)
    "too many sql variables",  # SQLite (SQLITE_MAX_VARIABLE_NUMBER)
)


def classify(exc: BaseException, *, timeout: float) -> ConnectorError | None:
    """The connector error for a driver failure, or None for one that is not the driver's.

    The query's fault (400, ``SourceRefusedQuery``): a value the driver cannot encode or the
    database refuses as data (SQLSTATE class 22), too many bind parameters. The source's: a
    timeout (504), a connection that failed or was lost (``SourceUnavailable``), anything
    else the database said (``SourceRejected``). The query's faults are told apart first, so
    a driver that reports them as interface errors never makes them an outage.
    """
    if isinstance(exc, TimeoutError):
        return SourceTimeout(f"the database did not answer within {timeout}s")
    if _querys_fault(exc):
        return SourceRefusedQuery("the database refused a value or the size of the query")
    if isinstance(exc, OSError) or _lost_connection(exc):
        return SourceUnavailable("the database is unavailable")
    if isinstance(exc, sa_exc.DBAPIError | sa_exc.SQLAlchemyError):
        return SourceRejected("the database refused the query")
    return None


def _querys_fault(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DataError | UnicodeError | OverflowError):
        return True
    if not isinstance(exc, sa_exc.DBAPIError) or exc.connection_invalidated:
        return False
    if any(limit in str(exc.orig).lower() for limit in _PARAMETER_LIMITS):
        return True
    return any(isinstance(c, ValueError | OverflowError) for c in _causes(exc.orig))


def _causes(exc: BaseException | None) -> list[BaseException]:
    """``exc`` and its causes: a driver's argument error wraps the OverflowError or the
    UnicodeEncodeError of the value that would not encode (asyncpg: 'invalid input')."""
    chain: list[BaseException] = []
    while exc is not None and len(chain) < 8:  # noqa: PLR2004 - a bound, not a magic number
        chain.append(exc)
        exc = exc.__cause__
    return chain


def _lost_connection(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
