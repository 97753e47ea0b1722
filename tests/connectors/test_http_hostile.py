"""Hostile upstreams and hostile paths against the HTTP connectors (issue 12), on loopback."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from connectors import ConnectorConfigError, SourceRejected, SourceTimeout, TargetRefused
from connectors.http import HttpConfig, HttpFetcher, HttpTableConnector
from connectors.http_guard import check_address, check_base_url
from connectors.http_passthrough import HttpPassThrough, Route
from tests.connectors.upstream import HITS, SEEN, upstream

LOOPBACK = ("127.0.0.1/32",)
ROUTES = (
    Route("GET", "/orders/{id}"),
    Route("GET", "/nested"),
    Route("GET", "/deep"),
    Route("GET", "/error"),
    Route("GET", "/set-cookie"),
    Route("GET", "/echo-cookie"),
    Route("GET", "/method"),
    Route("POST", "/see-other"),
    Route("POST", "/temporary"),
    Route("POST", "/method"),
)


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with upstream() as url:
        yield url


def _body(method: str) -> bytes | None:
    return b'{"x": 1}' if method == "POST" else None


def _calls(base: str, *calls: tuple[str, str, tuple[str, ...]]) -> list[Any]:
    """Each (method, path, columns) through one proxy, as parsed JSON bodies."""

    async def run() -> list[Any]:
        config = HttpConfig(base, allow_networks=LOOPBACK, timeout=0.5, retries=0)
        proxy = HttpPassThrough(config, ROUTES)
        try:
            return [
                json.loads((await proxy.call(m, p, c, body=_body(m))).body or b"null")
                for m, p, c in calls
            ]
        finally:
            await proxy.aclose()

    return asyncio.run(run())


def test_nested_fields_are_filtered_by_json_paths(base: str) -> None:
    paths = ("order", "machine.model", "lines[].qty", "data[].order")
    assert _calls(base, ("GET", "/nested", paths)) == [
        {"order": 7, "machine": {"model": "X200"}, "lines": [{"qty": 2}, {"qty": 3}],
         "data": [{"order": 8}]}
    ]  # fmt: skip


def test_a_bare_name_keeps_its_subtree_and_nothing_else_passes(base: str) -> None:
    got = _calls(base, ("GET", "/nested", ("machine",)), ("GET", "/nested", ()))
    assert got == [{"machine": {"model": "X200", "customer": "X"}}, {}]


def test_json_nested_too_deeply_is_rejected_not_a_crash(base: str) -> None:
    with pytest.raises(SourceRejected, match="nested"):
        _calls(base, ("GET", "/deep", ("order",)))


def test_upstream_cookies_never_reach_a_later_call(base: str) -> None:
    got = _calls(base, ("GET", "/set-cookie", ("id",)), ("GET", "/echo-cookie", ("id",)))
    assert got == [{"id": 1}, {"id": None}]


@pytest.mark.parametrize("path", ["/orders/.", "/orders/..", "/orders//", "/orders/7/", "/orders"])
def test_dot_and_empty_segments_are_refused_before_matching(base: str, path: str) -> None:
    before = HITS["/orders/"]
    with pytest.raises(TargetRefused):
        _calls(base, ("GET", path, ("id",)))
    assert HITS["/orders/"] == before  # the listing was never asked for


def test_a_redirect_to_a_path_off_the_allow_list_is_refused(base: str) -> None:
    with pytest.raises(TargetRefused):
        _calls(base, ("GET", "/orders/8", ("id",)))
    assert HITS["/secret"] == 0


def test_an_upstream_5xx_is_a_source_rejected_without_its_body(base: str) -> None:
    with pytest.raises(SourceRejected, match="500") as caught:
        _calls(base, ("GET", "/error", ("error",)))
    assert "boom" not in str(caught.value)


def test_a_303_turns_a_post_into_a_get_without_body_and_a_307_keeps_both(base: str) -> None:
    SEEN.clear()
    got = _calls(base, ("POST", "/see-other", ("method",)), ("POST", "/temporary", ("method",)))
    assert got == [{"method": "GET"}, {"method": "POST"}]
    assert SEEN[-1] == ("POST", "/method", b'{"x": 1}')


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_put_and_delete_are_not_retried_after_a_timeout(base: str, method: str) -> None:
    async def run() -> None:
        fetcher = HttpFetcher(HttpConfig(base, allow_networks=LOOPBACK, timeout=0.2, retries=3))
        try:
            await fetcher.fetch(method, "/slow", body=b"{}")
        finally:
            await fetcher.aclose()

    before = HITS[f"{method} /slow"]
    with pytest.raises(SourceTimeout):
        asyncio.run(run())
    assert HITS[f"{method} /slow"] - before == 1


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b:1::a9fe:a9fe",  # local-use NAT64, /96 layout
        "64:ff9b:1:a9fe:a9:fe00::",  # local-use NAT64, /48 layout
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "::a9fe:a9fe",  # IPv4-compatible 169.254.169.254
        "2001:0:5db8:d822:0:f227:80ff:fffe",  # Teredo, client 127.0.0.1
    ],
)
def test_ipv6_forms_of_private_ipv4_addresses_are_refused(address: str) -> None:
    with pytest.raises(TargetRefused):
        check_address(ipaddress.ip_address(address), ())


def test_ipv6_forms_of_public_ipv4_addresses_pass() -> None:
    for address in ("64:ff9b::5db8:d822", "2002:5db8:d822::1"):
        check_address(ipaddress.ip_address(address), ())


@pytest.mark.parametrize(
    "url",
    [
        "http://0177.0.0.1",
        "http://0x7f.0.0.1",
        "http://2130706433",
        "http://127.1",
        "ftp://example.com",
        "http://user:pw@example.com",
        "not a url",
    ],
)
def test_unusable_base_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConnectorConfigError):
        check_base_url(url)
    with pytest.raises(ConnectorConfigError):
        HttpFetcher(HttpConfig(url))


def test_bad_allowed_networks_are_configuration_errors() -> None:
    with pytest.raises(ConnectorConfigError):
        HttpFetcher(HttpConfig("http://example.com", allow_networks=("10.0.0.1/8",)))


@pytest.mark.parametrize("path", ["/rows/../admin", "/./rows", "rows"])
def test_a_tabular_path_that_would_be_rewritten_is_a_configuration_error(path: str) -> None:
    schema = pa.schema([("id", pa.int64())])
    with pytest.raises(ConnectorConfigError):
        HttpTableConnector("api", HttpConfig("http://example.com", path, schema=schema))
