"""One connection's guard on its own: what it writes, when it closes, which timer runs.

The guard's IO is a transport and ``loop.call_later``; here they are a transport that keeps
what it is told and a clock whose timers fire when the test says (so no test waits). The
same limits over real TLS sockets, on both parsers: test_http_guard.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from gateway.http.connection_limits import Admission, ConnectionCounter, ConnectionLimits
from gateway.http.guard import ConnectionGuard, ParserState, raw_problem
from gateway.http.head_meter import HeadLimits

LIMITS = ConnectionLimits(
    head=HeadLimits(max_request_line=40, max_head_bytes=120, max_headers=3),
    header_timeout=2.5,
    body_timeout=30,
    idle_timeout=5,
    send_timeout=60,
    max_connections=10,
    max_connections_per_source=1,
)
SOURCE = "192.0.2.1"
HEAD = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


class Timer:
    """What ``loop.call_later`` returns: a callback the clock may run, unless cancelled."""

    def __init__(self, delay: float, callback: Callable[..., None], args: tuple[Any, ...]):
        self.delay = delay
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    """The part of an event loop the guard uses: ``call_later``; timers run by :meth:`fire`."""

    def __init__(self) -> None:
        self.timers: list[Timer] = []

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> Timer:
        timer = Timer(delay, callback, args)
        self.timers.append(timer)
        return timer

    def pending(self) -> list[Timer]:
        return [t for t in self.timers if not t.cancelled]

    def fire(self) -> None:
        """Run the one pending timer (as the loop would once its delay passed)."""
        (timer,) = self.pending()
        self.timers.remove(timer)
        timer.callback(*timer.args)


class Transport:
    """An asyncio transport that keeps what is written and whether it was closed or aborted."""

    def __init__(self) -> None:
        self.written = b""
        self.closing = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        assert not self.closing
        self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True
        self.aborted = True


class Parser:
    """What the guard asks the HTTP protocol, set by each test."""

    def __init__(self) -> None:
        self.in_body = False
        self.busy = False
        self.reading_paused = False
        self.abandoned = 0

    def state(self) -> ParserState:
        def abandon() -> None:
            self.abandoned += 1

        return ParserState(
            in_body=lambda: self.in_body,
            busy=lambda: self.busy,
            reading_paused=lambda: self.reading_paused,
            abandon=abandon,
        )


class Connection:
    """A guard, its counter, clock, transport and parser."""

    def __init__(self, counter: ConnectionCounter | None = None) -> None:
        self.counter = counter or ConnectionCounter(LIMITS)
        self.clock = Clock()
        self.transport = Transport()
        self.parser = Parser()
        loop: Any = self.clock  # the one loop method the guard calls
        self.guard = ConnectionGuard(LIMITS, self.counter, loop, self.parser.state())

    def open(self, admission: Admission | None = None) -> None:
        transport: Any = self.transport
        self.guard.open(transport, SOURCE, admission)

    def send(self, data: bytes) -> list[bytes]:
        pieces = list(self.guard.pieces(data))
        self.guard.after_data()
        return pieces

    def timer(self) -> tuple[str, float]:
        (timer,) = self.clock.pending()
        return timer.args[0] if timer.args else "send", timer.delay

    def problem(self) -> tuple[bytes, dict[str, Any]]:
        head, _, body = self.transport.written.partition(b"\r\n\r\n")
        return head, json.loads(body)


def _opened() -> Connection:
    connection = Connection()
    connection.open()
    return connection


def test_raw_problem_is_a_whole_response_that_closes() -> None:
    assert raw_problem(400, "bad-request", "Bad request", "no") == (
        b"HTTP/1.1 400 Bad Request\r\n"
        b"content-type: application/problem+json\r\n"
        b"content-length: 89\r\n"
        b"connection: close\r\n"
        b"\r\n"
        b'{"type":"urn:sluis:problem:bad-request","title":"Bad request","status":400,'
        b'"detail":"no"}'
    )
    with_header = raw_problem(503, "x", "X", "y", headers={"retry-after": "5"})
    assert with_header.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"connection: close\r\nretry-after: 5\r\n\r\n" in with_header


def test_an_admitted_connection_is_counted_and_waits_idle() -> None:
    connection = _opened()
    assert connection.guard.admitted
    assert (connection.counter.total, connection.counter.per_source) == (1, {SOURCE: 1})
    assert connection.timer() == ("idle", 5)
    assert connection.transport.written == b""


def test_over_the_cap_a_connection_gets_503_and_is_closed() -> None:
    counter = ConnectionCounter(LIMITS)
    assert counter.admit(SOURCE)  # the one connection this address may have
    connection = Connection(counter)
    connection.open()
    assert not connection.guard.admitted
    head, problem = connection.problem()
    assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"\r\nretry-after: 5" in head
    assert problem == {
        "type": "urn:sluis:problem:too-many-connections",
        "title": "Too many connections",
        "status": 503,
        "detail": "the gateway serves no more connections from this address now; retry later",
    }
    assert connection.transport.closing
    assert not connection.transport.aborted
    assert connection.parser.abandoned == 1
    assert connection.clock.pending() == []
    assert connection.send(HEAD) == []  # nothing reaches the parser
    connection.guard.close()
    assert counter.total == 1  # the refused connection was never counted


def test_a_connection_refused_at_accept_gets_503_and_frees_its_refusal() -> None:
    counter = ConnectionCounter(LIMITS)
    counter.admit(SOURCE)
    assert counter.accept(SOURCE) is Admission.REFUSED
    connection = Connection(counter)
    connection.open(Admission.REFUSED)
    assert not connection.guard.admitted
    assert connection.problem()[1]["status"] == 503
    connection.guard.close()
    assert (counter.total, counter.refusing) == (1, 0)
    connection.guard.close()  # closed twice, forgotten once
    assert (counter.total, counter.refusing) == (1, 0)


def test_a_connection_admitted_at_accept_is_not_counted_again() -> None:
    counter = ConnectionCounter(LIMITS)
    assert counter.accept(SOURCE) is Admission.ADMITTED
    connection = Connection(counter)
    connection.open(Admission.ADMITTED)
    assert connection.guard.admitted
    assert counter.total == 1
    connection.guard.close()
    assert (counter.total, counter.per_source) == (0, {})
    assert not connection.guard.admitted
    assert connection.guard.closed


def test_close_stops_every_timer() -> None:
    connection = _opened()
    connection.guard.writing_paused()
    connection.guard.close()
    assert connection.clock.pending() == []


def test_pipelined_heads_are_cut_at_each_end() -> None:
    connection = _opened()
    assert connection.send(HEAD + HEAD + b"GET /x") == [HEAD, HEAD, b"GET /x"]


def test_a_body_goes_to_the_parser_whole() -> None:
    connection = _opened()
    connection.parser.in_body = True
    body = b"a" * 500 + HEAD
    assert connection.send(body) == [body]
    assert connection.timer() == ("body", 30)


def test_the_first_byte_stops_the_idle_timer_and_starts_the_head_timer() -> None:
    connection = _opened()
    assert connection.send(b"GET / HT") == [b"GET / HT"]
    assert connection.timer() == ("head", 2.5)
    (timer,) = connection.clock.pending()
    connection.send(b"TP/1.1\r\n")
    assert connection.clock.pending() == [timer]  # the head's time is not started again


def test_a_whole_head_stops_the_head_timer() -> None:
    connection = _opened()
    connection.send(b"GET / HT")
    connection.send(b"TP/1.1\r\n\r\n")
    assert connection.clock.pending() == []  # the response is under way: no timer


def test_a_head_arriving_whole_after_the_body_timer_cancels_it() -> None:
    connection = _opened()
    connection.parser.in_body = True
    connection.send(b"abc")
    connection.parser.in_body = False
    connection.send(b"")  # the body ended, nothing of a next head yet
    assert connection.clock.pending() == []


def test_the_idle_timer_stays_when_no_head_started() -> None:
    connection = _opened()
    connection.guard.after_data()
    assert connection.timer() == ("idle", 5)


def test_a_head_over_its_limit_gets_its_problem_and_nothing_more_is_parsed() -> None:
    connection = _opened()
    pieces = connection.send(HEAD + b"GET /" + b"a" * 60 + b" HTTP/1.1\r\n")
    assert pieces == [HEAD]
    head, problem = connection.problem()
    assert head.startswith(b"HTTP/1.1 414 Request-URI Too Long\r\n")
    assert problem == {
        "type": "urn:sluis:problem:request-line-too-long",
        "title": "Request line too long",
        "status": 414,
        "detail": "the request line is limited to 40 bytes",
    }
    assert connection.transport.closing
    assert connection.send(HEAD) == []


def test_a_head_over_its_limit_while_a_response_is_written_only_closes() -> None:
    connection = _opened()
    connection.parser.busy = True
    assert connection.send(b"GET /" + b"a" * 60) == []
    assert connection.transport.written == b""
    assert connection.transport.closing
    assert connection.parser.abandoned == 1


def test_a_slow_head_gets_408() -> None:
    connection = _opened()
    connection.send(b"GET / HT")
    connection.clock.fire()
    head, problem = connection.problem()
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert problem["type"] == "urn:sluis:problem:request-timeout"
    assert problem["title"] == "Request timeout"
    assert problem["detail"] == "a request head must arrive within 2.5 s"
    assert connection.transport.closing
    assert connection.clock.pending() == []


def test_a_pipelined_head_waiting_for_our_answer_gets_its_time_again() -> None:
    connection = _opened()
    connection.send(b"GET / HT")
    connection.parser.busy = True
    connection.clock.fire()
    assert not connection.transport.closing
    assert connection.timer() == ("head", 2.5)


def test_a_stalled_body_closes_the_connection_without_an_answer() -> None:
    connection = _opened()
    connection.parser.in_body = True
    connection.send(b"abc")
    connection.clock.fire()
    assert connection.transport.closing
    assert connection.transport.written == b""
    assert connection.clock.pending() == []


def test_a_body_the_server_stopped_reading_gets_its_time_again() -> None:
    connection = _opened()
    connection.parser.in_body = True
    connection.send(b"abc")
    connection.parser.reading_paused = True
    connection.clock.fire()
    assert not connection.transport.closing
    assert connection.timer() == ("body", 30)


def test_an_idle_connection_is_closed_without_an_answer() -> None:
    connection = _opened()
    connection.clock.fire()
    assert connection.transport.closing
    assert connection.transport.written == b""
    assert connection.guard.closed


def test_an_idle_timer_during_a_response_leaves_the_connection_open() -> None:
    connection = _opened()
    connection.parser.busy = True
    connection.clock.fire()
    assert not connection.transport.closing
    assert connection.clock.pending() == []


def test_a_timer_firing_after_the_close_does_nothing() -> None:
    connection = _opened()
    (timer,) = connection.clock.pending()
    connection.guard.close()
    timer.callback(*timer.args)
    assert not connection.transport.closing
    assert connection.transport.written == b""


@pytest.mark.parametrize("busy", [False, True])
def test_a_malformed_request_gets_400_unless_a_response_is_under_way(busy: bool) -> None:
    connection = _opened()
    connection.parser.busy = busy
    connection.guard.malformed()
    assert connection.transport.closing
    if busy:
        assert connection.transport.written == b""
    else:
        head, problem = connection.problem()
        assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert problem["detail"] == "the request is not valid HTTP/1.1"
        assert problem["type"] == "urn:sluis:problem:bad-request"


def test_after_data_on_a_closing_transport_arms_nothing() -> None:
    connection = _opened()
    connection.clock.timers.clear()
    connection.transport.closing = True
    connection.parser.in_body = True
    connection.guard.after_data()
    assert connection.clock.pending() == []


def test_no_answer_is_written_to_a_closing_transport() -> None:
    connection = _opened()
    connection.transport.closing = True
    connection.guard.malformed()
    assert connection.transport.written == b""
    assert connection.guard.closed


def test_a_client_that_does_not_read_is_aborted() -> None:
    connection = _opened()
    connection.clock.timers.clear()
    connection.guard.writing_paused()
    assert connection.timer() == ("send", 60)
    connection.guard.writing_paused()  # still paused: the same timer
    assert len(connection.clock.pending()) == 1
    connection.clock.fire()
    assert connection.transport.aborted
    assert connection.guard.closed
    assert connection.parser.abandoned == 1


def test_a_client_that_reads_again_is_not_aborted() -> None:
    connection = _opened()
    connection.clock.timers.clear()
    connection.guard.writing_paused()
    connection.guard.writing_resumed()
    assert connection.clock.pending() == []
    connection.guard.writing_paused()
    assert connection.timer() == ("send", 60)


def test_a_closed_connection_starts_no_send_timer_and_a_late_one_does_nothing() -> None:
    connection = _opened()
    connection.clock.timers.clear()
    connection.guard.writing_paused()
    (timer,) = connection.clock.pending()
    connection.guard.close()
    timer.callback()
    assert not connection.transport.aborted
    connection.guard.writing_paused()
    assert connection.clock.pending() == []


def test_a_send_timer_without_a_transport_does_nothing() -> None:
    connection = Connection()
    connection.guard.writing_paused()
    connection.clock.fire()
    assert not connection.guard.closed


def test_the_guard_runs_on_a_real_event_loop() -> None:
    """The clock above stands for asyncio's: the guard's timers are the loop's own."""

    async def main() -> bool:
        counter = ConnectionCounter(LIMITS)
        state = Parser().state()
        guard = ConnectionGuard(LIMITS, counter, asyncio.get_running_loop(), state)
        transport: Any = Transport()
        guard.open(transport, SOURCE)
        guard.close()
        return counter.total == 0

    assert asyncio.run(main())


# What the runs of mutmut found untested: the operator's log lines, the states before
# open and after close, and the timers a whole head in one read leaves.

LOGGER = "sluis.http.guard"


def _logged(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == LOGGER]


def test_a_new_guard_is_neither_admitted_nor_closed() -> None:
    guard = Connection().guard
    assert guard.admitted is False
    assert guard.closed is False


def test_after_close_the_guard_is_closed_and_not_admitted() -> None:
    connection = _opened()
    connection.guard.close()
    assert connection.guard.admitted is False
    assert connection.guard.closed is True


def test_a_whole_head_in_one_read_leaves_no_timer() -> None:
    connection = _opened()
    assert connection.send(HEAD) == [HEAD]
    assert connection.clock.pending() == []


def test_the_next_head_gets_its_own_time() -> None:
    connection = _opened()
    connection.send(b"GET / HT")
    (first,) = connection.clock.pending()
    assert connection.send(b"TP/1.1\r\n\r\nGET /x") == [b"TP/1.1\r\n\r\n", b"GET /x"]
    assert first.cancelled
    (second,) = connection.clock.pending()
    assert second is not first
    assert (second.args, second.delay) == (("head",), 2.5)


def test_nothing_is_armed_after_close() -> None:
    connection = _opened()
    connection.guard.close()
    connection.parser.in_body = True
    connection.guard.after_data()
    assert connection.clock.pending() == []


def test_a_malformed_request_title() -> None:
    connection = _opened()
    connection.guard.malformed()
    assert connection.problem()[1]["title"] == "Bad request"


def test_a_guard_never_opened_closes_without_writing() -> None:
    connection = Connection()
    connection.guard.malformed()
    assert connection.guard.closed
    assert connection.transport.written == b""


def test_the_connection_lost_after_an_abort_is_closed_cleanly() -> None:
    connection = _opened()
    connection.clock.timers.clear()
    connection.guard.writing_paused()
    connection.clock.fire()
    connection.guard.close()  # the protocol's connection_lost, after the abort
    assert connection.counter.total == 0


def test_a_refused_connection_is_logged_with_its_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counter = ConnectionCounter(LIMITS)
    counter.admit(SOURCE)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        Connection(counter).open()
    assert _logged(caplog) == [
        ("WARNING", "connection from 192.0.2.1 refused: too many connections")
    ]


def test_a_refused_head_is_logged_with_its_code(caplog: pytest.LogCaptureFixture) -> None:
    connection = _opened()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        connection.send(b"GET /" + b"a" * 60)
    assert _logged(caplog) == [
        ("INFO", "request head from 192.0.2.1 refused: request-line-too-long")
    ]


@pytest.mark.parametrize(("in_body", "kind"), [(False, "idle"), (True, "body")])
def test_a_timeout_is_logged_with_its_kind(
    caplog: pytest.LogCaptureFixture, in_body: bool, kind: str
) -> None:
    connection = _opened()
    if in_body:
        connection.parser.in_body = True
        connection.send(b"abc")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        connection.clock.fire()
    assert _logged(caplog) == [("INFO", f"connection from 192.0.2.1 closed: {kind} timeout")]


def test_an_abort_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    connection = _opened()
    connection.clock.timers.clear()
    connection.guard.writing_paused()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        connection.clock.fire()
    assert _logged(caplog) == [
        ("INFO", "connection from 192.0.2.1 aborted: the client does not read its response")
    ]
