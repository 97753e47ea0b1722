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
import logging
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.http.connection_limits import (
    MAX_REFUSING,
    Admission,
    ConnectionCounter,
    ConnectionLimits,
)
from gateway.http.head_meter import HeadLimits
from gateway.http.tls_accept import Handshake, handshaking
from tests.support.pki import ClientCert, Pki

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
        handshake = Handshake(Http, None, 10, counter, close_timeout=5)  # type: ignore[arg-type]  # never used: see below
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

    handshake = handshaking(make_http, None, 10, counter, close_timeout=5)()  # type: ignore[arg-type]  # not used
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

    handshake = Handshake(make_http, None, 10, ConnectionCounter(LIMITS), close_timeout=5)  # type: ignore[arg-type]  # not used
    tls = TlsTransport()
    handshake._hand_over(tls, Admission.ADMITTED)
    assert made[0].calls == [("made", tls)]
    assert made[0].admission is Admission.ADMITTED


def test_a_connection_lost_cleanly_is_handed_over_as_such() -> None:
    made: list[Http] = []

    def make_http() -> Http:
        made.append(Http())
        return made[-1]

    handshake = Handshake(make_http, None, 10, ConnectionCounter(LIMITS), close_timeout=5)  # type: ignore[arg-type]  # not used
    handshake.connection_lost(None)
    tls = TlsTransport()
    handshake._hand_over(tls, Admission.ADMITTED)
    assert made[0].calls == [("made", tls), ("lost", None)]


# -- real handshakes on loopback: a failed one is never handed over and stops being counted ----


def _server_context(pki: Pki) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.load_verify_locations(cafile=pki.bundle)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _client_context(pki: Pki, client: ClientCert) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki.bundle)
    context.load_cert_chain(client.cert_path, client.key_path)
    return context


@dataclass
class Listener:
    """A Handshake listener on loopback: its port, counter, handshakes and HTTP protocols."""

    port: int
    counter: ConnectionCounter
    handshakes: list[Handshake] = field(default_factory=list)
    made: list[Http] = field(default_factory=list)


async def _until(condition: Callable[[], bool], what: str) -> None:
    """Wait until ``condition`` holds; bounded, so a broken guarantee fails, never hangs."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


def _serving(
    pki: Pki, timeout: float, client: Callable[[Listener], Awaitable[Any]]
) -> tuple[Any, Listener]:
    """Run ``client`` against a Handshake listener; what it returned, and the listener once
    every connection not handed over stopped being counted."""

    async def main() -> tuple[Any, Listener]:
        loop = asyncio.get_running_loop()
        counter = ConnectionCounter(LIMITS)
        listener = Listener(0, counter)

        def make_http() -> Http:
            listener.made.append(Http())
            return listener.made[-1]

        factory = handshaking(make_http, _server_context(pki), timeout, counter, close_timeout=5)

        def accepted() -> Handshake:
            listener.handshakes.append(factory())
            return listener.handshakes[-1]

        server = await loop.create_server(accepted, "127.0.0.1", 0)
        listener.port = server.sockets[0].getsockname()[1]
        try:
            result = await client(listener)
            await _until(lambda: counter.total == len(listener.made), "the count settled")
            return result, listener
        finally:
            server.close()

    return asyncio.run(main())


async def _send_not_tls(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = await reader.read()  # until the server closes
    writer.close()
    return answer


def test_a_handshake_refused_for_an_unknown_ca_is_never_handed_over(tmp_path: Path) -> None:
    """The client's certificate is from another PKI: the server refuses the handshake, the
    client is told why (the alert goes out before the close), no HTTP protocol is made, and
    the connection stops being counted."""
    pki, stranger = Pki(tmp_path / "ours"), Pki(tmp_path / "theirs")
    outsider = stranger.client("Outsider", "NTRNL-90000001")

    async def client(listener: Listener) -> str:
        context = _client_context(pki, outsider)  # trusts our server, presents their cert
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.port, ssl=context)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            await reader.read(100)  # TLS 1.3: the refusal arrives after the client's Finished
        except (ssl.SSLError, ConnectionError) as exc:
            return str(exc)
        return "answered"

    told, listener = _serving(pki, 5.0, client)
    assert "UNKNOWN_CA" in told.upper() or "unknown ca" in told.lower()
    assert listener.made == []
    assert (listener.counter.total, listener.counter.per_source) == (0, {})


def test_bytes_that_are_not_tls_end_the_handshake_and_its_count(tmp_path: Path) -> None:
    pki = Pki(tmp_path)

    async def client(listener: Listener) -> bytes:
        return await _send_not_tls(listener.port)

    answer, listener = _serving(pki, 5.0, client)
    assert b"HTTP" not in answer  # never an HTTP answer on a TLS port
    assert listener.made == []
    assert (listener.counter.total, listener.counter.per_source) == (0, {})


def test_a_handshake_that_never_starts_times_out_and_is_forgotten(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pki = Pki(tmp_path)

    async def client(listener: Listener) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        answer = await reader.read()  # sends nothing: the server gives up after 0.2 s
        writer.close()
        return answer

    with caplog.at_level(logging.DEBUG, logger="sluis.http.guard"):
        answer, listener = _serving(pki, 0.2, client)
    lines = [r.getMessage() for r in caplog.records if r.name == "sluis.http.guard"]
    assert len(lines) == 1
    assert lines[0].startswith("TLS handshake with 127.0.0.1 failed: ")
    assert "SSL handshake is taking longer than 0.2 seconds" in lines[0]  # asyncio's words
    assert answer == b""
    assert listener.made == []
    assert (listener.counter.total, listener.counter.per_source) == (0, {})


def test_a_connection_reset_mid_handshake_is_forgotten(tmp_path: Path) -> None:
    pki = Pki(tmp_path)

    async def client(listener: Listener) -> None:
        sock = socket.create_connection(("127.0.0.1", listener.port))
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # half a ClientHello
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await _until(lambda: bool(listener.handshakes), "the connection accepted")
        sock.close()  # RST

    _, listener = _serving(pki, 5.0, client)
    assert listener.made == []
    assert (listener.counter.total, listener.counter.per_source) == (0, {})


def test_a_handshake_cancelled_at_shutdown_is_forgotten_and_its_socket_closed(
    tmp_path: Path,
) -> None:
    pki = Pki(tmp_path)

    async def client(listener: Listener) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        await _until(
            lambda: bool(listener.handshakes) and listener.handshakes[-1]._task is not None,
            "TLS started",
        )
        task = listener.handshakes[-1]._task
        assert task is not None
        task.cancel()  # what stopping the server does to a handshake under way
        answer = await reader.read()  # the socket is closed (aborted), not left open
        writer.close()
        return answer

    answer, listener = _serving(pki, 30.0, client)
    assert answer == b""
    assert listener.made == []
    assert (listener.counter.total, listener.counter.per_source) == (0, {})


def test_a_refused_connection_whose_handshake_fails_gives_back_its_place(tmp_path: Path) -> None:
    """Over the per-address cap the connection is REFUSED (a 503 to come after TLS); when
    its handshake fails instead, its place among the refusals under way is given back."""
    pki = Pki(tmp_path)

    async def client(listener: Listener) -> None:
        listener.counter.admit("127.0.0.1")  # the one place this address has, taken
        await _send_not_tls(listener.port)
        await _until(lambda: listener.counter.refusing == 0, "the refusal given back")
        listener.counter.release("127.0.0.1")

    _, listener = _serving(pki, 5.0, client)
    assert (listener.counter.refusing, listener.counter.total) == (0, 0)


def test_a_good_handshake_is_handed_over_and_still_counted(tmp_path: Path) -> None:
    """The HTTP protocol gets the connection, admitted, and counts it from there (its guard
    releases it when it closes; the handshake does not)."""
    pki = Pki(tmp_path)
    member = pki.client("Member", "NTRNL-90000002")

    async def client(listener: Listener) -> None:
        context = _client_context(pki, member)
        _reader, writer = await asyncio.open_connection("127.0.0.1", listener.port, ssl=context)
        await _until(lambda: bool(listener.made), "handed over")
        writer.close()

    _, listener = _serving(pki, 5.0, client)
    (http,) = listener.made
    assert http.admission is Admission.ADMITTED
    assert [call for call, _ in http.calls][:1] == ["made"]
    assert listener.counter.total == 1


def test_each_failed_handshake_is_logged_with_its_peer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pki = Pki(tmp_path)

    async def client(listener: Listener) -> None:
        await _send_not_tls(listener.port)

    with caplog.at_level(logging.DEBUG, logger="sluis.http.guard"):
        _serving(pki, 5.0, client)
    lines = [r.getMessage() for r in caplog.records if r.name == "sluis.http.guard"]
    assert len(lines) == 1
    assert lines[0].startswith("TLS handshake with 127.0.0.1 failed: ")
    assert "HTTP_REQUEST" in lines[0]  # OpenSSL's reason: plain HTTP on a TLS port


def test_a_dropped_connection_is_logged_with_its_address(caplog: pytest.LogCaptureFixture) -> None:
    counter = ConnectionCounter(LIMITS)
    counter.admit("192.0.2.1")
    for _ in range(MAX_REFUSING):
        counter.accept("192.0.2.1")
    with caplog.at_level(logging.WARNING, logger="sluis.http.guard"):
        _made(counter, ("192.0.2.1", 5000))
    assert [r.getMessage() for r in caplog.records] == [
        "connection from 192.0.2.1 closed before TLS: too many connections"
    ]


def test_a_connection_gone_as_its_handshake_ends_is_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # asyncio's start_tls answers None when the connection went away in the very turn the
    # handshake ended (no transport to hand over); no socket makes that turn happen on
    # demand, so asyncio's answer is given here.
    from gateway.http import tls_accept  # noqa: PLC0415 - its start_tls is replaced

    counter = ConnectionCounter(LIMITS)
    calls: list[tuple[Any, ...]] = []
    made: list[Http] = []

    async def gone(_loop: Any, raw: Any, protocol: Any, context: Any, **timeouts: float) -> None:
        calls.append((raw, protocol, context, timeouts))

    def make_http() -> Http:
        made.append(Http())
        return made[-1]

    monkeypatch.setattr(tls_accept, "start_tls", gone)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)

    async def accept() -> tuple[Handshake, RawTransport]:
        handshake = Handshake(make_http, context, 7, counter, close_timeout=3)
        transport = RawTransport(("192.0.2.7", 5000))
        handshake.connection_made(transport)
        assert counter.per_source == {"192.0.2.7": 1}  # counted from accept
        assert handshake._task is not None
        await handshake._task
        return handshake, transport

    handshake, transport = asyncio.run(accept())
    assert calls == [(transport, handshake, context, {"handshake_timeout": 7, "close_timeout": 3})]
    assert made == []  # nothing to hand over
    assert (counter.total, counter.per_source) == (0, {})


def test_a_request_sent_with_the_handshakes_last_flight_reaches_the_http_protocol(
    tmp_path: Path,
) -> None:
    """The client's last handshake flight and its first request in one write: asyncio's TLS
    protocol decrypts the request in the turn the handshake ends, before the hand-over, and
    gives it to the handshake's protocol, which keeps it for the HTTP protocol."""
    pki = Pki(tmp_path)
    member = pki.client("Member", "NTRNL-90000003")
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"

    async def client(listener: Listener) -> None:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = _client_context(pki, member).wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                writer.write(outgoing.read())
                data = await asyncio.wait_for(reader.read(65536), 10)
                assert data, "the server closed during the handshake"
                incoming.write(data)
        tls.write(request)  # queued right behind the client's Finished
        writer.write(outgoing.read())  # both in one segment
        await _until(
            lambda: bool(listener.made) and ("data", request) in listener.made[0].calls,
            "the request handed over",
        )
        writer.close()

    _, listener = _serving(pki, 5.0, client)
    (http,) = listener.made
    assert [call for call, _ in http.calls][:2] == ["made", "data"]
    assert http.calls[1] == ("data", request)
