"""A connection accepted for TLS, before and after its handshake, on its own.

:class:`Handshake` counts the connection at accept, drops it at once past the refusals under
way, and hands the HTTP protocol what arrived before the hand-over. Here its transport and
the HTTP protocol keep what they are told; the handshake itself (real TLS over real
sockets, and its counting under load) is test_mtls.py and test_http_guard.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from typing import Any

from gateway.http.connection_limits import (
    MAX_REFUSING,
    Admission,
    ConnectionCounter,
    ConnectionLimits,
)
from gateway.http.head_meter import HeadLimits
from gateway.http.tls_accept import Handshake, handshaking

LIMITS = ConnectionLimits(
    head=HeadLimits(max_request_line=8192, max_head_bytes=32768, max_headers=100),
    header_timeout=10,
    body_timeout=30,
    idle_timeout=5,
    send_timeout=30,
    max_connections=10,
    max_connections_per_source=1,
    unlimited_sources=(ipaddress.ip_network("10.0.0.0/8"),),
)


class RawTransport(asyncio.Transport):
    """An accepted TCP connection: its peer, and whether it was paused or aborted."""

    def __init__(self, peer: Any) -> None:
        super().__init__()
        self.peer = peer
        self.paused = False
        self.aborted = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name == "peername" else default

    def pause_reading(self) -> None:
        self.paused = True

    def abort(self) -> None:
        self.aborted = True


class Http:
    """The HTTP protocol the handshake hands over to: what it was given, in order."""

    admission: Admission | None = None

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def connection_made(self, transport: Any) -> None:
        self.calls.append(("made", transport))

    def data_received(self, data: bytes) -> None:
        self.calls.append(("data", data))

    def eof_received(self) -> None:
        self.calls.append(("eof", None))

    def connection_lost(self, exc: Exception | None) -> None:
        self.calls.append(("lost", exc))


class TlsTransport(RawTransport):
    """The TLS transport after the handshake: which protocol it delivers to."""

    def __init__(self) -> None:
        super().__init__(("192.0.2.1", 443))
        self.protocol: Any = None

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol


def _made(counter: ConnectionCounter, peer: Any) -> tuple[RawTransport, bool]:
    """Accept one connection from ``peer``; its transport, and whether TLS was started."""

    async def accept() -> tuple[RawTransport, bool]:
        handshake = Handshake(Http, None, 10, counter)  # type: ignore[arg-type]  # never used: see below
        transport = RawTransport(peer)
        handshake.connection_made(transport)
        started = handshake._task is not None
        if handshake._task is not None:
            handshake._task.cancel()  # before its first step: no TLS here, only what precedes it
            with contextlib.suppress(asyncio.CancelledError):
                await handshake._task
        return transport, started

    return asyncio.run(accept())


def test_an_accepted_connection_is_counted_by_its_address_before_tls() -> None:
    counter = ConnectionCounter(LIMITS)
    counter.admit("192.0.2.1")  # the one this address may have
    for _ in range(MAX_REFUSING):
        assert counter.accept("192.0.2.1") is Admission.REFUSED
    transport, started = _made(counter, ("192.0.2.1", 5000))
    assert transport.aborted  # past the refusals under way: closed before any TLS
    assert not started
    assert not transport.paused


def test_another_address_is_not_dropped() -> None:
    counter = ConnectionCounter(LIMITS)
    counter.admit("192.0.2.1")
    for _ in range(MAX_REFUSING):
        counter.accept("192.0.2.1")
    transport, started = _made(counter, ("192.0.2.2", 5000))
    assert not transport.aborted
    assert started
    assert transport.paused  # the ClientHello is the TLS protocol's to read


def test_a_connection_is_counted_under_its_address() -> None:
    counter = ConnectionCounter(LIMITS)
    _made(counter, ("192.0.2.7", 5000))
    assert (counter.total, counter.per_source, counter.refusing) == (1, {"192.0.2.7": 1}, 0)


def test_a_connection_without_a_peer_address_counts_in_the_total_only() -> None:
    counter = ConnectionCounter(LIMITS)
    _made(counter, None)  # a Unix socket has no (host, port)
    assert (counter.total, counter.per_source) == (1, {})


def test_the_hand_over_gives_the_http_protocol_everything_in_order() -> None:
    counter = ConnectionCounter(LIMITS)
    made: list[Http] = []

    def make_http() -> Http:
        made.append(Http())
        return made[-1]

    handshake = handshaking(make_http, None, 10, counter)()  # type: ignore[arg-type]  # not used
    handshake.data_received(b"GET / ")
    handshake.data_received(b"HTTP/1.1\r\n")
    handshake.eof_received()
    error = ConnectionResetError("gone")
    handshake.connection_lost(error)
    tls = TlsTransport()
    handshake._hand_over(tls, Admission.REFUSED)
    (http,) = made
    assert http.admission is Admission.REFUSED
    assert tls.protocol is http
    assert http.calls == [
        ("made", tls),
        ("data", b"GET / "),
        ("data", b"HTTP/1.1\r\n"),
        ("eof", None),
        ("lost", error),
    ]
    assert handshake._early == []


def test_a_quiet_hand_over_gives_only_the_connection() -> None:
    made: list[Http] = []

    def make_http() -> Http:
        made.append(Http())
        return made[-1]

    handshake = Handshake(make_http, None, 10, ConnectionCounter(LIMITS))  # type: ignore[arg-type]  # not used
    tls = TlsTransport()
    handshake._hand_over(tls, Admission.ADMITTED)
    assert made[0].calls == [("made", tls)]
    assert made[0].admission is Admission.ADMITTED


def test_a_connection_lost_cleanly_is_handed_over_as_such() -> None:
    made: list[Http] = []

    def make_http() -> Http:
        made.append(Http())
        return made[-1]

    handshake = Handshake(make_http, None, 10, ConnectionCounter(LIMITS))  # type: ignore[arg-type]  # not used
    handshake.connection_lost(None)
    tls = TlsTransport()
    handshake._hand_over(tls, Admission.ADMITTED)
    assert made[0].calls == [("made", tls), ("lost", None)]
