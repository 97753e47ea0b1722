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


# Each limit exactly at its boundary and one past it, with the refusal's words.

EXACT = HeadLimits(max_request_line=20, max_head_bytes=60, max_headers=2)


def _refusal(pieces: list[bytes], limits: HeadLimits = EXACT) -> HeadRefused:
    meter = HeadMeter(limits)
    with pytest.raises(HeadRefused) as refused:
        _feed_all(meter, pieces)
    return refused.value


@pytest.mark.parametrize("newline", [b"\r\n", b"\n"])
def test_a_request_line_of_exactly_the_limit_is_read(newline: bytes) -> None:
    line = b"GET /" + b"a" * 6 + b" HTTP/1.1"
    assert len(line) == EXACT.max_request_line
    head = line + newline + b"H: x" + newline + newline
    assert HeadMeter(EXACT).feed(head) == len(head)


@pytest.mark.parametrize(
    "pieces", [[b"GET /aaaaaaa HTTP/1.1\r\n"], [b"GET /aaaaaaa", b" HTTP/1.1"]]
)
def test_a_request_line_one_byte_past_the_limit_is_refused(pieces: list[bytes]) -> None:
    refused = _refusal(pieces)
    assert (refused.status, refused.code, refused.title) == (
        414,
        "request-line-too-long",
        "Request line too long",
    )
    assert refused.detail == "the request line is limited to 20 bytes"
    assert str(refused) == refused.detail


def test_the_request_line_limit_ends_with_the_line() -> None:
    # Header lines longer than the request-line limit are the head limit's business.
    head = b"GET / HTTP/1.1\r\nX: " + b"a" * 30 + b"\r\n\r\n"
    assert HeadMeter(EXACT).feed(head) == len(head)


def test_the_request_line_is_measured_across_pieces() -> None:
    meter = HeadMeter(EXACT)
    assert meter.feed(b"GET /aaaaa") is None
    assert meter.feed(b"a HTTP/1.1") is None  # 20 bytes so far: at the limit
    assert meter.feed(b"\r\nH: x\r\n\r\n") == len(b"\r\nH: x\r\n\r\n")


def test_a_head_of_exactly_the_limit_is_read_and_one_byte_more_refused() -> None:
    head = b"GET / HTTP/1.1\r\nX: " + b"a" * 37 + b"\r\n\r\n"
    assert len(head) == EXACT.max_head_bytes
    assert HeadMeter(EXACT).feed(head) == len(head)
    refused = _refusal([head[:-4] + b"a\r\n\r\n"])
    assert (refused.status, refused.code, refused.title) == (
        431,
        "headers-too-large",
        "Request header fields too large",
    )
    assert refused.detail == "the request line and headers are limited to 60 bytes"


def test_the_head_is_measured_across_pieces() -> None:
    meter = HeadMeter(EXACT)
    assert meter.feed(b"GET / HTTP/1.1\r\nX: " + b"a" * 20) is None
    assert meter.size == 39
    with pytest.raises(HeadRefused):
        meter.feed(b"a" * 22)  # 61 bytes, the end still to come


def test_exactly_the_most_headers_are_read_and_one_more_refused() -> None:
    two = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n"
    assert HeadMeter(EXACT).feed(two) == len(two)
    three = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n"
    refused = _refusal([three])  # refused before the head's end arrives
    assert (refused.status, refused.code, refused.title) == (
        431,
        "too-many-headers",
        "Request header fields too large",
    )
    assert refused.detail == "requests are limited to 2 header fields"


def test_headers_are_counted_across_pieces() -> None:
    meter = HeadMeter(EXACT)
    assert meter.feed(b"GET / HTTP/1.1\r\nA: 1\r\n") is None
    assert meter.feed(b"B: 2\r\n") is None
    assert meter.feed(b"\r\n") == 2


def test_leading_empty_lines_are_not_headers_but_count_as_bytes() -> None:
    meter = HeadMeter(EXACT)
    assert meter.feed(b"\r\n" * 3) is None
    assert meter.size == 6
    head = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n"
    assert meter.feed(head) == len(head)


def test_leading_empty_lines_in_the_same_piece_as_the_head() -> None:
    data = b"\r\n\r\nGET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\nnext"
    assert HeadMeter(EXACT).feed(data) == len(data) - len(b"next")


def test_the_end_split_between_pieces_is_found() -> None:
    for cut in range(1, 4):
        meter = HeadMeter(EXACT)
        head = b"GET / HTTP/1.1\r\nA: 1\r\n\r\n"
        assert meter.feed(head[: len(head) - cut]) is None
        assert meter.feed(head[len(head) - cut :] + b"body") == cut


def test_a_bare_lf_end_split_between_pieces_is_found() -> None:
    meter = HeadMeter(EXACT)
    assert meter.feed(b"GET / HTTP/1.1\nA: 1\n") is None
    assert meter.feed(b"\nbody") == 1


def test_the_meter_is_fresh_after_each_head() -> None:
    meter = HeadMeter(EXACT)
    head = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n"
    for _ in range(3):
        assert meter.feed(head) == len(head)
        assert (meter.size, meter.started) == (0, False)
    assert meter.feed(b"G") is None
    assert (meter.size, meter.started) == (1, True)


def test_a_new_meter_has_not_started() -> None:
    meter = HeadMeter(EXACT)
    assert (meter.size, meter.started) == (0, False)
    assert meter.feed(b"") is None
    assert not meter.started


def test_the_carriage_return_ending_the_request_line_is_not_part_of_it() -> None:
    # docs/configuration.md: the request line is method, target and version; its CRLF is
    # not counted, wherever the pieces split (here between the CR and the LF).
    meter = HeadMeter(EXACT)
    assert meter.feed(b"GET /aaaaaa HTTP/1.1\r") is None
    assert meter.feed(b"\nH: x\r\n\r\n") == len(b"\nH: x\r\n\r\n")
    refused = _refusal([b"GET /aaaaaa HTTP/1.1\r", b"x"])  # the CR was inside the line after all
    assert refused.code == "request-line-too-long"


def test_empty_lines_before_a_request_in_pieces_of_their_own() -> None:
    meter = HeadMeter(EXACT)
    assert meter.feed(b"\r\n") is None
    assert meter.feed(b"\r\n") is None
    # Still the empty lines before the request: the request line is measured from "GET".
    with pytest.raises(HeadRefused) as refused:
        meter.feed(b"\r\nGET /aaaaaaa HTTP/1.1\r\n")
    assert refused.value.code == "request-line-too-long"
    meter = HeadMeter(EXACT)
    assert meter.feed(b"\n") is None
    head = b"\nGET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n"  # the most headers: not one line more
    assert meter.feed(head) == len(head)


def test_newlines_after_the_head_in_the_same_piece_are_not_counted() -> None:
    head = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n"
    after = b"a\nb\nc\nd\n" * 10
    assert HeadMeter(EXACT).feed(head + after) == len(head)
    assert HeadMeter(EXACT).feed(b"\r\n\r\n" + head + after) == 4 + len(head)


def test_a_request_line_ended_by_a_newline_of_its_own_piece() -> None:
    meter = HeadMeter(EXACT)
    assert meter.feed(b"GET / HTTP/1.1\r") is None
    assert meter.feed(b"\n") is None
    # The request line is over: a header longer than its limit is the head limit's business.
    assert meter.feed(b"X: " + b"a" * 30 + b"\r\n\r\n") == 37


def test_too_many_headers_across_pieces_are_refused() -> None:
    meter = HeadMeter(EXACT)
    assert meter.feed(b"GET / HTTP/1.1\r\nA: 1\r\n") is None
    assert meter.feed(b"B: 2\r\n") is None
    with pytest.raises(HeadRefused) as refused:
        meter.feed(b"C: 3\r\n")
    assert refused.value.code == "too-many-headers"
