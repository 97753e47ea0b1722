"""JSON from callers, parsed within bounds (pure).

``json.loads`` recurses once per nesting level, so 5000 nested arrays raise
``RecursionError``, which is not a ``ValueError`` and used to escape as a 500. Every parse
of caller-supplied JSON (JOSE headers and claims, URL parameters) goes through
:func:`loads_bounded`: the nesting depth is measured first, without recursion, and any
failure (too deep, too large, not JSON) comes out as :class:`JsonInputError`, a
``ValueError``, which the callers already turn into their normal refusal.
"""

from __future__ import annotations

import json
from typing import Any

#: Deeper than any JOSE header, JWT claim set or URL value Sluis reads (``cnf`` is depth 2).
MAX_DEPTH = 32
MAX_BYTES = 1 << 20


class JsonInputError(ValueError):
    """Caller JSON that is not parsed: malformed, too deep or too large."""


def loads_bounded(
    data: bytes | str, *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES
) -> Any:
    """``json.loads(data)``, refusing nesting over ``max_depth`` and size over ``max_bytes``."""
    if len(data) > max_bytes:
        raise JsonInputError(f"JSON larger than {max_bytes} bytes")
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise JsonInputError("JSON that is not UTF-8") from exc
    # n openers cannot nest deeper than n: the (C-speed) count spares the scan of a JOSE
    # header or claim set, which has a handful of brackets
    openers = text.count("[") + text.count("{")
    if openers > max_depth and nesting_depth(text) > max_depth:
        raise JsonInputError(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: belt and braces
        raise JsonInputError(f"not JSON: {type(exc).__name__}") from exc


def nesting_depth(text: str) -> int:
    """The deepest ``[``/``{`` nesting in ``text``, brackets inside strings not counted."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest
