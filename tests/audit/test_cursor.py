"""Issue 18: the entries API's keyset cursors, parsed strictly (pure).

A cursor is the caller's to send back: each way one can fail to be this sort's cursor is a
``bad-cursor`` with its own sentence, and the lengths next to the limit are tried.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.audit.cursor import MAX_CURSOR, CursorError, decode_cursor, encode_cursor
from gateway.audit.errors import AuditError
from gateway.audit.repository import SortColumn

AT = datetime(2026, 11, 27, 12, 0, 5, tzinfo=UTC)


def _raw(value: object) -> str:
    """A cursor of any JSON, as a forger would write it (unpadded base64url)."""
    data = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _refused(text: str, sort: SortColumn = "event", order: str = "asc") -> str:
    with pytest.raises(CursorError) as caught:
        decode_cursor(text, sort, order)
    assert isinstance(caught.value, AuditError)
    assert caught.value.code == "bad-cursor"
    assert str(caught.value) == f"bad-cursor: {caught.value.detail}"
    return caught.value.detail


def test_a_cursor_is_unpadded_base64url_of_canonical_json() -> None:
    cursor = encode_cursor("time", "desc", AT, 7)
    expected = b'["time","desc","2026-11-27T12:00:05+00:00",7]'
    assert cursor == base64.urlsafe_b64encode(expected).rstrip(b"=").decode("ascii")
    assert "=" not in cursor
    assert encode_cursor("event", "asc", "access-decision", 0) == _raw(
        ["event", "asc", "access-decision", 0]
    )
    assert encode_cursor("dataset", "asc", None, 3) == _raw(["dataset", "asc", None, 3])


@pytest.mark.parametrize("value", ["", "a", "ab", "abc", "abcd", "ü?>~"])
def test_every_padding_reads_back(value: str) -> None:
    # Values of four lengths give base64 texts of every length modulo 4 once unpadded;
    # "?>~" make base64url's own characters "-" and "_".
    cursor = encode_cursor("participant", "desc", value, 12)
    assert "=" not in cursor
    assert decode_cursor(cursor, "participant", "desc") == (value, 12)


def test_a_time_cursor_reads_back_as_an_aware_time() -> None:
    there = AT.astimezone(timezone(timedelta(hours=2)))
    back = decode_cursor(encode_cursor("time", "asc", there, 2**53 - 1), "time", "asc")
    assert back == (there, 2**53 - 1)
    assert back[0].utcoffset() == timedelta(hours=2)
    assert decode_cursor(encode_cursor("time", "asc", None, 0), "time", "asc") == (None, 0)


def test_the_length_limit_exactly() -> None:
    assert MAX_CURSOR == 2048
    # At the limit the text is read (and is no cursor); one past it is not even read.
    assert _refused("A" * MAX_CURSOR) == "not a cursor of this API"
    assert _refused("A" * (MAX_CURSOR + 1)) == "cursor too long"
    padded = encode_cursor("event", "asc", "x" * 1400, 1)
    assert len(padded) <= MAX_CURSOR
    assert decode_cursor(padded, "event", "asc") == ("x" * 1400, 1)


@pytest.mark.parametrize(
    "text",
    [
        "not a cursor!",  # not base64url
        "A",  # one character: no byte
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),  # not UTF-8
        _raw(["event", "asc", "x", 1.5]),  # a float: not strict JSON
        base64.urlsafe_b64encode(b'{"a":1,"a":2}').decode(),  # a duplicate key
    ],
)
def test_what_does_not_decode(text: str) -> None:
    assert _refused(text) == "not a cursor of this API"


@pytest.mark.parametrize(
    "value",
    [
        {"event": "asc"},
        {"a": 1, "b": 2, "c": 3, "d": 4},  # four parts, but no list
        "event",
        ["event", "asc", "x"],
        ["event", "asc", "x", 1, 2],
        ["dataset", "asc", "x", 1],
        ["event", "desc", "x", 1],
        ["asc", "event", "x", 1],
        [],
    ],
)
def test_another_sort_or_order(value: object) -> None:
    assert _refused(_raw(value)) == "the cursor belongs to another sort or order"


@pytest.mark.parametrize("index", ["1", True, False, None, -1, [1]])
def test_an_index_that_is_no_entry_index(index: object) -> None:
    assert _refused(_raw(["event", "asc", "x", index])) == (
        "the cursor's index is not an entry index"
    )


def test_the_index_bounds() -> None:
    assert decode_cursor(_raw(["event", "asc", "x", 0]), "event", "asc") == ("x", 0)
    largest = 2**63 - 1  # the largest index a log can hold (a signed 64-bit column)
    assert decode_cursor(_raw(["event", "asc", "x", largest]), "event", "asc") == ("x", largest)
    assert _refused(_raw(["event", "asc", "x", 2**63])) == (
        "the cursor's index is not an entry index"
    )


@pytest.mark.parametrize("value", [1, True, ["x"], {"x": 1}])
def test_a_value_that_is_not_text(value: object) -> None:
    assert _refused(_raw(["event", "asc", value, 1])) == "the cursor's value is not text"
    assert _refused(_raw(["time", "asc", value, 1]), "time") == "the cursor's value is not text"


def test_only_a_time_sort_reads_its_value_as_a_time() -> None:
    assert decode_cursor(_raw(["event", "asc", "2026-11-27", 1]), "event", "asc") == (
        "2026-11-27",
        1,
    )
    assert _refused(_raw(["time", "asc", "yesterday", 1]), "time") == (
        "the cursor's time is not a time"
    )
    assert _refused(_raw(["time", "asc", "2026-11-27T12:00:00", 1]), "time") == (
        "the cursor's time has no zone"
    )
    assert decode_cursor(_raw(["time", "asc", "2026-11-27T12:00:00Z", 1]), "time", "asc") == (
        datetime(2026, 11, 27, 12, tzinfo=UTC),
        1,
    )
