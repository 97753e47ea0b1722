"""SQLAlchemy column types to Arrow types, and back for casts. Unknown types are not exposed."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from connectors._arrow import pa


def arrow_type(sql: Any, dialect: str = "") -> Any:
    """The Arrow type for a reflected SQL type, or None when it has no safe mapping.

    Integers get the width the database enforces: on PostgreSQL ``smallint``, ``integer``
    and ``bigint`` are int16, int32 and int64, so validation refuses what the column cannot
    hold. SQLite stores any integer in up to 8 bytes whatever the declared type: int64.
    Floats likewise: PostgreSQL's ``real`` (``float(p)`` with p <= 24) is float32; SQLite
    stores every ``REAL`` in 8 bytes: float64.
    """
    if isinstance(sql, sa.DateTime):
        return pa.timestamp("us", tz="UTC" if sql.timezone else None)
    if isinstance(sql, sa.Integer) and dialect in _ENFORCED_WIDTHS:
        return next(arrow for kind, arrow in _INTEGER_WIDTHS if isinstance(sql, kind))
    if isinstance(sql, sa.Float) and dialect in _ENFORCED_WIDTHS and _single(sql):
        return pa.float32()
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


SINGLE_BITS = 24  # a float(p) up to this is PostgreSQL's 4-byte real
_ENFORCED_WIDTHS = frozenset({"postgresql"})
_INTEGER_WIDTHS: tuple[tuple[type[Any], Any], ...] = (
    (sa.SmallInteger, pa.int16()),
    (sa.BigInteger, pa.int64()),
    (sa.Integer, pa.int32()),  # last: SmallInteger and BigInteger are Integers too
)


def _single(sql: Any) -> bool:
    """A single-precision float: ``REAL``, or ``FLOAT(p)`` with p <= 24 (the SQL standard's
    binary digits, as PostgreSQL reads them)."""
    precision = getattr(sql, "precision", None)
    return isinstance(sql, sa.REAL) or (precision is not None and precision <= SINGLE_BITS)


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
