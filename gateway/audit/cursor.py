"""Opaque keyset cursors of ``GET /v1/audit/entries`` sorted by a column (pure).

A cursor names the sort it belongs to, its direction, the last entry's value in the sort
column and its index, as base64url of canonical JSON. It is the caller's to send back, so
it is parsed strictly: a cursor of another sort or direction, or one that does not decode,
is :class:`CursorError` (``bad-cursor``), never a different page.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from gateway.audit.errors import AuditError
from gateway.audit.jcs import canonical, loads
from gateway.audit.repository import SortColumn, SortKey

MAX_CURSOR = 2048
CURSOR_PARTS = 4  # sort, order, value, index


class CursorError(AuditError):
    """A cursor that is not one this sort handed out (code ``bad-cursor``)."""

    def __init__(self, detail: str) -> None:
        super().__init__("bad-cursor", detail)


def encode_cursor(sort: SortColumn, order: str, value: object, index: int) -> str:
    """The cursor after the entry ``index`` whose sort column holds ``value``."""
    if isinstance(value, datetime):
        value = value.isoformat()
    data = canonical([sort, order, value, index])
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode_cursor(text: str, sort: SortColumn, order: str) -> SortKey:
    """The ``(value, index)`` in ``text``; CursorError unless it is this sort's."""
    if len(text) > MAX_CURSOR:
        raise CursorError("cursor too long")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data: Any = loads(raw)
    except (binascii.Error, ValueError, AuditError) as exc:
        raise CursorError("not a cursor of this API") from exc
    if not isinstance(data, list) or len(data) != CURSOR_PARTS or data[:2] != [sort, order]:
        raise CursorError("the cursor belongs to another sort or order")
    _, _, value, index = data
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 2**63:
        raise CursorError("the cursor's index is not an entry index")
    if value is None:
        return None, index
    if not isinstance(value, str):
        raise CursorError("the cursor's value is not text")
    if sort != "time":
        return value, index
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CursorError("the cursor's time is not a time") from exc
    if moment.tzinfo is None:
        raise CursorError("the cursor's time has no zone")
    return moment, index
