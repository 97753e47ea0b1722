"""The HTTP layer protects itself: head caps, slow clients and connection caps, on real sockets.

Every test speaks raw HTTP/1.1 over a real TLS connection to the real gateway, on both of
uvicorn's parsers. Timeouts are configured small (0.5 s) and every wait of the test itself
is bounded by a socket timeout; nothing asserts how long anything took. The storage is
SQLite only: these refusals happen before any request reaches the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.http.connection_limits import MAX_REFUSING
from gateway.http.tls_scope import TLSH11Protocol, TLSHttpToolsProtocol
from gateway.storage.db import Database
from tests.support.pki import ClientCert, Pki
from tests.support.registry import register_participants
from tests.support.server import client_context, gateway_settings, running_gateway

MAKER = "EU.EORI.NL000000001"
PROTOCOLS = {"httptools": TLSHttpToolsProtocol, "h11": TLSH11Protocol}
FAST = {
    "http_header_timeout": 0.5,
    "http_body_timeout": 0.5,
    "http_idle_timeout": 0.5,
    "tls_handshake_timeout": 0.5,
    "http_send_timeout": 0.5,
}
#: The longest any test waits for the server to act (a bound, not an assertion).
PATIENCE = 10.0


@dataclass
class Gateway:
    url: str
    pki: Pki
    maker: ClientCert

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Pki, ClientCert]:
    home = tmp_path_factory.mktemp("guard")
    pki = Pki(home / "pki")
    maker = pki.client("Machine Maker BV", MAKER, ["provider", "operator"])

    async def register() -> None:
        db = Database(_url(home))
        await db.upgrade()
        await register_participants(db, [(MAKER, "Machine Maker BV", ["provider", "operator"])])
        await db.dispose()

    asyncio.run(register())
    return home, pki, maker


def _url(home: Path) -> str:
    return f"sqlite+aiosqlite:///{home / 'sluis.db'}"


def _start(
    material: tuple[Path, Pki, ClientCert], protocol: str, **overrides: Any
) -> Iterator[Gateway]:
    home, pki, maker = material
    settings = gateway_settings(pki, home, _url(home), **{**FAST, **overrides})
    with running_gateway(settings, http=PROTOCOLS[protocol]) as base:
        yield Gateway(base, pki, maker)


@pytest.fixture(scope="module", params=list(PROTOCOLS))
def gateway(
    request: pytest.FixtureRequest, material: tuple[Path, Pki, ClientCert]
) -> Iterator[Gateway]:
    yield from _start(material, request.param)


def _connect(gateway: Gateway, client: ClientCert | None = None) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", gateway.port), timeout=PATIENCE)
    return client_context(gateway.pki, client).wrap_socket(raw, server_hostname="localhost")


def _read_all(sock: ssl.SSLSocket) -> bytes:
    """Everything the server sends until it closes; TimeoutError if it never does."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, ssl.SSLEOFError, BrokenPipeError):
        pass
    return data


def _problem(response: bytes, status: int, code: str) -> dict[str, Any]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith(f"HTTP/1.1 {status} "), response[:300]
    fields = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert fields["content-type"] == "application/problem+json"
    assert fields["connection"] == "close"
    problem: dict[str, Any] = json.loads(body)
    assert problem["type"] == f"urn:sluis:problem:{code}"
    assert problem["status"] == status
    return problem


def _health(sock: ssl.SSLSocket) -> None:
    """One keep-alive GET /healthz, read to the end of its response."""
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    response = b""
    while not response.endswith(b'{"status":"ok"}'):
        chunk = sock.recv(65536)
        assert chunk, response
        response += chunk
    assert response.startswith(b"HTTP/1.1 200 ")


def _send(sock: ssl.SSLSocket, data: bytes) -> None:
    # The server may refuse and close while we are still sending.
    with contextlib.suppress(ConnectionResetError, BrokenPipeError, ssl.SSLEOFError):
        sock.sendall(data)


def _exchange(gateway: Gateway, data: bytes) -> bytes:
    with _connect(gateway) as sock:
        _send(sock, data)
        return _read_all(sock)


# --- the head caps -----------------------------------------------------------------------


def test_a_64_kib_header_gets_431_before_parsing(gateway: Gateway) -> None:
    big = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * (64 << 10) + b"\r\n\r\n"
    problem = _problem(_exchange(gateway, big), 431, "headers-too-large")
    assert "32768" in problem["detail"]


def test_a_head_just_under_the_cap_is_served(gateway: Gateway) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Big: "
    fill = b"a" * ((32 << 10) - len(head) - 4)
    response = _exchange(gateway, head + fill + b"\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 200 "), response[:200]


def test_many_small_headers_are_capped_too(gateway: Gateway) -> None:
    fields = b"".join(b"X-%d: 1\r\n" % i for i in range(101))
    request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n" + fields + b"\r\n"
    _problem(_exchange(gateway, request), 431, "too-many-headers")


def test_a_long_request_line_gets_414(gateway: Gateway) -> None:
    request = b"GET /healthz?" + b"q" * (9 << 10) + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"
    _problem(_exchange(gateway, request), 414, "request-line-too-long")


def test_an_8_mib_query_string_is_refused(gateway: Gateway) -> None:
    """It got 400 before the line cap; now the line cap refuses it before any parsing."""
    request = b"GET /healthz?" + b"q" * (8 << 20) + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"
    _problem(_exchange(gateway, request), 414, "request-line-too-long")


def test_the_cap_applies_to_every_request_on_a_connection(gateway: Gateway) -> None:
    with _connect(gateway) as sock:
        _health(sock)
        _send(sock, b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * (40 << 10) + b"\r\n\r\n")
        _problem(_read_all(sock), 431, "headers-too-large")


def test_a_malformed_request_gets_a_400_problem(gateway: Gateway) -> None:
    """uvicorn's own parser errors answer problem+json too, not text/plain."""
    response = _exchange(gateway, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nBad Header\r\n\r\n")
    _problem(response, 400, "bad-request")


def test_the_cap_applies_to_a_pipelined_head_in_the_same_read(gateway: Gateway) -> None:
    """The oversized second head is never served, whatever the timing.

    When the first answer is complete before the cap trips (the usual case: the 40 KiB head
    arrives in several TLS records), the client gets that 200 and then the 431. When the
    first answer is still being written (a loaded machine), the guard closes the connection
    at once and drops the unfinished answer rather than interleave a second one: the
    client sees nothing, and must retry its first request on a new connection.
    """
    first = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
    second = b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * (40 << 10) + b"\r\n\r\n"
    response = _exchange(gateway, first + second)
    assert response.count(b"HTTP/1.1 200 ") <= 1, response[:400]
    if response:
        assert response.startswith(b"HTTP/1.1 200 "), response[:200]
        _problem(response[response.index(b'{"status":"ok"}') + 15 :], 431, "headers-too-large")


# --- slow clients ------------------------------------------------------------------------


def test_a_trickling_head_is_cut_off(gateway: Gateway) -> None:
    with _connect(gateway) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        for _ in range(int(PATIENCE / 0.1)):  # one byte every 0.1 s, never the end of the head
            try:
                sock.sendall(b"X")
            except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError):
                break
            sock.settimeout(0.1)
            try:
                response = sock.recv(65536)
            except TimeoutError:
                continue
            sock.settimeout(PATIENCE)
            response += _read_all(sock)
            break
        else:
            pytest.fail("the server kept a trickling head open")
    _problem(response, 408, "request-timeout")


def test_a_stalled_body_is_cut_off(gateway: Gateway) -> None:
    """500 bytes announced, 10 sent: the route waits for the body, the server closes."""
    with _connect(gateway, gateway.maker) as sock:
        sock.sendall(
            b"POST /v1/admin/participants HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: 500\r\n\r\n" + b'{"id": "NT'
        )
        assert _read_all(sock) == b""  # closed, no answer: the app owns the response


def test_an_idle_connection_is_closed_before_its_first_request(gateway: Gateway) -> None:
    with _connect(gateway) as sock:
        assert _read_all(sock) == b""


def test_an_idle_keep_alive_connection_is_closed(gateway: Gateway) -> None:
    with _connect(gateway) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        response = _read_all(sock)
    assert response.startswith(b"HTTP/1.1 200 ")
    assert response.endswith(b'{"status":"ok"}')


def test_a_slow_but_steady_body_is_read(material: tuple[Path, Pki, ClientCert]) -> None:
    """Progress restarts the body timer: 5 pieces 0.6 s apart outlast one 2 s timeout."""
    body = b'{"id": "NTRNL-44000000", "name": "Slow BV", "roles": ["consumer"]}'
    for gateway in _start(material, "httptools", http_body_timeout=2.0):
        with _connect(gateway, gateway.maker) as sock:
            sock.sendall(
                b"POST /v1/admin/participants HTTP/1.1\r\nHost: localhost\r\n"
                b"Connection: close\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)
            )
            step = len(body) // 5 + 1
            for start in range(0, len(body), step):
                time.sleep(0.6)
                sock.sendall(body[start : start + step])
            response = _read_all(sock)
        assert response.split(b"\r\n", 1)[0] in {b"HTTP/1.1 201 Created", b"HTTP/1.1 409 Conflict"}


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_a_client_that_does_not_read_its_responses_is_dropped(
    material: tuple[Path, Pki, ClientCert], protocol: str
) -> None:
    """1,000 pipelined requests whose 404 answers echo a 6 KB path, never read: the server
    gives the connection's place up once it has stalled for the send timeout."""
    options = {"http_idle_timeout": 30.0, "http_max_connections_per_source": 1}
    for gateway in _start(material, protocol, **options):
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # no kernel buffer to hide in
        raw.settimeout(PATIENCE)
        raw.connect(("127.0.0.1", gateway.port))
        with client_context(gateway.pki, None).wrap_socket(
            raw, server_hostname="localhost"
        ) as sock:
            request = b"GET /" + b"x" * 6000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"
            sock.sendall(request * 1000)
            _eventually_admitted(gateway)  # the only place is free again: the reader was dropped


# --- connection caps ---------------------------------------------------------------------


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_too_many_connections_from_one_source_are_refused(
    material: tuple[Path, Pki, ClientCert], protocol: str
) -> None:
    options = {"http_idle_timeout": 30.0, "http_max_connections_per_source": 3}
    for gateway in _start(material, protocol, **options):
        held = [_connect(gateway) for _ in range(3)]
        for sock in held:
            _health(sock)
        with _connect(gateway) as extra:
            _problem(_read_all(extra), 503, "too-many-connections")
        held.pop().close()
        _eventually_admitted(gateway)
        for sock in held:
            sock.close()


def test_the_total_connection_cap(material: tuple[Path, Pki, ClientCert]) -> None:
    options = {"http_idle_timeout": 30.0, "http_max_connections": 2}
    for gateway in _start(material, "httptools", **options):
        held = [_connect(gateway) for _ in range(2)]
        for sock in held:
            _health(sock)
        with _connect(gateway) as extra:
            _problem(_read_all(extra), 503, "too-many-connections")
        for sock in held:
            sock.close()
        _eventually_admitted(gateway)


# --- connections still in the TLS handshake count too (issue 12) ---------------------------


def _silent(gateway: Gateway, count: int) -> list[socket.socket]:
    """``count`` TCP connections that never start TLS (each in the handshake until it ends)."""
    return [socket.create_connection(("127.0.0.1", gateway.port)) for _ in range(count)]


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_connections_in_the_handshake_count_against_the_source_cap(
    material: tuple[Path, Pki, ClientCert], protocol: str
) -> None:
    options = {"http_idle_timeout": 30.0, "tls_handshake_timeout": 30.0}
    for gateway in _start(material, protocol, http_max_connections_per_source=3, **options):
        silent = _silent(gateway, 3)
        try:
            with _connect(gateway) as extra:
                _problem(_read_all(extra), 503, "too-many-connections")
        finally:
            for sock in silent:
                sock.close()
        _eventually_admitted(gateway)  # a handshake given up frees its place


def test_connections_in_the_handshake_count_against_the_total_cap(
    material: tuple[Path, Pki, ClientCert],
) -> None:
    options = {"http_idle_timeout": 30.0, "tls_handshake_timeout": 30.0}
    for gateway in _start(material, "httptools", http_max_connections=2, **options):
        silent = _silent(gateway, 2)
        try:
            with _connect(gateway) as extra:
                _problem(_read_all(extra), 503, "too-many-connections")
        finally:
            for sock in silent:
                sock.close()


def test_past_the_refusals_under_way_a_connection_is_closed_before_tls(
    material: tuple[Path, Pki, ClientCert],
) -> None:
    """Over the cap, MAX_REFUSING handshakes may run to say 503; the next is closed at once
    (before the server does any TLS work): the client reads the end of the stream."""
    options = {"http_idle_timeout": 30.0, "tls_handshake_timeout": 30.0}
    for gateway in _start(material, "httptools", http_max_connections_per_source=1, **options):
        silent = _silent(gateway, 1 + MAX_REFUSING)  # one admitted, the rest to be refused
        try:
            with socket.create_connection(("127.0.0.1", gateway.port)) as dropped:
                dropped.settimeout(PATIENCE)  # a bound on the wait, not an assertion
                with contextlib.suppress(ConnectionResetError):  # a reset is a close as well
                    assert dropped.recv(1024) == b""
        finally:
            for sock in silent:
                sock.close()


def test_a_handshake_that_times_out_frees_its_place(material: tuple[Path, Pki, ClientCert]) -> None:
    for gateway in _start(material, "httptools", http_max_connections_per_source=1):
        with socket.create_connection(("127.0.0.1", gateway.port)) as silent:
            silent.settimeout(PATIENCE)
            with contextlib.suppress(ConnectionResetError):
                assert silent.recv(1024) == b""  # the handshake timed out (0.5 s)
            _eventually_admitted(gateway)


def _eventually_admitted(gateway: Gateway) -> None:
    """A closed connection frees its place once the server has seen it go (bounded wait)."""
    for _ in range(50):
        with _connect(gateway) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            if _read_all(sock).startswith(b"HTTP/1.1 200 "):
                return
        time.sleep(0.1)
    pytest.fail("a place freed by a closed connection was never given back")


# --- what already held, and must keep holding --------------------------------------------


def test_connections_that_never_start_tls_are_closed(gateway: Gateway) -> None:
    silent = [socket.create_connection(("127.0.0.1", gateway.port)) for _ in range(50)]
    try:
        for sock in silent:
            sock.settimeout(PATIENCE)
            with contextlib.suppress(ConnectionResetError):  # a reset is a close as well
                assert sock.recv(1024) == b""
    finally:
        for sock in silent:
            sock.close()


def _post_participants(gateway: Gateway, body: bytes, **headers: str) -> bytes:
    fields = {"Host": "localhost", "Content-Type": "application/json", "Connection": "close"}
    fields.update(headers)
    fields.setdefault("Content-Length", str(len(body)))
    head = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    request = f"POST /v1/admin/participants HTTP/1.1\r\n{head}\r\n".encode() + body
    with _connect(gateway, gateway.maker) as sock:
        _send(sock, request)
        return _read_all(sock)


def test_a_10_mb_body_with_a_content_length_gets_413(gateway: Gateway) -> None:
    """Refused on the declared length: the client need not (and here does not) send it all."""
    response = _post_participants(gateway, b"{" * 1024, **{"Content-Length": str(10 << 20)})
    _problem(response, 413, "body-too-large")


def test_deeply_nested_json_gets_400(gateway: Gateway) -> None:
    response = _post_participants(gateway, b"[" * 10_000 + b"]" * 10_000)
    _problem(response, 400, "bad-request")


def test_invalid_utf8_gets_400(gateway: Gateway) -> None:
    response = _post_participants(gateway, b'{"id": "\xff\xfe"}')
    _problem(response, 400, "bad-request")
