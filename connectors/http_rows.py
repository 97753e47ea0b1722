"""Rows from an HTTP answer as it arrives: a JSON array of objects, or JSON lines.

Pure: bytes in, rows out, a bounded number at a time. A JSON array is read with ijson's
event parser (``basic_parse_coro``, no prefixes kept, so nesting costs one counter): each
top-level object becomes a row of its scalar fields; a nested value is skipped and stands
as ``NESTED`` (which no Arrow type accepts), so a declared column holding one is a schema
mismatch while an undeclared one is ignored, however deep. JSON lines are split on
newlines, one ``json.loads`` a line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import ijson

from connectors.errors import SchemaMismatch, SourceRejected

Row = dict[str, Any]
NESTED = object()  # a nested value where a row's field holds a scalar
_SCALARS = frozenset({"null", "boolean", "integer", "double", "number", "string"})


class ArrayRows:
    """Rows of a JSON array of objects, fed chunk by chunk."""

    def __init__(self) -> None:
        self._events = ijson.sendable_list()
        self._parser = ijson.basic_parse_coro(self._events, use_float=True)
        self._depth = 0  # 0 outside, 1 in the array, 2 in a row, more in a nested value
        self._row: Row = {}
        self._key = ""

    def feed(self, chunk: bytes) -> list[Row]:
        """The rows that ``chunk`` completes."""
        try:
            self._parser.send(chunk)
        except ijson.JSONError as exc:
            raise SourceRejected("the upstream did not answer JSON") from exc
        return self._drain()

    def close(self) -> list[Row]:
        """The last rows; ``SourceRejected`` for an answer cut short."""
        try:
            self._parser.close()
        except ijson.JSONError as exc:
            raise SourceRejected("the upstream's JSON is incomplete or malformed") from exc
        rows = self._drain()
        if self._depth != 0:
            raise SourceRejected("the upstream's JSON is incomplete")
        return rows

    def _drain(self) -> list[Row]:
        rows: list[Row] = []
        for event, value in self._events:
            if self._step(event, value):
                rows.append(self._row)
        del self._events[:]
        return rows

    def _step(self, event: str, value: Any) -> bool:
        """Follow one event; True when it ends a row."""
        opens, closes = event in ("start_map", "start_array"), event in ("end_map", "end_array")
        if self._depth >= 2 and (opens or closes):  # noqa: PLR2004 (inside a row)
            if opens and self._depth == 2:  # noqa: PLR2004 (a field's value is nested)
                self._row[self._key] = NESTED
            self._depth += 1 if opens else -1
            return closes and self._depth == 1
        if self._depth > 2:  # noqa: PLR2004 (a key or scalar inside a nested value)
            return False
        if self._depth == 2:  # noqa: PLR2004 (a row's key or scalar)
            if event == "map_key":
                self._key = value
            else:
                self._row[self._key] = value
            return False
        if self._depth == 0 and event == "start_array":
            self._depth = 1
        elif self._depth == 1 and event == "start_map":
            self._depth, self._row = 2, {}
        elif self._depth == 1 and event == "end_array":
            self._depth = 0
        elif event in _SCALARS or opens:
            raise SchemaMismatch("the upstream did not answer a list of objects")
        return False


class LineRows:
    """Rows of JSON lines (one object a line), fed chunk by chunk."""

    def __init__(self) -> None:
        self._pending: list[bytes] = []  # the unfinished line's pieces

    def feed(self, chunk: bytes) -> list[Row]:
        """The rows of the lines that ``chunk`` completes."""
        first, *lines = chunk.split(b"\n")
        if not lines:
            self._pending.append(first)
            return []
        done = [b"".join([*self._pending, first]), *lines[:-1]]
        self._pending = [lines[-1]]
        return list(_parsed(done))

    def close(self) -> list[Row]:
        """The last line's row, if it had no newline."""
        rows, self._pending = list(_parsed([b"".join(self._pending)])), []
        return rows


def _parsed(lines: list[bytes]) -> Iterator[Row]:
    for line in lines:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SourceRejected("the upstream did not answer JSON lines") from exc
        except RecursionError as exc:
            raise SourceRejected("the upstream's JSON is nested too deeply") from exc
        if not isinstance(row, dict):
            raise SchemaMismatch("the upstream did not answer a list of objects")
        yield row
