"""HTTP answers read as they arrive (issue 12): decoded, capped on decoded bytes, parsed in
bounded batches; pass-through bodies with their media type, and upstream 4xx refusals.
Real loopback upstreams (tests/connectors/upstream.py)."""

from __future__ import annotations

import asyncio
import json
import resource
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from connectors import SchemaMismatch, SourceRejected, narrow
from connectors.http import HttpConfig, HttpTableConnector
from connectors.http_passthrough import HttpPassThrough, Route
from connectors.http_rows import ArrayRows, LineRows
from connectors.query import Query
from policies import DataLimits
from tests.connectors.cases import collect
from tests.connectors.upstream import HUGE_ROWS, ROWS, dense_bomb, upstream

LOOPBACK = ("127.0.0.1/32",)
SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with upstream() as url:
        yield url


def _table(base: str, path: str, **config: Any) -> HttpTableConnector:
    settings: dict[str, Any] = {"allow_networks": LOOPBACK, "timeout": 5, "retries": 0}
    return HttpTableConnector("api", HttpConfig(base, path, schema=SCHEMA, **settings | config))


def _rows(connector: HttpTableConnector) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        try:
            return await collect(connector, Query())
        finally:
            await connector.aclose()

    return asyncio.run(run())


def test_a_gzip_encoded_answer_is_decoded(base: str) -> None:
    rows = _rows(_table(base, "/gzip-rows"))
    assert rows == [{"id": r["id"], "name": r["name"]} for r in ROWS]


def test_a_gzip_bomb_is_refused_on_its_decoded_size(base: str) -> None:
    with pytest.raises(SourceRejected, match=r"larger than the cap \(1000000 bytes\)"):
        _rows(_table(base, "/bomb", max_bytes=1_000_000))


def test_a_dense_gzip_bomb_is_refused_before_it_is_decoded_past_the_cap(base: str) -> None:
    """One network read of ~60 KB inflates to ~60 MiB: decoding it in one call (as httpx
    does) holds that much before the cap is checked; bounded steps never hold more than one."""
    dense_bomb()  # made before tracing: the upstream's own copy is not the gateway's cost
    tracemalloc.start()
    try:
        with pytest.raises(SourceRejected, match=r"larger than the cap \(1000000 bytes\)"):
            _rows(_table(base, "/dense-bomb", max_bytes=1_000_000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"peak {peak >> 20} MiB while refusing a 1 MB cap"


@pytest.mark.parametrize(
    "path", ["/deflate-rows", "/raw-deflate-rows", "/twice-rows", "/trailing-gzip"]
)
def test_deflate_and_stacked_codings_are_decoded(base: str, path: str) -> None:
    assert _rows(_table(base, path)) == [{"id": r["id"], "name": r["name"]} for r in ROWS]


def test_a_corrupt_gzip_answer_is_refused(base: str) -> None:
    with pytest.raises(SourceRejected, match="corrupt"):
        _rows(_table(base, "/corrupt-gzip"))


def test_a_content_coding_the_gateway_does_not_read_is_refused(base: str) -> None:
    with pytest.raises(SourceRejected, match="content coding"):
        _rows(_table(base, "/brotli"))


def test_a_nested_field_outside_the_schema_is_skipped_however_deep(base: str) -> None:
    assert _rows(_table(base, "/deep-field")) == [{"id": 1, "name": "a"}]


def test_a_deeply_nested_answer_is_a_schema_mismatch_not_a_crash(base: str) -> None:
    with pytest.raises(SchemaMismatch):
        _rows(_table(base, "/deep"))


def test_a_60_mb_answer_streams_in_bounded_batches_within_bounded_memory(base: str) -> None:
    async def count() -> tuple[int, int]:
        connector = _table(base, "/huge")
        rows = biggest = 0
        try:
            permitted = narrow(Query(columns=("id", "name")), DataLimits(), SCHEMA)
            async for batch in connector.stream(permitted):
                rows += batch.num_rows
                biggest = max(biggest, batch.num_rows)
        finally:
            await connector.aclose()
        return rows, biggest

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows, biggest = asyncio.run(count())
    assert rows == HUGE_ROWS
    assert biggest <= 10_000
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 120  # streamed: about 20 MiB; read whole: about 320 MiB


@pytest.mark.parametrize("parser", [ArrayRows, LineRows])
def test_rows_split_anywhere_across_chunks_parse_the_same(parser: type[Any]) -> None:
    rows = [{"id": i, "name": f"é{i}", "n": {"x": [i]}} for i in range(5)]
    whole = (
        json.dumps(rows).encode()
        if parser is ArrayRows
        else "\n".join(json.dumps(r) for r in rows).encode()
    )
    for size in (1, 2, 7, len(whole)):
        reader, seen = parser(), []
        for start in range(0, len(whole), size):
            seen += reader.feed(whole[start : start + size])
        seen += reader.close()
        assert [(r["id"], r["name"]) for r in seen] == [(r["id"], r["name"]) for r in rows]


def test_a_cut_short_array_is_rejected() -> None:
    reader = ArrayRows()
    reader.feed(b'[{"id": 1}, {"id"')
    with pytest.raises(SourceRejected):
        reader.close()


def _proxy(base: str, routes: tuple[Route, ...], **config: Any) -> HttpPassThrough:
    return HttpPassThrough(HttpConfig(base, allow_networks=LOOPBACK, timeout=5, **config), routes)


def test_pass_through_sends_the_body_with_its_content_type(base: str) -> None:
    async def run() -> Any:
        proxy = _proxy(base, (Route("POST", "/echo-type"),))
        try:
            kind = "application/merge-patch+json"
            return await proxy.call("POST", "/echo-type", ("type",), body=b"{}", content_type=kind)
        finally:
            await proxy.aclose()

    assert json.loads(asyncio.run(run()).body) == {"type": "application/merge-patch+json"}


def test_an_upstream_4xx_passes_its_status_never_its_body(base: str) -> None:
    async def run() -> Any:
        proxy = _proxy(base, (Route("GET", "/teapot"),))
        try:
            return await proxy.call("GET", "/teapot", ("id",))
        finally:
            await proxy.aclose()

    proxied = asyncio.run(run())
    assert (proxied.status, proxied.body, proxied.refused) == (418, b"", True)


def test_a_pass_through_bomb_is_refused_on_its_decoded_size(base: str) -> None:
    async def run() -> Any:
        proxy = _proxy(base, (Route("GET", "/bomb"),), max_bytes=1_000_000)
        try:
            return await proxy.call("GET", "/bomb", ("id",))
        finally:
            await proxy.aclose()

    with pytest.raises(SourceRejected, match="cap"):
        asyncio.run(run())
