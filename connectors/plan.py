"""Split a permitted query into what the source does and what the gateway does after it.

Pure. Stages run in a fixed order (filter, aggregate, order, limit); a stage is pushed to
the source only when the source can do it *and* every stage before it was pushed, so the
result is the same whichever side does the work. Projection is always pushed: the source
returns the columns it is asked for (the base class checks that it did).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from connectors.query import Query


class Pushdown(StrEnum):
    """What a source can do itself."""

    FILTER = "filter"
    AGGREGATE = "aggregate"
    ORDER = "order"
    LIMIT = "limit"


ALL = frozenset(Pushdown)
NONE: frozenset[Pushdown] = frozenset()


@dataclass(frozen=True)
class Plan:
    """``source`` goes to the connector's hook; the ``do_*`` flags are the gateway's part."""

    source: Query
    do_filter: bool
    do_aggregate: bool
    do_order: bool


def split(query: Query, can: frozenset[Pushdown]) -> Plan:
    """The plan for ``query`` given what the source ``can`` push down."""
    filter_down = Pushdown.FILTER in can or not query.where
    agg_down = filter_down and (Pushdown.AGGREGATE in can or not query.is_aggregate)
    order_down = agg_down and (Pushdown.ORDER in can or not query.order_by)
    limit_down = order_down and Pushdown.LIMIT in can
    source = query
    if not agg_down:
        source = replace(
            source,
            columns=query.source_columns(),
            group_by=(),
            aggregates=(),
            min_group_size=None,
        )
    if not filter_down:
        source = replace(source, where=())
    if not order_down:
        source = replace(source, order_by=())
    if not limit_down:
        source = replace(source, limit=None)
    return Plan(
        source,
        do_filter=bool(query.where) and not filter_down,
        do_aggregate=query.is_aggregate and not agg_down,
        do_order=bool(query.order_by) and not order_down,
    )
