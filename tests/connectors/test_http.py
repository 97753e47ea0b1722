"""The HTTP connectors against a real server on loopback: tabular, pass-through, failures."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from connectors import (
    Op,
    Order,
    Predicate,
    Query,
    SchemaMismatch,
    SourceRejected,
    SourceTimeout,
    SourceUnavailable,
    TargetRefused,
)
from connectors.http import HttpConfig, HttpFetcher, HttpTableConnector
from connectors.http_guard import check_address, parse_networks
from connectors.http_passthrough import HttpPassThrough, Route
from tests.connectors.cases import collect
from tests.connectors.upstream import HITS, ROWS, upstream

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])
LOOPBACK = ("127.0.0.1/32",)


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with upstream() as url:
        yield url


def _table(base: str, path: str, **config: Any) -> HttpTableConnector:
    settings: dict[str, Any] = {"allow_networks": LOOPBACK, "timeout": 0.5, "retries": 0}
    return HttpTableConnector("api", HttpConfig(base, path, schema=SCHEMA, **settings | config))


def _rows(connector: HttpTableConnector, query: Query | None = None) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        try:
            return await collect(connector, query or Query())
        finally:
            await connector.aclose()

    return asyncio.run(run())


@pytest.mark.parametrize(("path", "lines"), [("/rows", False), ("/lines", True)])
def test_tabular_rows_are_mapped_to_the_schema(base: str, path: str, lines: bool) -> None:
    rows = _rows(_table(base, path, lines=lines))
    assert rows == [{"id": r["id"], "name": r["name"]} for r in ROWS]


def test_the_gateway_filters_and_limits_tabular_rows(base: str) -> None:
    query = Query(
        columns=("name",),
        where=(Predicate("id", Op.GE, 20),),
        order_by=(Order("name", descending=True),),
        limit=2,
    )
    assert _rows(_table(base, "/rows"), query) == [{"name": "n24"}, {"name": "n23"}]


def test_loopback_is_refused_unless_the_dataset_allows_that_network(base: str) -> None:
    with pytest.raises(TargetRefused):
        _rows(_table(base, "/rows", allow_networks=()))
    with pytest.raises(TargetRefused):
        _rows(_table(base, "/rows", allow_networks=("127.0.0.2/32",)))


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "192.168.1.1",
        "172.16.0.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 (an address to refuse, not one to bind)
        "224.0.0.1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    with pytest.raises(TargetRefused):
        check_address(ipaddress.ip_address(address), ())


def test_public_addresses_and_allowed_networks_pass() -> None:
    check_address(ipaddress.ip_address("93.184.216.34"), ())
    check_address(ipaddress.ip_address("10.1.2.3"), parse_networks(["10.1.0.0/16"]))


def test_a_slow_upstream_times_out_and_idempotent_calls_are_retried(base: str) -> None:
    before = HITS["/slow"]
    with pytest.raises(SourceTimeout):
        _rows(_table(base, "/slow", timeout=0.2, retries=1))
    assert HITS["/slow"] - before == 2


def test_a_post_is_never_retried(base: str) -> None:
    async def run() -> None:
        fetcher = HttpFetcher(HttpConfig(base, allow_networks=LOOPBACK, timeout=0.2, retries=3))
        try:
            await fetcher.fetch("POST", "/slow", body=b"{}")
        finally:
            await fetcher.aclose()

    before = HITS["POST /slow"]
    with pytest.raises(SourceTimeout):
        asyncio.run(run())
    assert HITS["POST /slow"] - before == 1


def test_an_upstream_that_lies_about_its_length_is_rejected(base: str) -> None:
    with pytest.raises(SourceRejected):
        _rows(_table(base, "/liar"))


@pytest.mark.parametrize(
    ("path", "error"),
    [("/garbage", SourceRejected), ("/error", SourceRejected), ("/wrong-types", SchemaMismatch)],
)
def test_garbage_answers_are_distinct_errors(base: str, path: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        _rows(_table(base, path))


def test_the_response_size_is_capped(base: str) -> None:
    with pytest.raises(SourceRejected, match="cap"):
        _rows(_table(base, "/big", max_bytes=100_000))


def test_redirects_stay_on_the_origin(base: str) -> None:
    assert len(_rows(_table(base, "/redirect-in"))) == len(ROWS)
    with pytest.raises(TargetRefused):
        _rows(_table(base, "/redirect-out"))


def test_an_upstream_that_is_down_is_unavailable() -> None:
    with pytest.raises(SourceUnavailable):
        _rows(_table("http://127.0.0.1:1", "/rows"))


def _proxy(base: str, method: str, path: str) -> Any:
    routes = (Route("GET", "/orders/{id}"), Route("POST", "/orders"))

    async def run() -> Any:
        proxy = HttpPassThrough(HttpConfig(base, allow_networks=LOOPBACK, timeout=0.5), routes)
        try:
            return await proxy.call(method, path, ("id", "name"), body=b"{}")
        finally:
            await proxy.aclose()

    return asyncio.run(run())


def test_pass_through_removes_fields_outside_the_allowed_columns(base: str) -> None:
    got = _proxy(base, "GET", "/orders/7")
    assert got.status == 200
    assert got.body == b'{"id":7,"name":"n7"}'
    assert _proxy(base, "POST", "/orders").body == b'{"id":1}'


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/orders/7"),
        ("GET", "/orders"),
        ("GET", "/orders/7/../../admin"),
        ("GET", "/orders/%2e%2e"),
        ("GET", "/orders/7/x"),
    ],
)
def test_pass_through_refuses_routes_outside_the_list(base: str, method: str, path: str) -> None:
    with pytest.raises(TargetRefused):
        _proxy(base, method, path)
