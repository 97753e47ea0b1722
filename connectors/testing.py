"""Test doubles that implement the real interface: an in-memory dataset.

``InMemoryConnector`` holds an Arrow table and pushes down whatever it is told it can
(``pushdown=``), using the gateway's own pure operators, so a test can run one query both
ways and compare.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from connectors import residual
from connectors._arrow import pa
from connectors.base import Batches, Connector
from connectors.plan import ALL, Plan, Pushdown
from connectors.query import Query


class InMemoryConnector(Connector):
    """A dataset held in memory; ``batch_size`` rows per batch."""

    kind = "memory"

    def __init__(
        self,
        name: str,
        table: pa.Table,
        *,
        pushdown: frozenset[Pushdown] = ALL,
        batch_size: int = 1024,
        description: str = "",
    ) -> None:
        super().__init__(name, description=description)
        self._table = table
        self._pushdown = pushdown
        self._batch_size = batch_size
        self.seen: list[Query] = []  # the queries the hook received, for tests

    @property
    def pushdown(self) -> frozenset[Pushdown]:
        """As configured."""
        return self._pushdown

    async def _schema(self) -> pa.Schema:
        return self._table.schema

    async def _batches(self, query: Query) -> Batches:
        self.seen.append(query)
        plan = Plan(
            source=Query(columns=query.source_columns()),
            do_filter=bool(query.where),
            do_aggregate=query.is_aggregate,
            do_order=bool(query.order_by),
        )
        async for batch in residual.apply(
            self._source(plan.source), plan, query, self._table.schema
        ):
            yield batch

    async def _source(self, query: Query) -> AsyncIterator[pa.RecordBatch]:
        for batch in self._table.select(list(query.columns)).to_batches(self._batch_size):
            yield batch
