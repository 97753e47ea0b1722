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
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

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


async def _settled(counter: ConnectionCounter, total: int) -> None:
    """Until ``counter`` counts ``total`` connections (a failed handshake forgets its own);
    bounded, so a connection never forgotten fails the test instead of hanging it."""
    for _ in range(1000):
        if counter.total == total:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{counter.total} connections still counted, expected {total}")


def _serving(
    pki: Pki, timeout: float, client: Callable[[int, list[Http]], Awaitable[Any]]
) -> tuple[Any, list[Http], ConnectionCounter]:
    """Run ``client(port)`` against a Handshake listener; what it returned, the HTTP
    protocols handed connections, and the counter once it settled."""
    counter = ConnectionCounter(LIMITS)
    made: list[Http] = []

    def make_http() -> Http:
        made.append(Http())
        return made[-1]

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        factory = handshaking(make_http, _server_context(pki), timeout, counter)
        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            result = await client(port, made)
            await _settled(counter, len(made))
            return result
        finally:
            server.close()

    return asyncio.run(main()), made, counter


def test_a_handshake_refused_for_an_unknown_ca_is_never_handed_over(tmp_path: Path) -> None:
    """The client's certificate is from another PKI: the server refuses the handshake, the
    client is told why (the alert goes out before the close), no HTTP protocol is made, and
    the connection stops being counted."""
    pki, stranger = Pki(tmp_path / "ours"), Pki(tmp_path / "theirs")
    outsider = stranger.client("Outsider", "NTRNL-90000001")

    async def client(port: int, _made: list[Http]) -> str:
        context = _client_context(pki, outsider)  # trusts our server, presents their cert
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            await reader.read(100)  # TLS 1.3: the refusal arrives after the client's Finished
        except (ssl.SSLError, ConnectionError) as exc:
            return str(exc)
        return "answered"

    told, made, counter = _serving(pki, 5.0, client)
    assert "UNKNOWN_CA" in told.upper() or "unknown ca" in told.lower()
    assert made == []
    assert (counter.total, counter.per_source) == (0, {})


def test_bytes_that_are_not_tls_end_the_handshake_and_its_count(tmp_path: Path) -> None:
    pki = Pki(tmp_path)

    async def client(port: int, _made: list[Http]) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await reader.read()  # until the server closes
        writer.close()
        return answer

    answer, made, counter = _serving(pki, 5.0, client)
    assert b"HTTP" not in answer  # never an HTTP answer on a TLS port
    assert made == []
    assert (counter.total, counter.per_source) == (0, {})


def test_a_handshake_that_never_starts_times_out_and_is_forgotten(tmp_path: Path) -> None:
    pki = Pki(tmp_path)

    async def client(port: int, _made: list[Http]) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answer = await reader.read()  # sends nothing: the server gives up after 0.2 s
        writer.close()
        return answer

    answer, made, counter = _serving(pki, 0.2, client)
    assert answer == b""
    assert made == []
    assert (counter.total, counter.per_source) == (0, {})


def test_a_connection_reset_mid_handshake_is_forgotten(tmp_path: Path) -> None:
    pki = Pki(tmp_path)

    async def client(port: int, _made: list[Http]) -> None:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # half a ClientHello
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await asyncio.sleep(0.05)
        sock.close()  # RST

    _, made, counter = _serving(pki, 5.0, client)
    assert made == []
    assert (counter.total, counter.per_source) == (0, {})


def test_a_good_handshake_is_handed_over_and_still_counted(tmp_path: Path) -> None:
    """The HTTP protocol gets the connection, admitted, and counts it from there (its guard
    releases it when it closes; the handshake does not)."""
    pki = Pki(tmp_path)
    member = pki.client("Member", "NTRNL-90000002")

    async def client(port: int, made: list[Http]) -> None:
        context = _client_context(pki, member)
        _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        for _ in range(1000):  # until the server side has handed it over
            if made:
                break
            await asyncio.sleep(0.01)
        writer.close()

    _, made, counter = _serving(pki, 5.0, client)
    assert len(made) == 1
    assert made[0].admission is Admission.ADMITTED
    assert [call for call, _ in made[0].calls][:1] == ["made"]
    assert counter.total == 1
