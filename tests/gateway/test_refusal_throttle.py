"""The refusal throttle in front of everything (gateway/http/throttle.py), on ASGI scopes.

A source refused too often gets ``429 rate-limited`` before any certificate, token or
database work; health probes and non-HTTP scopes pass; a gateway without limits lets all
through. The counters behind ``Limits.blocked`` are tested in test_rate_limits.py; here a
stand-in answers what it is told and records what it was asked.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.types import Message, Scope

from gateway.http.throttle import RefusalThrottleMiddleware


class Limits:
    def __init__(self, retry_after: int | None) -> None:
        self.retry_after = retry_after
        self.asked: list[str | None] = []

    def blocked(self, source: str | None) -> int | None:
        self.asked.append(source)
        return self.retry_after


def _call(scope: Scope, services: Any) -> tuple[list[Message], list[Scope]]:
    """``scope`` through the middleware: what was sent, and what reached the app behind."""
    reached: list[Scope] = []
    sent: list[Message] = []

    async def app(scope: Scope, _receive: Any, _send: Any) -> None:
        reached.append(scope)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    state = SimpleNamespace() if services is None else SimpleNamespace(services=services)
    scope = {**scope, "app": SimpleNamespace(state=state)}
    asyncio.run(RefusalThrottleMiddleware(app)(scope, receive, send))
    return sent, reached


def _http(path: str = "/v1/datasets", client: Any = ("192.0.2.7", 4431)) -> Scope:
    return {"type": "http", "method": "GET", "path": path, "headers": [], "client": client}


def test_a_throttled_source_is_answered_429_and_goes_no_further() -> None:
    limits = Limits(42)
    sent, reached = _call(_http(), SimpleNamespace(limits=limits))
    assert reached == []
    assert limits.asked == ["192.0.2.7"]
    start, body = sent
    assert start["status"] == 429
    headers = dict(start["headers"])
    assert headers[b"retry-after"] == b"42"
    assert headers[b"content-type"] == b"application/problem+json"
    assert json.loads(body["body"]) == {
        "type": "urn:sluis:problem:rate-limited",
        "title": "Too many requests",
        "status": 429,
        "detail": "too many requests from this client or address; retry after 42 s",
        "instance": "/v1/datasets",
    }


def test_a_retry_after_of_zero_is_still_a_refusal() -> None:
    sent, reached = _call(_http(), SimpleNamespace(limits=Limits(0)))
    assert reached == []
    assert sent[0]["status"] == 429


def test_a_source_not_throttled_passes() -> None:
    limits = Limits(None)
    scope = _http()
    sent, reached = _call(scope, SimpleNamespace(limits=limits))
    assert sent == []
    assert [seen["path"] for seen in reached] == ["/v1/datasets"]
    assert limits.asked == ["192.0.2.7"]


def test_a_source_without_an_address_is_asked_as_none() -> None:
    limits = Limits(5)
    sent, reached = _call(_http(client=None), SimpleNamespace(limits=limits))
    assert limits.asked == [None]
    assert reached == []
    assert sent[0]["status"] == 429


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_probes_pass_a_throttled_source(path: str) -> None:
    limits = Limits(42)
    sent, reached = _call(_http(path), SimpleNamespace(limits=limits))
    assert sent == []
    assert len(reached) == 1
    assert limits.asked == []


@pytest.mark.parametrize("path", ["/healthz/", "/v1/healthz", "/readyzz", "/"])
def test_only_the_probes_themselves_pass(path: str) -> None:
    sent, reached = _call(_http(path), SimpleNamespace(limits=Limits(42)))
    assert reached == []
    assert sent[0]["status"] == 429
    assert json.loads(sent[1]["body"])["instance"] == path


@pytest.mark.parametrize("kind", ["websocket", "lifespan"])
def test_other_scopes_pass(kind: str) -> None:
    limits = Limits(42)
    sent, reached = _call({"type": kind, "path": "/v1/x", "client": ("192.0.2.7", 1)},
                          SimpleNamespace(limits=limits))  # fmt: skip
    assert sent == []
    assert len(reached) == 1
    assert limits.asked == []


@pytest.mark.parametrize("services", [None, SimpleNamespace(), SimpleNamespace(limits=None)])
def test_without_limits_everything_passes(services: Any) -> None:
    sent, reached = _call(_http(), services)
    assert sent == []
    assert len(reached) == 1


def test_the_app_behind_gets_the_connections_receive_and_send() -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen.extend([scope, receive, send])

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(_message: Message) -> None:
        return None

    scope = {**_http(), "app": SimpleNamespace(state=SimpleNamespace(services=None))}
    asyncio.run(RefusalThrottleMiddleware(app)(scope, receive, send))
    assert seen == [scope, receive, send]
