"""Aggregates over contributors, not rows: contributor-level thresholds and private aggregates.

Under a policy's privacy unit (the column(s) that identify a contributor: a person, a
machine, a company) a query is answered in two steps. The source computes one row per
contributor and group (``inner``: an ordinary grouped query, pushed down to SQL or run by
the gateway's spilling engine like any other), and the gateway combines those rows per group
(``combine``), so that:

- k counts distinct contributors, and a group's value is released only when at least k
  contributors have non-null values in it (a lone non-null salary in a group of three rows
  is not released through ``avg``; one machine with many rows cannot fill a group);
- ``min``/``max`` (always one contributor's value) are refused unless the policy allows them;
- the consumer may not filter or group on the privacy unit itself (``id != 7``, ``id > last``);
- with a privacy budget (``Query.noise``) each contributor's rows are bounded (at most
  ``max_contributions`` rows in a group, ``max_groups`` groups), its total per group clamped
  to the column's bounds, and counts, sums and means released with calibrated noise from
  OpenDP (``connectors.noise``), groups only when their noisy contributor count passes a
  threshold (partition selection).

Rows whose privacy unit is null belong to no known contributor and are not counted. The
gateway holds one accumulator per group (at most ``MAX_GROUPS``, else ``QueryTooLarge``),
never the rows.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from connectors import noise as dp
from connectors._arrow import pa, pc
from connectors.errors import (
    AggregateNotAllowed,
    AggregateRequired,
    ConnectorConfigError,
    QueryTooLarge,
)
from connectors.query import AggFunc, Aggregate, Noise, Order, Query
from policies.decision import DataLimits

Batches = AsyncIterator[pa.RecordBatch]
MAX_GROUPS = 1_000_000  # accumulators the gateway keeps for one query
_ROWS = "__sluis_rows"
_MIN_MAX = frozenset({AggFunc.MIN, AggFunc.MAX})


def protect(query: Query, limits: DataLimits, schema: pa.Schema, asked: Query) -> Query:
    """``query`` (already narrowed) under the policy's privacy unit, or the refusal.

    ``asked`` is the consumer's own query: its predicates (not the policy's row filter) may
    not name the unit.
    """
    unit = tuple(limits.privacy_unit or ())
    missing = [c for c in unit if c not in schema.names]
    if not unit or missing:
        raise ConnectorConfigError(f"the policy's privacy unit is not a column: {missing}")
    if not query.is_aggregate:
        raise AggregateRequired("only aggregates over contributors are allowed")
    named = {p.column for p in asked.where} | set(query.group_by)
    if named & set(unit):
        raise AggregateNotAllowed("the query may not filter or group on the privacy unit")
    funcs = {a.func for a in query.aggregates}
    private = limits.privacy
    if funcs & _MIN_MAX and (private is not None or not limits.allow_min_max):
        raise AggregateNotAllowed("min and max release one contributor's value")
    noise = None
    if private is not None:
        bounds = tuple((c, float(lo), float(hi)) for c, lo, hi in private.bounds)
        delta = float(private.query_delta) if private.query_delta is not None else None
        noise = Noise(
            float(private.query_epsilon), delta, bounds,
            private.max_contributions, private.max_groups,
        )  # fmt: skip
        _check_noisy(query, noise)
    return replace(query, privacy_unit=unit, allow_min_max=limits.allow_min_max, noise=noise)


def _check_noisy(query: Query, noise: Noise) -> None:
    for agg in query.aggregates:
        if agg.func in (AggFunc.SUM, AggFunc.AVG) and noise.bound(agg.column or "") is None:
            raise AggregateNotAllowed(f"the policy gives no bounds for {agg.column!r}")
    if query.group_by and noise.delta is None:
        raise AggregateNotAllowed("the policy allows no grouped private queries (no delta)")


def _slot(column: str, columns: list[str]) -> int:
    if column not in columns:
        columns.append(column)
    return columns.index(column)


def inner(query: Query) -> Query:
    """The per-contributor, per-group query the source answers (unit columns first)."""
    columns: list[str] = []
    aggs = [Aggregate(AggFunc.COUNT, None, _ROWS)]
    for agg in query.aggregates:
        if agg.column is None:
            continue
        i = _slot(agg.column, columns)
        wanted = {
            AggFunc.COUNT: (AggFunc.COUNT,),
            AggFunc.SUM: (AggFunc.COUNT, AggFunc.SUM),
            AggFunc.AVG: (AggFunc.COUNT, AggFunc.SUM),
            AggFunc.MIN: (AggFunc.COUNT, AggFunc.MIN),
            AggFunc.MAX: (AggFunc.COUNT, AggFunc.MAX),
        }[agg.func]
        for func in wanted:
            made = Aggregate(func, agg.column, f"__sluis_{func.value}_{i}")
            if made not in aggs:
                aggs.append(made)
    unit = query.privacy_unit
    order = tuple(Order(c) for c in unit) if query.noise is not None else ()
    return Query(
        where=query.where, group_by=unit + query.group_by, aggregates=tuple(aggs), order_by=order
    )


@dataclass
class _Acc:
    """One group: its contributors, rows, and per column non-null contributors and values."""

    contributors: int = 0
    rows: float = 0
    counted: dict[int, int] = field(default_factory=dict)  # contributors with a value
    count: dict[int, float] = field(default_factory=dict)
    total: dict[int, float] = field(default_factory=dict)
    low: dict[int, Any] = field(default_factory=dict)  # values of the column's own type
    high: dict[int, Any] = field(default_factory=dict)


async def combine(batches: Batches, query: Query, schema: pa.Schema) -> Batches:
    """The query's result from ``inner(query)``'s batches, in ``schema`` (its output)."""
    columns = _columns(query)
    groups: dict[tuple[object, ...], _Acc] = {}
    last_unit: tuple[object, ...] | None = None
    used = 0
    async for batch in batches:
        data = batch.to_pydict()
        for r in range(batch.num_rows):
            unit = tuple(data[c][r] for c in query.privacy_unit)
            if any(v is None for v in unit):
                continue  # no known contributor: not counted
            if unit != last_unit:
                last_unit, used = unit, 0
            used += 1
            if query.noise is not None and used > query.noise.max_groups:
                continue  # this contributor already added to as many groups as allowed
            key = tuple(data[c][r] for c in query.group_by)
            acc = groups.get(key)
            if acc is None:
                if len(groups) >= MAX_GROUPS:
                    raise QueryTooLarge(f"more than {MAX_GROUPS} groups under a privacy unit")
                acc = groups[key] = _Acc()
            _add(acc, data, r, columns, query.noise)
    rows = _noisy(groups, query, columns) if query.noise else _exact(groups, query, columns)
    table = pa.Table.from_pylist(_fit(rows, schema), schema=schema)
    for batch in _ordered(table, query).to_batches():
        yield batch


def _columns(query: Query) -> dict[str, int]:
    found: list[str] = []
    for agg in query.aggregates:
        if agg.column is not None:
            _slot(agg.column, found)
    return {c: i for i, c in enumerate(found)}


def _add(
    acc: _Acc, data: dict[str, list[object]], r: int, columns: dict[str, int], noise: Noise | None
) -> None:
    cap = noise.max_contributions if noise else None
    acc.contributors += 1
    rows = _num(data[_ROWS][r])
    acc.rows += min(rows, cap) if cap else rows
    for column, i in columns.items():
        n = _num(data[f"__sluis_count_{i}"][r])
        if n <= 0:
            continue
        kept = min(n, cap) if cap else n
        acc.counted[i] = acc.counted.get(i, 0) + 1
        acc.count[i] = acc.count.get(i, 0) + kept
        total = data.get(f"__sluis_sum_{i}")
        if total is not None and total[r] is not None:
            value = _num(total[r])
            bound = noise.bound(column) if noise else None
            if bound is not None:  # this contributor's total, clamped to kept x [low, high]
                value = kept * bound[0] if math.isnan(value) else value  # NaN: the low end
                value = min(max(value, kept * bound[0]), kept * bound[1])
            acc.total[i] = acc.total.get(i, 0) + value
        for name, keep, pick in (("min", acc.low, min), ("max", acc.high, max)):
            found = data.get(f"__sluis_{name}_{i}")
            if found is not None and found[r] is not None:
                keep[i] = found[r] if i not in keep else pick(keep[i], found[r])


def _num(value: object) -> float:
    """A count or sum as a number: ints stay exact, anything else (Decimal) a float."""
    return value if isinstance(value, int) else float(value)  # type: ignore[arg-type]  # numeric


def _exact(
    groups: dict[tuple[object, ...], _Acc], query: Query, columns: dict[str, int]
) -> list[dict[str, object]]:
    k = query.min_group_size or 1
    if not query.group_by and not groups:
        groups = {(): _Acc()}
    out = []
    for key, acc in groups.items():
        if acc.contributors < k:
            continue  # fewer than k contributors: the group is not released
        row: dict[str, object] = dict(zip(query.group_by, key, strict=True))
        for agg in query.aggregates:
            row[agg.name] = _exact_value(agg, acc, columns, k)
        out.append(row)
    return out


def _exact_value(agg: Aggregate, acc: _Acc, columns: dict[str, int], k: int) -> object:
    if agg.column is None:
        return int(acc.rows)
    i = columns[agg.column]
    if acc.counted.get(i, 0) < k:
        return None  # fewer than k contributors have a value here: not released
    if agg.func is AggFunc.COUNT:
        return int(acc.count[i])
    if agg.func is AggFunc.SUM:
        return acc.total.get(i)
    if agg.func is AggFunc.AVG:
        return acc.total.get(i, 0) / acc.count[i]
    return acc.low.get(i) if agg.func is AggFunc.MIN else acc.high.get(i)


def _noisy(
    groups: dict[tuple[object, ...], _Acc], query: Query, columns: dict[str, int]
) -> list[dict[str, object]]:
    noise = query.noise
    assert noise is not None  # noqa: S101 - only called with noise
    plan = dp.plan(query)
    if query.group_by:
        counts = {i: acc.contributors for i, acc in enumerate(groups.values())}
        kept = dp.select(counts, plan, query.min_group_size or 1)
        released = [(k, a) for i, (k, a) in enumerate(groups.items()) if i in kept]
    else:
        released = [((), groups.get((), _Acc()))]
    out: list[dict[str, object]] = [dict(zip(query.group_by, k, strict=True)) for k, _ in released]
    accs = [a for _, a in released]
    for agg in query.aggregates:
        values = _noisy_values(agg, accs, columns, plan)
        for row, value in zip(out, values, strict=True):
            row[agg.name] = value
    return out


def _noisy_values(
    agg: Aggregate, accs: list[_Acc], columns: dict[str, int], plan: dp.Plan
) -> list[object]:
    if agg.column is None:
        return [max(0, v) for v in dp.count([round(a.rows) for a in accs], plan)]
    i = columns[agg.column]
    counts = dp.count([round(a.count.get(i, 0)) for a in accs], plan)
    if agg.func is AggFunc.COUNT:
        return [max(0, v) for v in counts]
    low, high = plan.bound(agg.column)
    sums = dp.total([a.total.get(i, 0.0) for a in accs], plan, agg.column)
    if agg.func is AggFunc.SUM:
        return list(sums)
    # a mean: noisy sum over noisy count, kept within the bounds (post-processing)
    return [min(max(s / max(c, 1), low), high) for s, c in zip(sums, counts, strict=True)]


def _fit(rows: list[dict[str, object]], schema: pa.Schema) -> list[dict[str, object]]:
    """Integer outputs (counts, sums of integer columns) as ints; noisy ones are rounded."""
    whole = [f.name for f in schema if pa.types.is_integer(f.type)]
    for row in rows:
        for name in whole:
            value = row.get(name)
            if value is not None and not isinstance(value, int):
                row[name] = round(value)  # type: ignore[call-overload]  # a float
    return rows


def _ordered(table: pa.Table, query: Query) -> pa.Table:
    order = list(query.order_by)
    if query.noise is not None:  # released keys in key order: the source's order is the data's
        order += [Order(c) for c in query.group_by]
    if order and table.num_rows:
        keys = [(o.column, "descending" if o.descending else "ascending") for o in order]
        table = table.take(pc.sort_indices(table, sort_keys=keys))  # nulls last by default
    if query.limit is not None:
        table = table.slice(0, query.limit)
    return table
