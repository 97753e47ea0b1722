"""Adapters to data sources (HTTP APIs, SQL databases, files) behind one async interface.

The exchange narrows a consumer's ``Query`` by the permit's ``DataLimits`` (``narrow``),
hands the resulting ``PermittedQuery`` to a ``Connector`` and encodes the record batches it
streams (``encode``). Each connector pushes down what its source can do; the base class
applies the rest, so results are the same either way. Errors: ``connectors.errors``.
"""

from connectors.base import Connector, DatasetInfo
from connectors.errors import (
    AggregateNotAllowed,
    AggregateRequired,
    ColumnNotAllowed,
    ConnectorConfigError,
    ConnectorError,
    LimitOutOfRange,
    PathRefused,
    QueryError,
    SchemaMismatch,
    SourceError,
    SourceRefusedQuery,
    SourceRejected,
    SourceTimeout,
    SourceUnavailable,
    TargetRefused,
    TooManyValues,
    UnknownColumn,
    ValueRefused,
    WrongValueType,
)
from connectors.formats import Chunk, Format, encode
from connectors.plan import ALL as ALL_PUSHDOWN
from connectors.plan import NONE as NO_PUSHDOWN
from connectors.plan import Pushdown
from connectors.policy import PermittedQuery, narrow
from connectors.query import AggFunc, Aggregate, Op, Order, Predicate, Query
from connectors.rowfilter import parse_row_filter

__all__ = [
    "ALL_PUSHDOWN",
    "NO_PUSHDOWN",
    "AggFunc",
    "Aggregate",
    "AggregateNotAllowed",
    "AggregateRequired",
    "Chunk",
    "ColumnNotAllowed",
    "Connector",
    "ConnectorConfigError",
    "ConnectorError",
    "DatasetInfo",
    "Format",
    "LimitOutOfRange",
    "Op",
    "Order",
    "PathRefused",
    "PermittedQuery",
    "Predicate",
    "Pushdown",
    "Query",
    "QueryError",
    "SchemaMismatch",
    "SourceError",
    "SourceRefusedQuery",
    "SourceRejected",
    "SourceTimeout",
    "SourceUnavailable",
    "TargetRefused",
    "TooManyValues",
    "UnknownColumn",
    "ValueRefused",
    "WrongValueType",
    "encode",
    "narrow",
    "parse_row_filter",
]
