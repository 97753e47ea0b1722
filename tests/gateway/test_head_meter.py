"""The pure head meter: where a head ends, and which heads it refuses, however the bytes split."""

from __future__ import annotations

import pytest

from gateway.http.head_meter import HeadLimits, HeadMeter, HeadRefused

LIMITS = HeadLimits(max_request_line=64, max_head_bytes=256, max_headers=4)
HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"


def _feed_all(meter: HeadMeter, pieces: list[bytes]) -> list[int | None]:
    return [meter.feed(piece) for piece in pieces]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, len(HEAD)])
def test_the_end_is_found_however_the_bytes_are_split(size: int) -> None:
    data = HEAD + b"BODY"
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    meter = HeadMeter(LIMITS)
    offset = 0
    for piece in pieces:
        end = meter.feed(piece)
        if end is not None:
            assert offset + end == len(HEAD)
            return
        offset += len(piece)
    pytest.fail("the end of the head was not found")


def test_bare_lf_heads_and_leading_empty_lines() -> None:
    meter = HeadMeter(LIMITS)
    assert meter.feed(b"\r\n\r\n") is None  # empty lines before a request are not its end
    assert meter.started
    assert meter.feed(b"GET / HTTP/1.1\nHost: x\n\nrest") == len(b"GET / HTTP/1.1\nHost: x\n\n")
    assert not meter.started  # reset for the next head


def test_a_long_request_line_is_refused_before_its_end_arrives() -> None:
    meter = HeadMeter(LIMITS)
    with pytest.raises(HeadRefused) as refused:
        _feed_all(meter, [b"GET /" + b"a" * 40, b"b" * 40])
    assert (refused.value.status, refused.value.code) == (414, "request-line-too-long")


def test_a_large_head_is_refused_before_its_end_arrives() -> None:
    meter = HeadMeter(LIMITS)
    meter.feed(b"GET / HTTP/1.1\r\n")
    with pytest.raises(HeadRefused) as refused:
        _feed_all(meter, [b"X-Big: " + b"a" * 100] * 3)
    assert (refused.value.status, refused.value.code) == (431, "headers-too-large")


def test_the_request_line_counts_towards_the_head() -> None:
    meter = HeadMeter(HeadLimits(max_request_line=64, max_head_bytes=70, max_headers=4))
    with pytest.raises(HeadRefused) as refused:
        meter.feed(b"GET /" + b"a" * 40 + b" HTTP/1.1\r\nHost: xxxxxx\r\n\r\n")
    assert refused.value.code == "headers-too-large"


def test_too_many_headers_are_refused() -> None:
    meter = HeadMeter(LIMITS)
    assert meter.feed(b"GET / HTTP/1.1\r\n" + b"A: 1\r\n" * 4 + b"\r\n") is not None
    with pytest.raises(HeadRefused) as refused:
        meter.feed(b"GET / HTTP/1.1\r\n" + b"A: 1\r\n" * 5)
    assert (refused.value.status, refused.value.code) == (431, "too-many-headers")


def test_bytes_after_the_end_are_not_counted() -> None:
    meter = HeadMeter(LIMITS)
    assert meter.feed(HEAD + b"x" * 10_000) == len(HEAD)
