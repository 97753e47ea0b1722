"""RFC 8785 JSON Canonicalization Scheme for the JSON subset audit entries use (pure).

Values are ``None``, ``bool``, ``int``, ``str``, lists/tuples and ``dict`` with ``str``
keys. Floats are refused outright (entries count rows and bytes; they never need one),
and so are integers outside ``±(2**53 - 1)``, which an IEEE double, and therefore
RFC 8785's number serialization, cannot carry exactly. Within that range RFC 8785 prints
an integer in plain decimal, which is what ``str(int)`` does.

Strings escape ``"``, ``\\`` and the C0 controls (``\\b \\f \\n \\r \\t`` in short form, the
rest as ``\\u00xx`` in lowercase hex) and keep everything else as UTF-8; a lone surrogate
is refused. Object members are sorted by their keys' UTF-16 code units.

:func:`loads` is the strict reader verification uses: no floats, no NaN, no duplicate keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.audit.errors import EntryError

MAX_SAFE_INTEGER = 2**53 - 1
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r"}
_SHORT_ESCAPES["\t"] = "\\t"
_CONTROL_LIMIT = 0x20


def canonical(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of ``value``; :class:`EntryError` if impossible."""
    parts: list[str] = []
    _encode(value, parts)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EntryError("not-canonical", "a string holds a lone surrogate") from exc


def loads(data: bytes | str) -> Any:
    """Parse JSON strictly: floats, NaN/Infinity and duplicate object keys are refused."""
    try:
        return json.loads(
            data,
            parse_float=_refuse_float,
            parse_constant=_refuse_float,
            object_pairs_hook=_unique_keys,
        )
    except (ValueError, RecursionError) as exc:
        raise EntryError("not-canonical", f"not strict JSON: {exc}") from exc


def _encode(value: Any, out: list[str]) -> None:
    if value is None or isinstance(value, bool):
        out.append({None: "null", True: "true", False: "false"}[value])
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise EntryError("not-canonical", f"integer {value} beyond 2**53")
        out.append(str(value))
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, Mapping):
        _object(value, out)
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        out.append("[")
        for i, item in enumerate(value):
            out.append("," if i else "")
            _encode(item, out)
        out.append("]")
    else:
        raise EntryError("not-canonical", f"{type(value).__name__} is not part of the subset")


def _object(value: Mapping[Any, Any], out: list[str]) -> None:
    if not all(isinstance(key, str) for key in value):
        raise EntryError("not-canonical", "object keys must be strings")
    out.append("{")
    for i, key in enumerate(sorted(value, key=_utf16_key)):
        out.append(("," if i else "") + _string(key) + ":")
        _encode(value[key], out)
    out.append("}")


def _utf16_key(key: str) -> bytes:
    try:
        return key.encode("utf-16-be")
    except UnicodeEncodeError as exc:
        raise EntryError("not-canonical", "a key holds a lone surrogate") from exc


def _string(text: str) -> str:
    escaped = []
    for char in text:
        if char in _SHORT_ESCAPES:
            escaped.append(_SHORT_ESCAPES[char])
        elif ord(char) < _CONTROL_LIMIT:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def _refuse_float(text: str) -> Any:
    raise ValueError(f"number {text} is not an integer")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result
