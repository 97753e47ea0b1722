"""Streaming group-by: partial aggregates per batch, merged as they accumulate. Pure.

Each aggregate becomes partial columns that merge associatively (counts and sums add, mins
and maxes take the min and max, an average is a sum and a count), so the rows seen so far
need never be kept. An extra row count per group serves the k-threshold.
"""

from __future__ import annotations

from typing import Any

from connectors._arrow import pa, pc
from connectors.query import AggFunc, Aggregate, Query

MERGE_AT = 200_000  # partial rows held before they are merged down
_ROWS = ("", "count_all")  # the hidden per-group row count


def _partials(agg: Aggregate) -> list[tuple[str, str]]:
    if agg.column is None:
        return [_ROWS]
    if agg.func is AggFunc.AVG:
        return [(agg.column, "sum"), (agg.column, "count")]
    return [(agg.column, agg.func.value)]


_MERGE = {"count_all": "sum", "count": "sum", "sum": "sum", "min": "min", "max": "max"}


class Aggregator:
    """Feed batches with ``add``; ``result`` gives the final table (k applied)."""

    def __init__(self, query: Query, out: pa.Schema, source: pa.Schema) -> None:
        self._keys = list(query.group_by)
        self._query = query
        self._out = out
        specs = [_ROWS] + [p for a in query.aggregates for p in _partials(a)]
        self._specs = list(dict.fromkeys(specs))
        self._names = [f"p{i}" for i in range(len(self._specs))]
        self._pending: list[pa.Table] = []
        self._rows = 0
        self._source = source

    def add(self, batch: pa.RecordBatch) -> None:
        """Fold one batch into the partial aggregates."""
        self._push(self._partial(pa.Table.from_batches([batch])))

    def result(self) -> pa.Table:
        """One row per group (groups under k dropped), in the output schema."""
        if not self._pending:
            empty = pa.Table.from_batches([], schema=self._source)
            self._pending.append(self._partial(empty))
        merged = self._merge()
        final = {k: merged.column(k) for k in self._keys}
        for agg in self._query.aggregates:
            final[agg.name] = self._finish(agg, merged)
        table = pa.table(final).cast(self._out)
        k = self._query.min_group_size
        if k:
            table = table.filter(pc.greater_equal(self._rows_of(merged), k))
        return table

    def _partial(self, table: pa.Table) -> pa.Table:
        grouped = table.group_by(self._keys, use_threads=False)
        done = grouped.aggregate([([] if c == "" else c, f) for c, f in self._specs])
        return self._renamed(
            done, [("count_all" if c == "" else f"{c}_{f}") for c, f in self._specs]
        )

    def _renamed(self, done: pa.Table, produced: list[str]) -> pa.Table:
        columns = [done.column(k) for k in self._keys] + [done.column(n) for n in produced]
        return pa.table(columns, names=self._keys + self._names)

    def _push(self, partial: pa.Table) -> None:
        self._pending.append(partial)
        self._rows += partial.num_rows
        if self._rows > MERGE_AT:
            self._pending = [self._merge()]
            self._rows = self._pending[0].num_rows

    def _merge(self) -> pa.Table:
        table = pa.concat_tables(self._pending)
        grouped = table.group_by(self._keys, use_threads=False)
        merges = [(n, _MERGE[f]) for n, (_, f) in zip(self._names, self._specs, strict=True)]
        done = grouped.aggregate(merges)
        return self._renamed(done, [f"{n}_{m}" for n, m in merges])

    def _col(self, merged: pa.Table, spec: tuple[str, str]) -> Any:
        return merged.column(self._names[self._specs.index(spec)])

    def _rows_of(self, merged: pa.Table) -> Any:
        return pc.fill_null(self._col(merged, _ROWS), 0)

    def _finish(self, agg: Aggregate, merged: pa.Table) -> Any:
        parts = [self._col(merged, p) for p in _partials(agg)]
        if agg.func is AggFunc.COUNT:
            return pc.fill_null(parts[0], 0)
        if agg.func is AggFunc.AVG:
            total, count = pc.cast(parts[0], pa.float64()), pc.fill_null(parts[1], 0)
            zero = pc.equal(count, 0)
            return pc.if_else(zero, pa.scalar(None, pa.float64()), pc.divide(total, count))
        return parts[0]
