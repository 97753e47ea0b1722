"""uvicorn's two HTTP protocols (with the TLS shim) behind a :class:`ConnectionGuard`.

:func:`guarded_protocol` makes, for one server, a subclass holding that server's limits and
its connection counter; pass it as uvicorn's ``http=`` option (``gateway.server`` does).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import h11
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from gateway.http.connection_limits import Admission, ConnectionCounter, ConnectionLimits
from gateway.http.guard import ConnectionGuard, ParserState
from gateway.http.tls_scope import TLSH11Protocol, TLSHttpToolsProtocol


class _Guarded(asyncio.Protocol):
    """What both guarded protocols add to uvicorn's: the guard opened with the connection,
    fed every chunk before the parser, told of a malformed request, of writes paused and
    resumed, and closed with the connection. First among the bases, so it wraps uvicorn's
    protocol (``super()`` is the TLS shim's)."""

    limits: ClassVar[ConnectionLimits]
    counter: ClassVar[ConnectionCounter]
    #: The verdict given at accept time (gateway.http.tls_accept sets it before
    #: connection_made); None: count the connection when it is made.
    admission: Admission | None = None
    guard: ConnectionGuard
    client: tuple[str, int] | None  # uvicorn's: the peer's address once connected

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # uvicorn narrows BaseTransport to Transport the same way
        super().connection_made(transport)
        self.guard.open(transport, self.client[0] if self.client else None, self.admission)

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.close()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        for piece in self.guard.pieces(data):
            super().data_received(piece)
        self.guard.after_data()

    def send_400_response(self, msg: str) -> None:  # noqa: ARG002 - uvicorn's text is not sent
        self.guard.malformed()

    def pause_writing(self) -> None:
        super().pause_writing()
        self.guard.writing_paused()

    def resume_writing(self) -> None:
        super().resume_writing()
        self.guard.writing_resumed()


class GuardedHttpToolsProtocol(_Guarded, TLSHttpToolsProtocol):
    """httptools, with every chunk measured before the parser sees it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn types the keep-alive as int; loop.call_later takes the float we configure.
        self.timeout_keep_alive = self.limits.idle_timeout  # type: ignore[assignment]
        self._in_body = False
        self._running: RequestResponseCycle | None = None
        state = ParserState(
            in_body=lambda: self._in_body,
            busy=lambda: self.cycle is not None and not self.cycle.response_complete,
            reading_paused=lambda: self.flow.read_paused,
            abandon=self._abandon,
        )
        self.guard = ConnectionGuard(self.limits, self.counter, self.loop, state)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        self._running = cycle
        super()._start_asgi_task(cycle, app)

    def _abandon(self) -> None:
        # With pipelining, self.cycle is the newest request, not the one being answered.
        for cycle in (self._running, self.cycle, *(queued for queued, _ in self.pipeline)):
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()

    def on_headers_complete(self) -> None:
        self._in_body = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        super().on_message_complete()


class GuardedH11Protocol(_Guarded, TLSH11Protocol):
    """h11, with every chunk measured before the parser sees it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn types the keep-alive as int; loop.call_later takes the float we configure.
        self.timeout_keep_alive = self.limits.idle_timeout  # type: ignore[assignment]
        state = ParserState(
            in_body=lambda: self.conn.their_state is h11.SEND_BODY,
            busy=lambda: self.cycle is not None and not self.cycle.response_complete,
            reading_paused=lambda: self.flow.read_paused,
            abandon=self._abandon,
        )
        self.guard = ConnectionGuard(self.limits, self.counter, self.loop, state)

    def _abandon(self) -> None:
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True
            self.cycle.message_event.set()


_GUARDED: dict[type[asyncio.Protocol], type[asyncio.Protocol]] = {
    TLSHttpToolsProtocol: GuardedHttpToolsProtocol,
    TLSH11Protocol: GuardedH11Protocol,
}


def guarded_protocol(
    base: type[asyncio.Protocol], limits: ConnectionLimits
) -> type[asyncio.Protocol]:
    """The guarded form of ``base`` (a tls_scope protocol) with ``limits`` and a fresh counter."""
    guarded = _GUARDED.get(base)
    if guarded is None:
        raise TypeError(
            f"no guarded form of {base.__name__}: use a gateway.http.tls_scope protocol"
        )
    counter = ConnectionCounter(limits)
    return type(guarded.__name__, (guarded,), {"limits": limits, "counter": counter})
