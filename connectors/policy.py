"""Narrow a consumer's query by a permit's ``DataLimits``: the only way to mint a query.

Pure. ``narrow`` checks the consumer's query against the schema first (unknown column,
wrong type: 400), then against the policy (a withheld column: ``ColumnNotAllowed``, 403;
a non-aggregate query under a k-threshold: ``AggregateRequired``, 403), and finally folds
in the policy's own limits: its row filter is ANDed in (it may name columns the consumer
cannot see), ``max_rows`` caps ``limit`` and ``min_group_size`` becomes k; a
``privacy_unit`` (and a privacy budget) go on through ``connectors.contributors.protect``.
A ``max_rows`` above ``MAX_LIMIT`` (2^31 - 1) caps at ``MAX_LIMIT``; a k above it is the provider's
mistake (``ConnectorConfigError``), since lowering it would serve smaller groups.

Connectors accept only a ``PermittedQuery``; with no policy limits at all, pass
``DataLimits()`` so that the choice is written down at the call site.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from connectors._arrow import pa
from connectors.contributors import protect
from connectors.errors import (
    AggregateRequired,
    ColumnNotAllowed,
    ConnectorConfigError,
    QueryError,
)
from connectors.query import Predicate, Query
from connectors.rowfilter import parse_row_filter
from connectors.validate import MAX_LIMIT, validate
from policies.decision import DataLimits

_MINT = object()


@dataclass(frozen=True)
class PermittedQuery:
    """A query already checked against the schema and narrowed by the policy's limits."""

    query: Query
    _mint: object = None

    def __post_init__(self) -> None:
        if self._mint is not _MINT:
            raise TypeError("a PermittedQuery is made by connectors.narrow only")


def narrow(query: Query, limits: DataLimits, schema: pa.Schema) -> PermittedQuery:
    """``query`` as the policy permits it, or the error saying why not."""
    allowed = None if limits.columns is None else set(limits.columns)
    if allowed is not None and not query.columns and not query.aggregates:
        query = replace(query, columns=tuple(n for n in schema.names if n in allowed))
    asked = validate(query, schema)
    if allowed is not None:
        for column in asked.source_columns():
            if column not in allowed:
                raise ColumnNotAllowed(column)
    k = limits.min_group_size
    if k is not None and k > MAX_LIMIT:
        raise ConnectorConfigError(f"the policy's min_group_size is above {MAX_LIMIT}")
    if k is not None and not asked.is_aggregate:
        raise AggregateRequired(f"only aggregates over groups of at least {k} are allowed")
    narrowed = replace(
        asked,
        where=_policy_filter(limits.row_filter, schema) + asked.where,
        limit=_smallest(asked.limit, _capped(limits.max_rows)),
        min_group_size=_largest(asked.min_group_size, k),
    )
    if limits.privacy_unit is not None:
        narrowed = protect(narrowed, limits, schema, asked)
    return PermittedQuery(validate(narrowed, schema), _MINT)


def _capped(max_rows: int | None) -> int | None:
    """A policy's ``max_rows`` beyond the limit range caps at its top: fewer rows, never more."""
    return None if max_rows is None else min(max_rows, MAX_LIMIT)


def _smallest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _largest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def _policy_filter(text: str | None, schema: pa.Schema) -> tuple[Predicate, ...]:
    """The policy's row filter, checked against the schema; a bad one is the provider's."""
    if not text:
        return ()
    predicates = parse_row_filter(text)
    try:
        return validate(Query(columns=schema.names[:1], where=predicates), schema).where
    except QueryError as exc:
        raise ConnectorConfigError(f"the policy's row filter does not fit: {exc.reason}") from exc
