"""The HTTP layer protects itself before anything else runs.

uvicorn's parsers accept request heads of any size (httptools) and give clients unlimited
time to send a head or a body; it does not cap connections either (``limit_concurrency``
still accepts every connection and answers 503 only once a request head has been parsed).
:class:`ConnectionGuard` sits in each connection's ``data_received``, before the parser:

- it measures every request head as its bytes arrive (:mod:`gateway.http.head_meter`) and
  answers 414 or 431 problem+json, then closes, before the parser has seen an oversized head;
- a head must arrive whole within ``header_timeout`` of its first byte (else 408 and close);
- a body that makes no progress for ``body_timeout`` closes the connection, unless the
  server itself stopped reading (flow control while the app is busy);
- a connection that sends nothing for ``idle_timeout`` is closed, before its first request
  as after each response (uvicorn's keep-alive timer gets the same value);
- a response the client does not read (the write buffer stays full) for ``send_timeout``
  aborts the connection, so a slow reader cannot hold a task and its buffers for ever;
- requests the parser cannot read get a 400 problem+json instead of uvicorn's plain text;
- at most ``max_connections`` connections in total and ``max_connections_per_source`` from
  one peer address (trusted proxies excepted) are served; the next one is answered 503
  problem+json and closed.

Each chunk is cut at every head's end and fed to the parser piece by piece, so pipelined
heads are measured too; only bytes that follow a request *body* within the same read are left
to the parser unmeasured (at most one read, 256 KiB; h11 keeps its own cap as a backstop).

With TLS, connections are counted from the moment they are accepted, before their
handshake (:mod:`gateway.http.tls_accept`): a connection over a cap still does its handshake
to be told 503, but only :data:`~gateway.http.connection_limits.MAX_REFUSING` at a time; past
that it is closed before any TLS work. Without TLS (the health port, ``plain_http``) a
connection is counted when it is made.
"""

from __future__ import annotations

import asyncio
import http
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from gateway.http.connection_limits import Admission, ConnectionCounter, ConnectionLimits
from gateway.http.head_meter import HeadMeter, HeadRefused
from gateway.http.problems import PROBLEM_JSON, TYPE_PREFIX

log = logging.getLogger("sluis.http.guard")


def raw_problem(
    status: int, code: str, title: str, detail: str, *, headers: dict[str, str] | None = None
) -> bytes:
    """A whole HTTP/1.1 problem+json response that closes the connection."""
    body = json.dumps(
        {"type": TYPE_PREFIX + code, "title": title, "status": status, "detail": detail},
        separators=(",", ":"),
    ).encode()
    fields = {
        "content-type": PROBLEM_JSON,
        "content-length": str(len(body)),
        "connection": "close",
        **(headers or {}),
    }
    head = f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    return (head + "\r\n").encode("ascii") + body


@dataclass(frozen=True)
class ParserState:
    """What the guard asks the protocol: is a body being read, is a response under way,
    has flow control stopped reading; and how to drop the response under way."""

    in_body: Callable[[], bool]
    busy: Callable[[], bool]
    reading_paused: Callable[[], bool]
    #: Make the response under way a no-op before an abort (as if the client had left).
    abandon: Callable[[], None]


class ConnectionGuard:
    """The limits of one connection: call :meth:`open`, then parse the :meth:`pieces` of every
    chunk and call :meth:`after_data`, and :meth:`close` at the end."""

    def __init__(
        self,
        limits: ConnectionLimits,
        counter: ConnectionCounter,
        loop: asyncio.AbstractEventLoop,
        state: ParserState,
    ) -> None:
        self.limits = limits
        self.counter = counter
        self.loop = loop
        self.state = state
        self.meter = HeadMeter(limits.head)
        self.transport: asyncio.Transport | None = None
        self.source: str | None = None
        self.admitted = False
        self._counted: Admission | None = None
        self.closed = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_kind = ""
        self._send_timer: asyncio.TimerHandle | None = None

    def open(
        self, transport: asyncio.Transport, source: str | None, admission: Admission | None = None
    ) -> None:
        """Admit the connection (or answer 503 and close it) and start its idle timer.

        ``admission`` is the verdict given when the connection was accepted (TLS: before the
        handshake, :mod:`gateway.http.tls_accept`); without one it is counted now.
        """
        self.transport = transport
        self.source = source
        if admission is None:
            admission = Admission.ADMITTED if self.counter.admit(source) else None
        self._counted = admission
        self.admitted = admission is Admission.ADMITTED
        if not self.admitted:
            log.warning("connection from %s refused: too many connections", source)
            self._answer_and_close(
                503,
                "too-many-connections",
                "Too many connections",
                "the gateway serves no more connections from this address now; retry later",
                {"retry-after": "5"},
            )
            return
        self._arm("idle", self.limits.idle_timeout)

    def pieces(self, data: bytes) -> Iterator[bytes]:
        """``data`` cut at each head's end, for the parser; nothing once refused.

        Feed each piece to the parser before asking for the next: whether the bytes after a
        head are a body or the next pipelined head depends on what the parser made of it.
        """
        if self.closed:
            return
        if self._timer_kind == "idle":
            self._cancel()
        while data and not self.closed:
            if self.state.in_body():
                yield data
                return
            try:
                end = self.meter.feed(data)
            except HeadRefused as refused:
                log.info("request head from %s refused: %s", self.source, refused.code)
                self._refuse(refused.status, refused.code, refused.title, refused.detail)
                return
            if end is None:
                yield data
                return
            if self._timer_kind == "head":
                self._cancel()
            yield data[:end]
            data = data[end:]

    def after_data(self) -> None:
        """Start or restart the timer for what the connection waits for now."""
        if self.closed or self.transport is None or self.transport.is_closing():
            return
        if self.state.in_body():
            self._arm("body", self.limits.body_timeout)
        elif self.meter.started:
            if self._timer_kind != "head":
                self._arm("head", self.limits.header_timeout)
        elif self._timer_kind in {"head", "body"}:
            self._cancel()

    def malformed(self) -> None:
        """The parser gave up on the request: answer 400 problem+json (not uvicorn's text)."""
        self._refuse(400, "bad-request", "Bad request", "the request is not valid HTTP/1.1")

    def writing_paused(self) -> None:
        """The transport's write buffer is full: the client has ``send_timeout`` to read."""
        if self._send_timer is None and not self.closed:
            self._send_timer = self.loop.call_later(self.limits.send_timeout, self._send_expired)

    def writing_resumed(self) -> None:
        """The client read enough of the response."""
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

    def close(self) -> None:
        """The connection is gone: stop the timers, stop counting it."""
        self._cancel()
        self.writing_resumed()
        self.closed = True
        self.admitted = False
        if self._counted is not None:
            self.counter.forget(self._counted, self.source)
            self._counted = None

    def _arm(self, kind: str, seconds: float) -> None:
        self._cancel()
        self._timer_kind = kind
        self._timer = self.loop.call_later(seconds, self._expired, kind)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_kind = ""

    def _expired(self, kind: str) -> None:
        self._timer = None
        self._timer_kind = ""
        if self.closed:
            return
        if kind == "body" and self.state.reading_paused():
            self._arm("body", self.limits.body_timeout)  # the app, not the client, is slow
            return
        if kind == "head" and self.state.busy():
            # A pipelined head while we still answer the request before it: the client may
            # rightly wait for our answer; its time starts again.
            self._arm("head", self.limits.header_timeout)
            return
        if kind == "idle" and self.state.busy():
            return
        log.info("connection from %s closed: %s timeout", self.source, kind)
        if kind == "head":
            self._refuse(
                408,
                "request-timeout",
                "Request timeout",
                f"a request head must arrive within {self.limits.header_timeout:g} s",
            )
        else:
            self._close_transport()

    def _send_expired(self) -> None:
        self._send_timer = None
        if self.closed or self.transport is None:
            return
        log.info("connection from %s aborted: the client does not read its response", self.source)
        self._cancel()
        self.closed = True
        self.state.abandon()
        self.transport.abort()  # close() would wait for the buffer the client does not read

    def _refuse(self, status: int, code: str, title: str, detail: str) -> None:
        if self.state.busy():  # a response is being written: a second one would corrupt it
            self._close_transport()
        else:
            self._answer_and_close(status, code, title, detail)

    def _answer_and_close(
        self, status: int, code: str, title: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(raw_problem(status, code, title, detail, headers=headers))
        self._close_transport()

    def _close_transport(self) -> None:
        self._cancel()
        self.closed = True
        self.state.abandon()  # an unfinished response must not write to the closed transport
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
