"""The data route's fast path (gateway/exchange/fast_data.py) takes a request only when the
declared FastAPI route would take it with the very same parameters; everything else falls
through to the declared route. Differential: each query string is given to both."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from starlette.datastructures import QueryParams
from starlette.routing import Match

from gateway.exchange import endpoints
from gateway.exchange.fast_data import DataRoute, plain_params
from gateway.exchange.schemas import DataParams
from gateway.http.bearer import bearer
from gateway.http.deps import get_services

QUERIES = [
    "",
    "format=csv",
    "format=jsonl&columns=a,b",
    "format=parquet&limit=1",
    "format=arrow&limit=100000000",
    "limit=100000001",
    "limit=0",
    "limit=01",
    "limit=-1",
    "limit=+5",
    "limit=1.0",
    "limit=",
    "limit=%201",
    "format=xml",
    "format=",
    "format=CSV",
    "format=csv&format=jsonl",
    "columns=a&columns=b",
    "limit=1&limit=2",
    "columns=" + "x" * 4096,
    "columns=" + "x" * 4097,
    "columns=%C3%A9" * 1,
    "columns=" + "%C3%A9" * 4096,
    "columns=" + "%C3%A9" * 4097,
    "where=a,eq,1",
    "where=a,eq,1&where=b,lt,2",
    "&".join(["where=a,eq,1"] * 64),
    "&".join(["where=a,eq,1"] * 65),
    "where=",
    "unknown=1&format=csv",
    "access_token=abc",
]


async def _stub() -> object:
    return object()


@pytest.fixture
def declared(monkeypatch: pytest.MonkeyPatch) -> tuple[FastAPI, list[DataParams]]:
    """The declared route alone, its dependencies stubbed, its answer the params it got."""
    seen: list[DataParams] = []

    async def answer(
        _request: Request, _dataset: str, _caller: Any, _services: Any, params: DataParams
    ) -> PlainTextResponse:
        seen.append(params)
        return PlainTextResponse("ok")

    monkeypatch.setattr(endpoints, "data_response", answer)
    app = FastAPI()
    app.include_router(endpoints.router)
    app.dependency_overrides[bearer] = _stub
    app.dependency_overrides[get_services] = _stub
    return app, seen


@pytest.mark.parametrize("query", QUERIES)
def test_the_fast_path_takes_only_what_the_declared_route_takes_alike(
    declared: tuple[FastAPI, list[DataParams]], query: str
) -> None:
    app, seen = declared
    fast = plain_params(QueryParams(query))
    response = asyncio.run(_get(app, f"/v1/datasets/d/data?{query}"))
    if fast is None:
        return  # the declared route judges it (tested with the route itself)
    assert response.status_code == 200, (query, response.text)
    assert seen == [fast]


async def _get(app: FastAPI, url: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(url)


def test_plain_parameters_are_taken_and_others_are_left_to_the_declared_route() -> None:
    taken = [q for q in QUERIES if plain_params(QueryParams(q)) is not None]
    assert taken == [
        "",
        "format=csv",
        "format=jsonl&columns=a,b",
        "format=parquet&limit=1",
        "format=arrow&limit=100000000",
        "columns=" + "x" * 4096,
        "columns=%C3%A9",
        "columns=" + "%C3%A9" * 4096,
        "where=a,eq,1",
        "where=a,eq,1&where=b,lt,2",
        "&".join(["where=a,eq,1"] * 64),
        "where=",
        "unknown=1&format=csv",
        "access_token=abc",  # refused by the bearer check, on either path
    ]


def _scope(method: str, path: str, query: bytes = b"") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "",
            "query_string": query, "headers": []}  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("POST", "/v1/datasets/d/data", b""),
        ("HEAD", "/v1/datasets/d/data", b""),
        ("GET", "/v1/datasets/d/data/", b""),
        ("GET", "/v1/datasets/a/b/data", b""),
        ("GET", "/v1/datasets//data", b""),
        ("GET", "/v1/datasets/d/query", b""),
        ("GET", "/v1/datasets/d/data", b"limit=0"),
    ],
)
def test_anything_else_falls_through(method: str, path: str, query: bytes) -> None:
    assert DataRoute().matches(_scope(method, path, query)) == (Match.NONE, {})


def test_a_plain_get_is_matched_with_its_dataset_and_parameters() -> None:
    match, child = DataRoute().matches(_scope("GET", "/v1/datasets/sensors/data", b"limit=5"))
    assert match is Match.FULL
    assert child["path_params"] == {"dataset_id": "sensors"}
    assert child["sluis.data_params"] == DataParams(limit=5)


def test_a_matched_request_is_authenticated_then_its_token_checked_then_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The fast path resolves by hand what FastAPI resolves for the declared route: the
    # certificate's participant, then the bearer token against it, then the same endpoint
    # code with the services, the dataset and the parameters matched.
    from gateway.exchange import fast_data  # noqa: PLC0415 - its names are replaced here

    services, participant, caller = object(), object(), object()
    calls: list[tuple[str, tuple[Any, ...]]] = []

    async def get_services(request: Request) -> object:
        calls.append(("services", (request.url.path,)))
        return services

    async def authenticated(request: Request, given: object) -> object:
        calls.append(("authenticated", (request.url.path, given)))
        return participant

    async def bearer(request: Request, holder: object, given: object) -> object:
        calls.append(("bearer", (request.url.path, holder, given)))
        return caller

    async def data_response(
        request: Request, dataset: str, who: object, given: object, params: DataParams
    ) -> StreamingResponse:
        calls.append(("data", (request.url.path, dataset, who, given, params)))

        async def rows() -> AsyncIterator[bytes]:
            yield b"ro"
            yield b"ws"

        # streamed, as a longer answer is: Starlette listens for a disconnect on ``receive``
        return StreamingResponse(rows(), status_code=203)

    for name, stand_in in [("get_services", get_services), ("authenticated", authenticated),
                           ("bearer", bearer), ("data_response", data_response)]:  # fmt: skip
        monkeypatch.setattr(fast_data, name, stand_in)
    app = FastAPI()
    app.router.routes.insert(0, DataRoute())
    response = asyncio.run(_get(app, "/v1/datasets/sensors/data?format=csv&limit=7"))
    assert (response.status_code, response.text) == (203, "rows")
    path = "/v1/datasets/sensors/data"
    assert calls == [
        ("services", (path,)),
        ("authenticated", (path, services)),
        ("bearer", (path, participant, services)),
        ("data", (path, "sensors", caller, services, DataParams(limit=7, format="csv"))),
    ]


def test_path_parameters_matched_before_are_kept() -> None:
    # Mounted under a router that matched parameters of its own, they stay in the scope.
    scope = _scope("GET", "/v1/datasets/sensors/data") | {"path_params": {"tenant": "t1"}}
    match, child = DataRoute().matches(scope)
    assert match is Match.FULL
    assert child["path_params"] == {"tenant": "t1", "dataset_id": "sensors"}
