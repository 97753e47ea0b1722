"""uvicorn's two HTTP protocols behind the connection guard (gateway/http/guarded.py).

Each guarded protocol made by ``guarded_protocol`` on a real event loop, fed bytes by the
test through a transport that keeps what is written (no socket): the guard opened with the
connection and its peer, every chunk measured before the parser, uvicorn's 400 replaced by
problem+json, writes paused and resumed, the connection uncounted when lost, and what the
guard asks the protocol (a body being read, a response under way, reading paused, drop the
response). The guard itself: test_connection_guard.py; all of it over real TLS sockets:
test_http_guard.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from gateway.http.connection_limits import Admission, ConnectionLimits
from gateway.http.guarded import GuardedH11Protocol, GuardedHttpToolsProtocol, guarded_protocol
from gateway.http.head_meter import HeadLimits
from gateway.http.tls_scope import TLSH11Protocol, TLSHttpToolsProtocol

LIMITS = ConnectionLimits(
    head=HeadLimits(max_request_line=60, max_head_bytes=400, max_headers=5),
    header_timeout=20,
    body_timeout=30,
    idle_timeout=7.5,
    send_timeout=60,
    max_connections=10,
    max_connections_per_source=2,
)
PEER = ("192.0.2.9", 50000)
HEAD = b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n"
POST = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"


class Transport(asyncio.Transport):
    """A transport that keeps what is written and whether reading was paused or it closed."""

    def __init__(self, peer: tuple[str, int] | None = PEER) -> None:
        super().__init__()
        self.peer = peer
        self.written = b""
        self.closing = False
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self.peer, "sockname": ("127.0.0.1", 8443)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


App = Callable[[Any, Any, Any], Awaitable[None]]


async def answer(scope: Any, receive: Any, send: Any) -> None:
    """Read the whole body, then answer 200 with its length."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": f"{scope['path']} {len(body)}".encode()})


class Stalled:
    """An app that answers only once told; records what its ``receive`` returned."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.received: list[str] = []

    async def __call__(self, _scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        self.received.append(message["type"])
        await self.go.wait()
        if message["type"] == "http.disconnect":
            return
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


BASES = [TLSH11Protocol, TLSHttpToolsProtocol]


def _protocol(base: type[asyncio.Protocol], app: App = answer) -> Any:
    config = uvicorn.Config(app, lifespan="off", log_level="critical", access_log=False)
    config.load()
    guarded = guarded_protocol(base, LIMITS)
    return guarded(  # type: ignore[call-arg]
        config=config, server_state=ServerState(), app_state={}, _loop=asyncio.get_running_loop()
    )


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def _run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


def test_each_base_has_its_guarded_form_with_its_own_counter() -> None:
    first = guarded_protocol(TLSH11Protocol, LIMITS)
    second = guarded_protocol(TLSH11Protocol, LIMITS)
    tools = guarded_protocol(TLSHttpToolsProtocol, LIMITS)
    assert first.__name__ == "GuardedH11Protocol"
    assert tools.__name__ == "GuardedHttpToolsProtocol"
    assert issubclass(first, GuardedH11Protocol)
    assert issubclass(tools, GuardedHttpToolsProtocol)
    assert first.limits is LIMITS  # type: ignore[attr-defined]
    assert first.counter is not second.counter  # type: ignore[attr-defined]
    assert first.counter.limits is LIMITS  # type: ignore[attr-defined]
    assert first.counter.total == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("base", [H11Protocol, asyncio.Protocol])
def test_a_protocol_without_a_guarded_form_is_refused(base: type[asyncio.Protocol]) -> None:
    with pytest.raises(TypeError) as refused:
        guarded_protocol(base, LIMITS)
    assert str(refused.value) == (
        f"no guarded form of {base.__name__}: use a gateway.http.tls_scope protocol"
    )


@pytest.mark.parametrize("base", BASES)
def test_a_request_is_served_and_the_connection_counted_until_lost(
    base: type[asyncio.Protocol],
) -> None:
    async def test() -> None:
        protocol = _protocol(base)
        transport = Transport()
        protocol.connection_made(transport)
        assert protocol.timeout_keep_alive == 7.5
        assert protocol.guard.source == "192.0.2.9"
        assert protocol.guard.admitted
        assert protocol.counter.total == 1
        assert protocol.counter.per_source == {"192.0.2.9": 1}
        assert protocol.guard._timer_kind == "idle"
        protocol.data_received(POST + b"0123456789")
        await _settle()
        assert transport.written.startswith(b"HTTP/1.1 200 OK\r\n")
        assert transport.written.endswith(b"\r\n/x 10\r\n0\r\n\r\n")
        protocol.connection_lost(None)
        assert protocol.guard.closed
        assert protocol.counter.total == 0
        assert protocol.counter.per_source == {}

    _run(test)


@pytest.mark.parametrize("base", BASES)
def test_a_connection_without_a_peer_address_is_counted_without_one(
    base: type[asyncio.Protocol],
) -> None:
    async def test() -> None:
        protocol = _protocol(base)
        protocol.connection_made(Transport(peer=None))
        assert protocol.guard.source is None
        assert protocol.counter.total == 1
        assert protocol.counter.per_source == {}

    _run(test)


@pytest.mark.parametrize("base", BASES)
def test_the_verdict_given_at_accept_is_the_guards(base: type[asyncio.Protocol]) -> None:
    async def test() -> None:
        protocol = _protocol(base)
        assert protocol.counter.accept("192.0.2.9") is Admission.ADMITTED
        protocol.admission = Admission.ADMITTED
        protocol.connection_made(Transport())
        assert protocol.counter.total == 1  # counted once, at accept
        protocol.connection_lost(None)
        assert protocol.counter.total == 0

        refused = _protocol(base)
        refused.admission = Admission.REFUSED
        transport = Transport()
        refused.connection_made(transport)
        assert transport.written.startswith(b"HTTP/1.1 503 ")
        assert b'"type":"urn:sluis:problem:too-many-connections"' in transport.written
        assert transport.closing
        assert refused.counter.total == 0

    _run(test)


@pytest.mark.parametrize("base", BASES)
def test_every_chunk_is_measured_before_the_parser(base: type[asyncio.Protocol]) -> None:
    async def test() -> None:
        protocol = _protocol(base)
        transport = Transport()
        protocol.connection_made(transport)
        protocol.data_received(b"GET /" + b"a" * 80 + b" HTTP/1.1\r\n")
        await _settle()
        assert transport.written.startswith(b"HTTP/1.1 414 ")
        assert b"urn:sluis:problem:request-line-too-long" in transport.written
        assert transport.closing

    _run(test)


@pytest.mark.parametrize("base", BASES)
def test_a_malformed_request_is_answered_with_a_problem(base: type[asyncio.Protocol]) -> None:
    async def test() -> None:
        protocol = _protocol(base)
        transport = Transport()
        protocol.connection_made(transport)
        protocol.data_received(b"NOT\x01HTTP AT ALL\r\n\r\n")
        await _settle()
        head, _, body = transport.written.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 ")
        assert b"content-type: application/problem+json" in head.lower()
        assert json.loads(body)["detail"] == "the request is not valid HTTP/1.1"
        assert b"Invalid HTTP request received" not in transport.written
        assert transport.closing

    _run(test)


@pytest.mark.parametrize("base", BASES)
def test_the_guard_is_told_what_the_connection_waits_for(base: type[asyncio.Protocol]) -> None:
    async def test() -> None:
        protocol = _protocol(base)
        protocol.connection_made(Transport())
        state = protocol.guard.state
        assert not state.in_body()
        protocol.data_received(b"POST /x HTTP/1.1\r\n")
        assert protocol.guard._timer_kind == "head"
        assert not state.in_body()
        protocol.data_received(b"Host: x\r\nContent-Length: 10\r\n\r\n01234")
        assert protocol.guard._timer_kind == "body"
        assert state.in_body()
        protocol.data_received(b"56789")
        assert not state.in_body()
        await _settle()
        assert not state.busy()  # answered
        assert protocol.guard._timer_kind == ""  # the body's timer stopped with the body

    _run(test)


@pytest.mark.parametrize("base", BASES)
def test_busy_while_a_response_is_under_way(base: type[asyncio.Protocol]) -> None:
    async def test() -> None:
        app = Stalled()
        protocol = _protocol(base, app)
        transport = Transport()
        protocol.connection_made(transport)
        assert not protocol.guard.state.busy()  # no request yet
        protocol.data_received(HEAD)
        await _settle()
        assert protocol.guard.state.busy()
        app.go.set()
        await _settle()
        assert transport.written.startswith(b"HTTP/1.1 204 ")
        assert not protocol.guard.state.busy()

    _run(test)


@pytest.mark.parametrize("base", BASES)
def test_reading_paused_is_the_flow_controls(base: type[asyncio.Protocol]) -> None:
    async def test() -> None:
        protocol = _protocol(base)
        transport = Transport()
        protocol.connection_made(transport)
        assert not protocol.guard.state.reading_paused()
        protocol.flow.pause_reading()
        assert protocol.guard.state.reading_paused()
        assert not transport.reading
        protocol.flow.resume_reading()
        assert not protocol.guard.state.reading_paused()

    _run(test)


@pytest.mark.parametrize("base", BASES)
def test_writes_paused_start_the_send_timer(base: type[asyncio.Protocol]) -> None:
    async def test() -> None:
        protocol = _protocol(base)
        protocol.connection_made(Transport())
        protocol.pause_writing()
        assert protocol.flow.write_paused
        assert protocol.guard._send_timer is not None
        protocol.resume_writing()
        assert not protocol.flow.write_paused
        assert protocol.guard._send_timer is None

    _run(test)


@pytest.mark.parametrize("base", BASES)
def test_abandon_drops_the_request_under_way(base: type[asyncio.Protocol]) -> None:
    async def test() -> None:
        app = Stalled()
        protocol = _protocol(base, app)
        protocol.connection_made(Transport())
        protocol.data_received(POST + b"01")  # the app waits for the rest of the body
        await _settle()
        cycle = protocol.cycle
        assert app.received == ["http.request"]  # the first part of the body
        protocol.guard.state.abandon()
        assert cycle.disconnected
        assert cycle.message_event.is_set()
        app.go.set()
        await _settle()

    _run(test)


@pytest.mark.parametrize("base", BASES)
def test_abandon_leaves_a_finished_response_alone(base: type[asyncio.Protocol]) -> None:
    async def test() -> None:
        protocol = _protocol(base)
        protocol.connection_made(Transport())
        protocol.guard.state.abandon()  # nothing under way
        protocol.data_received(HEAD)
        await _settle()
        cycle = protocol.cycle
        assert cycle.response_complete
        cycle.message_event.clear()
        protocol.guard.state.abandon()
        assert not cycle.disconnected
        assert not cycle.message_event.is_set()

    _run(test)


def test_abandon_reaches_every_pipelined_request_of_httptools() -> None:
    async def test() -> None:
        app = Stalled()
        protocol = _protocol(TLSHttpToolsProtocol, app)
        protocol.connection_made(Transport())
        protocol.data_received(HEAD)
        await _settle()
        running = protocol.cycle
        protocol.data_received(HEAD.replace(b"/x", b"/y") + HEAD.replace(b"/x", b"/z"))
        await _settle()
        queued = [cycle for cycle, _ in protocol.pipeline]
        assert [c.scope["path"] for c in queued] == ["/z", "/y"]
        assert protocol.cycle is queued[0]
        protocol.guard.state.abandon()
        for cycle in (running, *queued):
            assert cycle.disconnected
            assert cycle.message_event.is_set()
        app.go.set()
        await _settle()

    _run(test)


def test_the_request_answered_is_abandoned_though_a_newer_one_is_parsed() -> None:
    async def test() -> None:
        app = Stalled()
        protocol = _protocol(TLSHttpToolsProtocol, app)
        protocol.connection_made(Transport())
        protocol.data_received(HEAD)
        await _settle()
        running = protocol.cycle
        protocol.data_received(HEAD.replace(b"/x", b"/y"))
        await _settle()
        protocol.pipeline.clear()  # only the newest cycle and the one being answered left
        assert protocol.cycle is not running
        protocol.guard.state.abandon()
        assert running.disconnected
        assert protocol.cycle.disconnected
        app.go.set()
        await _settle()

    _run(test)


@pytest.mark.parametrize("base", BASES)
def test_made_with_uvicorns_arguments_in_order(base: type[asyncio.Protocol]) -> None:
    async def test() -> None:
        config = uvicorn.Config(answer, lifespan="off", log_level="critical", access_log=False)
        config.load()
        loop = asyncio.get_running_loop()
        protocol: Any = guarded_protocol(base, LIMITS)(config, ServerState(), {}, loop)  # type: ignore[call-arg]
        assert protocol.config is config
        assert protocol.loop is loop
        assert protocol.guard.loop is loop

    _run(test)


@pytest.mark.parametrize("base", BASES)
def test_a_connection_lost_with_an_error_is_not_closed_again(base: type[asyncio.Protocol]) -> None:
    async def test() -> None:
        protocol = _protocol(base)
        transport = Transport()
        protocol.connection_made(transport)
        protocol.connection_lost(ConnectionResetError())
        assert protocol.guard.closed
        assert not transport.closing  # uvicorn closes only a transport that ended cleanly
        clean = _protocol(base)
        transport = Transport()
        clean.connection_made(transport)
        clean.connection_lost(None)
        assert transport.closing

    _run(test)
