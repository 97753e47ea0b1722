"""The exchange's HTTP layer (gateway/exchange/endpoints.py), in process.

The real router and problem handlers in a small FastAPI app over httpx's ASGI transport;
the bearer check is overridden with a fixed caller (its own tests: test_http_deps.py) and
the exchange service is a recording stand-in (its own: test_exchange_service.py) that
answers with real ``Outcome`` and ``Rest`` objects. What each endpoint hands the service
(the query from JSON or from URL parameters, the source address, a pass-through call's
method, path, body and content type), and what it answers (the audit receipt's headers, the
stream, the upstream's refusal as a problem). The same over mTLS: test_exchange.py.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive, Scope, Send

from connectors import Format, Op, Predicate, Query
from connectors.http_passthrough import Proxied
from gateway.audit.records import Receipt
from gateway.exchange import endpoints
from gateway.exchange.service import Outcome, Rest, _Stats
from gateway.http.bearer import bearer
from gateway.http.problems import install
from tests.support.exchange_world import CALLER

RECEIPT = Receipt(index=5, leaf_hash=b"l" * 32, tree_size=9, root_hash=b"r" * 32)
CHECKPOINT = b"origin\n9\nroot\n\n- sig\n"


class Exchange:
    """The service's three calls, recorded; streams that record how they ended."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.ended: list[str] = []
        self.first = b'{"a":1}\n'
        self.chunks = [b'{"a":2}\n', b'{"a":3}\n']
        self.headers: dict[str, str] = {}
        self.proxied = Proxied(200, "application/json", b'{"id":1}')

    def outcome(self) -> Outcome:
        async def chunks() -> AsyncIterator[bytes]:
            for chunk in self.chunks:
                yield chunk

        async def finish(result: str, _failure: Any) -> None:
            self.ended.append(result)

        stats = _Stats()
        return Outcome(RECEIPT, CHECKPOINT, "application/jsonl", self.first,
                       Rest(chunks(), stats, finish), stats, dict(self.headers))  # fmt: skip

    async def query(self, *args: Any, **kwargs: Any) -> Outcome:
        self.calls.append(("query", *args, kwargs))
        return self.outcome()

    async def privacy_budget(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("privacy_budget", *args, kwargs))
        return SimpleNamespace(to_json=lambda: {"epsilon": "1.0", "remaining": "0.75"})

    async def call_api(self, *args: Any, **kwargs: Any) -> tuple[Proxied, Receipt, bytes]:
        self.calls.append(("call_api", *args, kwargs))
        return self.proxied, RECEIPT, CHECKPOINT


class Audit:
    def __init__(self) -> None:
        self.entries: list[Any] = []

    async def append(self, item: Any) -> None:
        self.entries.append(item)


class Telemetry:
    def span(self, *_args: Any, **_kwargs: Any) -> Any:
        import contextlib  # noqa: PLC0415 - the one place it is needed

        return contextlib.nullcontext()


def _app(exchange: Exchange) -> FastAPI:
    app = FastAPI()
    install(app)
    app.include_router(endpoints.router)
    app.dependency_overrides[bearer] = lambda: CALLER
    app.state.services = SimpleNamespace(
        exchange=exchange, audit=Audit(), telemetry=Telemetry(), limits=None
    )
    return app


def _call(
    exchange: Exchange, method: str, path: str, *, client: Any = "keep", **kwargs: Any
) -> httpx.Response:
    app = _app(exchange)

    async def outer(scope: Scope, receive: Receive, send: Send) -> None:
        if client != "keep":
            scope = {**scope, "client": client}
        await app(scope, receive, send)

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=outer, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://sluis") as http:
            return await http.request(method, path, **kwargs)

    return asyncio.run(call())


def _receipt(response: httpx.Response) -> None:
    assert response.headers["sluis-audit-index"] == "5"
    assert response.headers["sluis-audit-tree-size"] == "9"
    assert base64.b64decode(response.headers["sluis-audit-checkpoint"]) == CHECKPOINT
    assert response.headers["cache-control"] == "no-store"


# --- POST /query ----------------------------------------------------------------------------


def test_a_query_is_run_and_streamed_with_its_receipt() -> None:
    exchange = Exchange()
    exchange.headers = {"Sluis-Privacy-Epsilon": "0.25"}
    response = _call(exchange, "POST", "/v1/datasets/d1/query", json={
        "columns": ["a"], "where": [{"column": "a", "op": "gt", "value": 1}], "format": "csv",
    })  # fmt: skip
    assert response.status_code == 200
    assert response.content == b'{"a":1}\n{"a":2}\n{"a":3}\n'
    assert response.headers["content-type"] == "application/jsonl"
    assert response.headers["sluis-privacy-epsilon"] == "0.25"
    _receipt(response)
    assert exchange.calls == [(
        "query", CALLER, "d1", Query(columns=("a",), where=(Predicate("a", Op.GT, 1),)),
        Format.CSV, {"source": "127.0.0.1"},
    )]  # fmt: skip
    assert exchange.ended == ["permit"]


def test_a_stream_without_a_first_chunk() -> None:
    exchange = Exchange()
    exchange.first = b""
    response = _call(exchange, "POST", "/v1/datasets/d1/query", json={})
    assert response.content == b'{"a":2}\n{"a":3}\n'
    assert exchange.calls[0][3:] == (Query(), Format.JSONL, {"source": "127.0.0.1"})


def test_a_query_without_a_client_address_has_no_source() -> None:
    exchange = Exchange()
    _call(exchange, "POST", "/v1/datasets/d1/query", json={}, client=None)
    assert exchange.calls[0][-1] == {"source": None}


def test_a_query_that_does_not_validate_is_not_run() -> None:
    exchange = Exchange()
    response = _call(exchange, "POST", "/v1/datasets/d1/query", json={"format": "xml"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert exchange.calls == []


def test_a_stream_whose_consumer_is_gone_ends_interrupted() -> None:
    exchange = Exchange()
    sent: list[Message] = []

    async def receive() -> Message:
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise OSError("gone")
        sent.append(message)

    async def run() -> None:
        response = endpoints._stream(exchange.outcome())
        scope = {"type": "http", "method": "POST", "path": "/", "headers": [],
                 "asgi": {"spec_version": "2.4"}}  # fmt: skip
        with pytest.raises(ClientDisconnect):  # Starlette's word for the OSError
            await response(scope, receive, send)

    asyncio.run(run())
    assert [m["type"] for m in sent] == ["http.response.start"]
    assert exchange.ended == ["interrupted"]


def test_a_consumer_gone_mid_stream_is_heard_under_uvicorns_asgi_version() -> None:
    """uvicorn says ASGI 2.3: past the second chunk (a one-piece answer is sent without it,
    see ``_Streamed``), Starlette listens on ``receive`` for the disconnect and the stalled
    rest is never sent."""
    exchange = Exchange()
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    async def run() -> None:
        never = asyncio.Event()

        async def stalled() -> AsyncIterator[bytes]:
            yield b"second"  # more than one piece: the listener runs from here on
            await never.wait()
            yield b"never"

        async def finish(result: str, _failure: Any) -> None:
            exchange.ended.append(result)

        stats = _Stats()
        outcome = Outcome(RECEIPT, CHECKPOINT, "application/jsonl", b"",
                          Rest(stalled(), stats, finish), stats)  # fmt: skip
        scope = {"type": "http", "method": "POST", "path": "/", "headers": [],
                 "asgi": {"version": "3.0", "spec_version": "2.3"}}  # fmt: skip
        await asyncio.wait_for(endpoints._stream(outcome)(scope, receive, send), 10)

    asyncio.run(run())
    assert exchange.ended == ["interrupted"]
    assert b"never" not in b"".join(m.get("body", b"") for m in sent)


# --- GET /data ------------------------------------------------------------------------------


def test_data_from_url_parameters() -> None:
    exchange = Exchange()
    response = _call(exchange, "GET", "/v1/datasets/d2/data", params=[
        ("columns", "a,,b"), ("where", "t,gt,70"), ("where", "s,in,x|2"), ("limit", "5"),
        ("format", "parquet"),
    ])  # fmt: skip
    assert response.status_code == 200
    _receipt(response)
    assert exchange.calls == [(
        "query", CALLER, "d2",
        Query(columns=("a", "b"),
              where=(Predicate("t", Op.GT, 70), Predicate("s", Op.IN, ("x", 2))), limit=5),
        Format.PARQUET, {"source": "127.0.0.1"},
    )]  # fmt: skip
    assert exchange.ended == ["permit"]


def test_data_without_parameters_is_every_column_as_json_lines() -> None:
    exchange = Exchange()
    _call(exchange, "GET", "/v1/datasets/d2/data", client=None)
    assert exchange.calls == [("query", CALLER, "d2", Query(), Format.JSONL, {"source": None})]


@pytest.mark.parametrize(
    ("params", "detail"),
    [([("where", "t")], "where='t': use column,op,value"),
     ([("where", "t,like,1")],
      "where='t,like,1': unknown operator 'like'; use one of eq, ne, lt, le, gt, ge, in, "
      "not_in, is_null, not_null"),
     ([("columns", ",".join(["c"] * 257))], "1 validation error for QueryIn")],
)  # fmt: skip
def test_data_parameters_that_do_not_parse_are_a_bad_query(
    params: list[tuple[str, str]], detail: str
) -> None:
    exchange = Exchange()
    response = _call(exchange, "GET", "/v1/datasets/d2/data", params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "urn:sluis:problem:bad-query"
    assert body["detail"] == detail
    assert exchange.calls == []


# --- privacy budget -------------------------------------------------------------------------


def test_the_privacy_budget() -> None:
    exchange = Exchange()
    response = _call(exchange, "GET", "/v1/datasets/d3/privacy-budget")
    assert response.status_code == 200
    assert response.json() == {"epsilon": "1.0", "remaining": "0.75"}
    assert exchange.calls == [("privacy_budget", CALLER, "d3", {"source": "127.0.0.1"})]
    _call(exchange, "GET", "/v1/datasets/d3/privacy-budget", client=None)
    assert exchange.calls[1][-1] == {"source": None}


# --- pass-through ---------------------------------------------------------------------------


def test_a_pass_through_get_has_no_body() -> None:
    exchange = Exchange()
    response = _call(exchange, "GET", "/v1/datasets/d4/api/orders/1?x=1",
                     headers={"content-type": "application/json"})  # fmt: skip
    assert response.status_code == 200
    assert response.content == b'{"id":1}'
    assert response.headers["content-type"] == "application/json"
    _receipt(response)
    assert exchange.calls == [("call_api", CALLER, "d4", "GET", "orders/1", None,
                               {"source": "127.0.0.1", "content_type": None})]  # fmt: skip


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_a_pass_through_with_a_body(method: str) -> None:
    exchange = Exchange()
    exchange.proxied = Proxied(201, "text/plain", b"made")
    response = _call(exchange, method, "/v1/datasets/d4/api/orders", content=b'{"n":1}',
                     headers={"content-type": "application/json"}, client=None)  # fmt: skip
    assert response.status_code == 201
    assert response.content == b"made"
    assert response.headers["content-type"].startswith("text/plain")
    assert exchange.calls == [("call_api", CALLER, "d4", method, "orders", b'{"n":1}',
                               {"source": None, "content_type": "application/json"})]  # fmt: skip


def test_a_pass_through_delete_has_no_body() -> None:
    exchange = Exchange()
    exchange.proxied = Proxied(204, "", b"")
    response = _call(exchange, "DELETE", "/v1/datasets/d4/api/orders/1")
    assert response.status_code == 204
    assert exchange.calls[0][3:6] == ("DELETE", "orders/1", None)
    assert exchange.calls[0][-1]["content_type"] is None


def test_an_upstream_refusal_is_a_problem_of_our_own() -> None:
    exchange = Exchange()
    exchange.proxied = Proxied(404, "", b"upstream words")
    response = _call(exchange, "GET", "/v1/datasets/d4/api/orders/9")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    _receipt(response)
    assert response.json() == {
        "type": "urn:sluis:problem:upstream-refused",
        "title": "The upstream refused the call",
        "status": 404,
        "detail": "the upstream answered 404 to this call",
        "instance": "/v1/datasets/d4/api/orders/9",
    }


def test_each_pass_through_method_has_its_own_operation() -> None:
    routes = [r for r in endpoints.router.routes if "/api/" in getattr(r, "path", "")]
    assert [(r.name, r.operation_id, r.methods) for r in routes] == [  # type: ignore[attr-defined]
        (f"passthrough_{m.lower()}", f"passthrough_{m.lower()}", {m})
        for m in ("GET", "POST", "PUT", "PATCH", "DELETE")
    ]
    assert {r.path for r in routes} == {"/v1/datasets/{dataset_id}/api/{path:path}"}  # type: ignore[attr-defined]
