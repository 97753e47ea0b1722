"""One consumer value as a Python value of a column's exact Arrow type, or the reason why not.

Pure. The type check (``WrongValueType``) comes first; then the value must be one every
source can compare the same way, or ``ValueRefused`` names the column and the rule:

==================== =================================================================
rule                 refused
==================== =================================================================
integer-range        an integer outside the column's width (int8..int64, uint8..uint64)
finite-number        NaN or an infinity (sources disagree on how they compare)
number-range         a number beyond the column's float width (float16/32/64)
text-nul             text with U+0000 (PostgreSQL cannot store it; refused everywhere)
text-utf8            text with a lone surrogate (not encodable as UTF-8)
timestamp-timezone   an aware value for a naive column, or a naive value for an aware one
timestamp-range      a timestamp outside the range of the column's unit (ns: 1677..2262)
==================== =================================================================

Aware values for an aware column are converted to the column's zone (the same instant).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from connectors._arrow import pa
from connectors.errors import ValueRefused, WrongValueType
from connectors.query import Scalar

_FLOAT_MAX = {16: 65504.0, 32: 3.4028234663852886e38, 64: 1.7976931348623157e308}
_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_UNITS_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


def scalar(column: str, kind: pa.DataType, value: Any) -> Scalar:
    """``value`` as a Python value of the column's Arrow type, or the error saying why not."""
    for check, convert, label, guard in _CONVERTERS:
        if check(kind):
            try:
                converted = convert(value)
            except (TypeError, ValueError, OverflowError):
                raise WrongValueType(column, label, value) from None
            guard(column, kind, converted)
            return _normalised(kind, converted)
    raise WrongValueType(column, f"no comparable ({kind})", value)


def _normalised(kind: pa.DataType, value: Scalar) -> Scalar:
    """Aware timestamps in the column's zone: the same instant, and the type pyarrow needs
    to compare it with the column (it has no kernel for two different zones)."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        return value
    return value.astimezone(_zone(kind.tz))


def _zone(name: str) -> tzinfo:
    """The tzinfo pyarrow gives a zone name (IANA or fixed offset); UTC if it knows none."""
    try:
        probe = pa.scalar(_EPOCH_UTC, type=pa.timestamp("us", tz=name)).as_py()
    except (pa.ArrowInvalid, ValueError, KeyError):  # a zone this host does not know
        return UTC
    return probe.tzinfo if isinstance(probe, datetime) and probe.tzinfo is not None else UTC


def _int_range(column: str, kind: pa.DataType, value: Any) -> None:
    bits = kind.bit_width
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if _signed(kind) else (0, 2**bits - 1)
    if not low <= value <= high:
        raise ValueRefused(column, "integer-range", f"outside {kind} ({low}..{high})")


def _signed(kind: pa.DataType) -> bool:
    return bool(pa.types.is_signed_integer(kind))


def _float_range(column: str, kind: pa.DataType, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueRefused(column, "finite-number", "NaN and infinities cannot be compared")
    limit = _FLOAT_MAX[kind.bit_width]
    if abs(value) > limit:
        raise ValueRefused(column, "number-range", f"beyond {kind} (±{limit:.7g})")


def _text(column: str, _kind: pa.DataType, value: Any) -> None:
    if "\x00" in value:
        raise ValueRefused(column, "text-nul", "text may not contain U+0000")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueRefused(column, "text-utf8", "text is not valid UTF-8") from None


def _timestamp(column: str, kind: pa.DataType, value: Any) -> None:
    if (value.tzinfo is None) != (kind.tz is None):
        want = "naive (no offset)" if kind.tz is None else f"aware (with an offset; {kind.tz})"
        raise ValueRefused(column, "timestamp-timezone", f"the column takes {want} timestamps")
    naive = value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)
    per_second = _UNITS_PER_SECOND[kind.unit]
    delta = naive - _EPOCH
    units = (delta.days * 86_400 + delta.seconds) * per_second
    units += delta.microseconds * per_second // 10**6
    if not -(2**63) <= units < 2**63:
        raise ValueRefused(column, "timestamp-range", f"outside the range of {kind}")


def _none(_column: str, _kind: pa.DataType, _value: Any) -> None:
    return None


def _to_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(value)
    return value


def _to_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(value)
    try:
        return float(value)
    except OverflowError:  # an int beyond any float: kept, and refused by its range check
        return value


def _to_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def _to_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(value)
    return value


def _to_date(value: Any) -> date:
    if isinstance(value, datetime):
        raise TypeError(value)
    if isinstance(value, date):
        return value
    return date.fromisoformat(_to_str(value))


def _to_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(_to_str(value))


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


Guard = Callable[[str, pa.DataType, Any], None]
_CONVERTERS: tuple[tuple[Callable[[Any], bool], Callable[[Any], Any], str, Guard], ...] = (
    (pa.types.is_integer, _to_int, "integer", _int_range),
    (pa.types.is_floating, _to_float, "number", _float_range),
    (_is_text, _to_str, "text", _text),
    (pa.types.is_boolean, _to_bool, "true/false", _none),
    (pa.types.is_date, _to_date, "date (YYYY-MM-DD)", _none),
    (pa.types.is_timestamp, _to_datetime, "timestamp (ISO 8601)", _timestamp),
)
