"""The connectors' one error family; every error carries a stable ``code``.

::

    ConnectorError               code                  gateway maps to
    ├── QueryError               query_invalid         400  the query is malformed
    │   ├── UnknownColumn        unknown_column        400  names ``column``
    │   ├── WrongValueType       wrong_value_type      400  names ``column``
    │   ├── ValueRefused         value_refused         400  names ``column`` and ``rule``: the
    │   │                                                   value is of the right type but no
    │   │                                                   source could take it (range, NaN,
    │   │                                                   NUL, lone surrogate, time zone)
    │   ├── TooManyValues        too_many_values       400  more bound values than the budget
    │   ├── LimitOutOfRange      limit_out_of_range    400  limit outside 0..2**31-1
    │   ├── SourceRefusedQuery   source_refused_query  400  the source refused a value or the
    │                                                       size of the query (its DataError)
    │   └── QueryTooLarge        query_too_large       400  ordering or grouping needs more than
    │                                                       the memory and spill limits (named)
    ├── ColumnNotAllowed         column_not_allowed    403  the policy withholds ``column``
    ├── AggregateRequired        aggregate_required    403  the policy allows aggregates only
    ├── AggregateNotAllowed      aggregate_not_allowed 403  under a privacy unit: min/max not
    │                                                       allowed, a filter or group on the
    │                                                       unit, a sum/avg without bounds
    ├── PathRefused              path_refused          400  ``..``, absolute, link out of root
    ├── TargetRefused            target_refused        403  SSRF guard: private/loopback target,
    │                                                       redirect to another host, path or
    │                                                       method outside the pass-through list
    ├── ConnectorConfigError     connector_config      500  a dataset's configuration is unusable
    │                                                       (400 connector-config at registration)
    └── SourceError              source_error          502  the upstream failed us
        ├── SourceUnavailable    source_unavailable    502  down, refused, connection dropped
        ├── SourceTimeout        source_timeout        504  too slow
        ├── SourceRejected       source_rejected       502  answered with an error or garbage,
        │                                                   or more bytes than the cap
        ├── SchemaMismatch       schema_mismatch       502  rows do not fit the declared schema
        └── SpillFailed          spill_failed          502  the gateway's own grouping/ordering
                                                            engine failed (not for lack of room)

``reason`` is one line for the operator's log and the audit entry; ``public_reason`` is what a
remote consumer is shown. The two are the same for the consumer's own mistakes (the query);
for the provider's configuration and the source's failures (``PathRefused``,
``ConnectorConfigError``, ``SourceError``; a ``TargetRefused`` about the upstream's address)
``public_reason`` is a fixed sentence, so file names, roots, hosts and driver text never
reach a remote caller. ``gateway/`` maps codes to problem+json.
Adapters never let another exception out: ``Connector.stream`` wraps the private hook and
re-raises anything else as ``SourceError`` ``from`` the original, which the audit log keeps.
"""

from __future__ import annotations

from typing import ClassVar


class ConnectorError(Exception):
    """Base of the family: ``code`` is stable, ``reason`` is one line."""

    code: str = "connector_error"
    #: What a remote caller is shown instead of ``reason``; ``None``: the reason itself.
    fixed_public: ClassVar[str | None] = None

    def __init__(self, reason: str, *, code: str | None = None, public: str | None = None) -> None:
        self.reason = " ".join(reason.split())[:300]  # one line, bounded
        if code is not None:
            self.code = code
        self._public = public
        super().__init__(f"{self.code}: {self.reason}")

    @property
    def public_reason(self) -> str:
        """The one line a remote caller may see: never a server-side path, host or driver text."""
        return self._public or self.fixed_public or self.reason


class QueryError(ConnectorError):
    """The consumer's query is malformed (400)."""

    code = "query_invalid"


class UnknownColumn(QueryError):
    """The query names a column the dataset does not have."""

    code = "unknown_column"

    def __init__(self, column: str) -> None:
        self.column = column
        super().__init__(f"unknown column: {column!r}")


class WrongValueType(QueryError):
    """A predicate compares a column with a value of the wrong type."""

    code = "wrong_value_type"

    def __init__(self, column: str, expected: str, value: object) -> None:
        self.column = column
        super().__init__(f"column {column!r} takes {expected} values, not {type(value).__name__}")


class ValueRefused(QueryError):
    """A value of the column's type that no source can take; ``rule`` says which check."""

    code = "value_refused"

    def __init__(self, column: str, rule: str, why: str) -> None:
        self.column = column
        self.rule = rule
        super().__init__(f"column {column!r}: {why} ({rule})")


class TooManyValues(QueryError):
    """The query carries more values (bound parameters) than one query may."""

    code = "too_many_values"


class LimitOutOfRange(QueryError):
    """``limit`` (or k) outside the range every source accepts."""

    code = "limit_out_of_range"


class SourceRefusedQuery(QueryError):
    """The source refused the query for its values or size: the consumer's fault, not the source's.

    The net behind validation: a driver's data error (a value out of a column's range, text
    it cannot encode) or a bind-parameter limit. Never ``SourceUnavailable``.
    """

    code = "source_refused_query"


class ColumnNotAllowed(ConnectorError):
    """The query filters on, groups by or projects a column the policy withholds (403)."""

    code = "column_not_allowed"

    def __init__(self, column: str) -> None:
        self.column = column
        super().__init__(f"column not allowed by the policy: {column!r}")


class AggregateRequired(ConnectorError):
    """The policy allows aggregates over groups of at least k only (403)."""

    code = "aggregate_required"


class AggregateNotAllowed(ConnectorError):
    """Under a privacy unit, an aggregate or predicate the policy does not release (403)."""

    code = "aggregate_not_allowed"


class PathRefused(ConnectorError):
    """A file path that is absolute, climbs with ``..`` or leaves the root through a link."""

    code = "path_refused"
    fixed_public = (
        "the dataset's file path is refused by the gateway; the provider must fix the dataset"
    )


class TargetRefused(ConnectorError):
    """An HTTP target the connector will not reach (SSRF guard, redirects, pass-through list)."""

    code = "target_refused"


class ConnectorConfigError(ConnectorError):
    """A dataset's configuration is unusable (a provider's mistake, not a consumer's)."""

    code = "connector_config"
    fixed_public = (
        "the dataset is misconfigured; the provider must fix it (the gateway's log says how)"
    )


class SourceError(ConnectorError):
    """The upstream failed (502); subclasses say how."""

    code = "source_error"
    fixed_public = "the data source failed; the gateway's log says how"


class SourceUnavailable(SourceError):
    """The upstream is down, refused the connection or dropped it."""

    code = "source_unavailable"
    fixed_public = "the data source is unavailable"


class SourceTimeout(SourceError):
    """The upstream was too slow (504)."""

    code = "source_timeout"
    fixed_public = "the data source was too slow"


class SourceRejected(SourceError):
    """The upstream answered with an error status, garbage, or more than the size cap."""

    code = "source_rejected"
    fixed_public = "the data source answered with an error or an unusable response"


class SchemaMismatch(SourceError):
    """Rows from the upstream do not fit the dataset's declared schema."""

    code = "schema_mismatch"
    fixed_public = "the data source's rows do not fit the dataset's schema"


class QueryTooLarge(QueryError):
    """Ordering or grouping needs more than the gateway's memory and spill limits (400)."""

    code = "query_too_large"


class SpillFailed(SourceError):
    """The gateway's own grouping and ordering engine failed for another reason (502)."""

    code = "spill_failed"
