"""RFC 8785 JSON Canonicalization Scheme for the JSON subset audit entries use (pure).

Values are ``None``, ``bool``, ``int``, ``str``, lists/tuples and ``dict`` with ``str``
keys. Floats are refused outright (entries count rows and bytes; they never need one),
and so are integers outside ``±(2**53 - 1)``, which an IEEE double, and therefore
RFC 8785's number serialization, cannot carry exactly. Within that range RFC 8785 prints
an integer in plain decimal, which is what ``str(int)`` does.

Strings escape ``"``, ``\\`` and the C0 controls (``\\b \\f \\n \\r \\t`` in short form, the
rest as ``\\u00xx`` in lowercase hex) and keep everything else as UTF-8; a lone surrogate
is refused. Object members are sorted by their keys' UTF-16 code units.

For speed, the standard library's C encoder writes the text (:func:`_fast`) when ``value`` is
*plain* (:func:`plain_strings`): built only of exactly ``dict`` (string keys, none from
U+E000 up, where code point and UTF-16 order differ), ``list``, ``str``, ``bool``, ``None``
and ``int`` within ``±(2**53 - 1)``, for which json writes RFC 8785's text by construction;
everything else goes to the exact encoder below, which writes it or refuses it.

:func:`loads` is the strict reader verification uses: no floats, no NaN, no duplicate keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.audit.errors import EntryError

MAX_SAFE_INTEGER = 2**53 - 1
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r"}
_SHORT_ESCAPES["\t"] = "\\t"
_CONTROL_LIMIT = 0x20
_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
#: Code points from U+E000 up sort differently by code point (json) and by UTF-16 code unit.
_MAY_SORT_DIFFERENTLY = re.compile("[\ue000-\U0010ffff]")


def canonical(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of ``value``; :class:`EntryError` if impossible."""
    fast = _fast(value)
    if fast is not None:
        return fast
    parts: list[str] = []
    _encode(value, parts)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EntryError("not-canonical", "a string holds a lone surrogate") from exc


def _fast(value: Any) -> bytes | None:
    """``value`` by json's C encoder, when that is provably RFC 8785's text; else None.

    json's output is RFC 8785's for a plain value (:func:`plain_strings`): the same escapes
    (short forms, the other C0 controls as lowercase ``\\u00xx``, everything else as UTF-8),
    integers in decimal, members sorted by key. Not taken: a float or an integer beyond
    2**53, a key that is not a string (json would convert it), a tuple or a subclass (json
    writes them as something else), a key from U+E000 up (sorted by code point), a lone
    surrogate (UTF-8 cannot carry it: the exact encoder says which).
    """
    found = plain_canonical(value)
    return None if found is None else found[0]


def plain_canonical(value: Any) -> tuple[bytes, list[str]] | None:
    """:func:`canonical`'s bytes for a plain ``value`` (see :func:`_fast`) and its string
    values (:func:`plain_strings`); None when ``value`` is not plain or UTF-8 cannot carry it."""
    strings = plain_strings(value)
    if strings is None:
        return None
    try:
        return _JSON.encode(value).encode("utf-8"), strings
    except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        return None


def plain_strings(value: Any) -> list[str] | None:
    """The string values in ``value`` (keys left out) when ``value`` is plain, else None.

    Plain: only exactly ``dict`` with ``str`` keys none of which holds a character from
    U+E000 up, ``list``, ``str``, ``bool``, ``None`` and ``int`` within ``±(2**53 - 1)``
    (what :func:`_fast` may give to json's encoder). What the strings hold is not judged.
    """
    strings: list[str] = []
    try:
        return strings if _plain(value, strings) else None
    except RecursionError:
        return None


# Loops, not all() over a generator (SIM110): this walk runs on every audit append, and a
# generator costs about 0.5 µs more per list (measured); one return per kind (PLR0911).
def _plain(value: Any, strings: list[str]) -> bool:  # noqa: PLR0911
    kind = type(value)
    if kind is str:
        strings.append(value)
        return True
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or (not key.isascii() and _MAY_SORT_DIFFERENTLY.search(key)):
                return False
            if not _plain(item, strings):
                return False
        return True
    if kind is list:
        for item in value:  # noqa: SIM110
            if not _plain(item, strings):
                return False
        return True
    if kind is int:
        return bool(-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
    return value is None or kind is bool


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
