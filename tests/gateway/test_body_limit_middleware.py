"""The body cap as ASGI middleware on its own: the declared length and the bytes read, each
exactly at the cap and one byte past it. The same over real TLS on every body route:
test_body_limits.py.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gateway.http.limits import BodyLimitMiddleware, BodyTooLarge

LIMIT = 100
PROBLEM = {
    "type": "urn:sluis:problem:body-too-large",
    "title": "Request body too large",
    "status": 413,
    "detail": f"request bodies are limited to {LIMIT} bytes",
    "instance": "/v1/things",
}


class Reader:
    """An app that reads the whole body, then answers 200 with the number of bytes read."""

    def __init__(self) -> None:
        self.read = 0
        self.called = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["path"] == "/v1/things"
        self.called = True
        more = True
        while more:
            message = await receive()
            self.read += len(message.get("body", b""))
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(self.read).encode()})


class StartsFirst(Reader):
    """An app that starts its response before it reads the body (a streaming echo)."""

    async def __call__(self, _scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await receive()
        await receive()


def _run(
    app: Any,
    chunks: list[bytes],
    headers: list[tuple[bytes, bytes]] | None = None,
    kind: str = "http",
) -> list[dict[str, Any]]:
    """Send ``chunks`` as one request's body through the cap; the messages sent back."""
    scope = {"type": kind, "path": "/v1/things", "headers": headers or [], "method": "POST"}
    incoming = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(BodyLimitMiddleware(app, LIMIT)(scope, receive, send))
    return sent


def _assert_413(sent: list[dict[str, Any]]) -> None:
    start, body = sent
    assert start["status"] == 413
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/problem+json"
    assert headers[b"connection"] == b"close"
    assert json.loads(body["body"]) == PROBLEM


@pytest.mark.parametrize(
    "declared", [b"101", b"1000000000000", b"-1", b"1e3", b"", b" 10", b"0x10"]
)
def test_a_declared_length_past_the_cap_or_not_a_number_is_refused_unread(declared: bytes) -> None:
    app = Reader()
    _assert_413(_run(app, [b"x" * 10], [(b"content-length", declared)]))
    assert not app.called


def test_a_declared_length_at_the_cap_is_read() -> None:
    app = Reader()
    sent = _run(app, [b"x" * LIMIT], [(b"host", b"a"), (b"content-length", b"100")])
    assert sent[0]["status"] == 200
    assert app.read == LIMIT


@pytest.mark.parametrize("split", [1, 2, 7, LIMIT])
def test_a_body_of_exactly_the_cap_is_read_however_it_arrives(split: int) -> None:
    body = b"x" * LIMIT
    app = Reader()
    sent = _run(app, [body[i : i + split] for i in range(0, LIMIT, split)])
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b"100"


@pytest.mark.parametrize("split", [1, 50, LIMIT + 1])
def test_one_byte_past_the_cap_is_refused_however_it_arrives(split: int) -> None:
    body = b"x" * (LIMIT + 1)
    _assert_413(_run(Reader(), [body[i : i + split] for i in range(0, LIMIT + 1, split)]))


def test_a_lying_content_length_is_caught_by_the_count() -> None:
    _assert_413(_run(Reader(), [b"x" * 60, b"x" * 41], [(b"content-length", b"10")]))


def test_past_the_cap_after_the_response_started_the_error_propagates() -> None:
    with pytest.raises(BodyTooLarge) as caught:
        _run(StartsFirst(), [b"x" * 60, b"x" * 41])
    assert caught.value.status_code == 413
    assert caught.value.detail == f"request bodies are limited to {LIMIT} bytes"
    assert caught.value.headers == {"Connection": "close"}


def test_other_scopes_pass_through() -> None:
    app = Reader()
    sent = _run(app, [b"x" * 500], [(b"content-length", b"500")], kind="websocket")
    assert sent[0]["status"] == 200
    assert app.read == 500
