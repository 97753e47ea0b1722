"""The one async interface every connector implements, and what it guarantees around it.

A subclass implements two private hooks: ``_schema()`` (the dataset's Arrow schema) and
``_batches(query)`` (record batches for a query already cut down to what the subclass said
it can push down, in exactly ``query.columns`` or the aggregate's output). The public
methods wrap them: every failure leaves as a ``ConnectorError`` (``raise ... from exc``),
the rest of the query is applied in the gateway, and each batch is checked against the
promised schema before it is passed on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar

from connectors import contributors, residual
from connectors._arrow import pa
from connectors.errors import ConnectorError, SchemaMismatch, SourceError, SourceTimeout
from connectors.plan import Plan, Pushdown, split
from connectors.policy import PermittedQuery
from connectors.query import Query
from connectors.spill import DEFAULT, SpillConfig
from connectors.validate import output_schema

Batches = AsyncIterator[pa.RecordBatch]


@dataclass(frozen=True)
class DatasetInfo:
    """What the catalog shows about a dataset: its columns and what its source pushes down."""

    name: str
    kind: str
    schema: pa.Schema
    pushdown: frozenset[Pushdown]
    description: str = ""

    def to_catalog(self) -> dict[str, Any]:
        """JSON-ready description (stable field names; new ones are appended)."""
        columns = [
            {"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in self.schema
        ]
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "columns": columns,
            "pushdown": sorted(p.value for p in self.pushdown),
        }


class Connector(ABC):
    """A dataset behind some source. Use ``describe``, ``stream`` and ``aclose``."""

    kind: ClassVar[str] = "connector"

    def __init__(self, name: str, *, description: str = "") -> None:
        self.name = name
        self.description = description
        self._schema_cache: pa.Schema | None = None
        self.spill: SpillConfig = DEFAULT  # where the gateway's grouping and ordering may spill

    @property
    @abstractmethod
    def pushdown(self) -> frozenset[Pushdown]:
        """The stages this source applies itself."""

    async def schema(self) -> pa.Schema:
        """The dataset's Arrow schema (asked of the source once)."""
        if self._schema_cache is None:
            async with _mapped(self):
                self._schema_cache = await self._schema()
        return self._schema_cache

    async def describe(self) -> DatasetInfo:
        """The catalog entry for this dataset."""
        schema = await self.schema()
        return DatasetInfo(self.name, self.kind, schema, self.pushdown, self.description)

    async def result_schema(self, permitted: PermittedQuery) -> pa.Schema:
        """The Arrow schema of the batches ``stream(permitted)`` yields."""
        return output_schema(permitted.query, await self.schema())

    async def stream(self, permitted: PermittedQuery) -> Batches:
        """The query's result as Arrow record batches, streamed in bounded memory."""
        schema = await self.schema()
        query = permitted.query
        expected = output_schema(query, schema)
        # Under a privacy unit the source answers per contributor and group, combined here.
        asked = contributors.inner(query) if query.privacy_unit else query
        plan = split(asked, self.pushdown)
        source = self._checked(plan, schema)
        applied = residual.apply(source, plan, asked, schema, self.spill)
        rows = applied
        if query.privacy_unit:
            rows = contributors.combine(applied, query, expected)
        try:
            async for batch in rows:
                yield _conform(batch, expected)
        except ConnectorError:
            raise
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise SchemaMismatch(f"{self.name}: rows do not fit the schema ({exc})") from exc
        finally:
            await residual.close(applied)  # the residual stages (an ordering engine) end now, in
            await source.aclose()  # this task, not in a finaliser the loop may never run

    async def aclose(self) -> None:
        """Release pools, clients and files; subclasses holding any extend this."""
        self._schema_cache = None

    @abstractmethod
    async def _schema(self) -> pa.Schema:
        """The source's schema (private hook)."""

    @abstractmethod
    def _batches(self, query: Query) -> Batches:
        """Record batches for the pushed-down ``query`` (private hook)."""

    async def _checked(self, plan: Plan, schema: pa.Schema) -> AsyncGenerator[pa.RecordBatch, None]:
        expected = output_schema(plan.source, schema)
        batches = self._batches(plan.source)
        try:
            async with _mapped(self):
                async for batch in batches:
                    yield _conform(batch, expected)
        finally:
            close = getattr(batches, "aclose", None)  # release the source's files and cursors now
            if close is not None:
                await close()


class _mapped:  # noqa: N801 (used as a statement: ``async with _mapped(self)``)
    """Turn anything but a ``ConnectorError`` into one, keeping the cause."""

    def __init__(self, connector: Connector) -> None:
        self._name = connector.name

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _tb: object
    ) -> bool:
        if exc is None or isinstance(exc, ConnectorError) or not isinstance(exc, Exception):
            return False  # ours already, or cancellation / generator exit: let it through
        if isinstance(exc, TimeoutError):
            raise SourceTimeout(f"{self._name}: the source timed out") from exc
        if isinstance(exc, pa.ArrowInvalid | pa.ArrowTypeError):
            raise SchemaMismatch(f"{self._name}: rows do not fit the schema ({exc})") from exc
        raise SourceError(f"{self._name}: the source failed ({type(exc).__name__})") from exc


def _conform(batch: pa.RecordBatch, expected: pa.Schema) -> pa.RecordBatch:
    """``batch`` in exactly the expected columns and types, or ``SchemaMismatch``."""
    missing = [n for n in expected.names if n not in batch.schema.names]
    if missing:
        raise SchemaMismatch(f"the source left out columns: {', '.join(missing)}")
    chosen = batch.select(expected.names)
    if chosen.schema.equals(expected):
        return chosen
    try:
        arrays = [chosen.column(i).cast(f.type) for i, f in enumerate(expected)]
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise SchemaMismatch(f"the source's values do not fit the schema ({exc})") from exc
    return pa.RecordBatch.from_arrays(arrays, schema=expected)
