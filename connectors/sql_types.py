"""SQLAlchemy column types to Arrow types, and back for casts. Unknown types are not exposed."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from connectors._arrow import pa


def arrow_type(sql: Any) -> Any:
    """The Arrow type for a reflected SQL type, or None when it has no safe mapping."""
    if isinstance(sql, sa.DateTime):
        return pa.timestamp("us", tz="UTC" if sql.timezone else None)
    for kind, arrow in _ARROW:
        if isinstance(sql, kind):
            return arrow
    return None


_ARROW: tuple[tuple[type[Any], Any], ...] = (
    (sa.Boolean, pa.bool_()),
    (sa.Integer, pa.int64()),
    (sa.Float, pa.float64()),
    (sa.Numeric, pa.float64()),  # read as float (cast in SQL): exact decimals are lost
    (sa.Date, pa.date32()),
    (sa.String, pa.string()),
)


def sql_type(arrow: Any) -> Any:
    """The SQLAlchemy type to read an Arrow-typed value as."""
    if pa.types.is_boolean(arrow):
        return sa.Boolean()
    if pa.types.is_integer(arrow):
        return sa.BigInteger()
    if pa.types.is_floating(arrow):
        return sa.Float()
    if pa.types.is_timestamp(arrow):
        return sa.DateTime(timezone=arrow.tz is not None)
    if pa.types.is_date(arrow):
        return sa.Date()
    return sa.String()
