"""Hostile query values end to end over mTLS: a 400 naming the column and the rule, never 502/500.

The same table behind three sources: a Parquet file (files connector), a SQLite table and
a PostgreSQL table (SQL connector). The gateway's own store is SQLite for the first two and
PostgreSQL for the third. Every value of issue 12 is sent as a consumer would send it (JSON
body, or URL parameters) and must come back as problem+json 400 with ``column`` and ``rule``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from gateway.client import mtls_context
from gateway.storage.db import Database
from tests.support.databases import database_url, postgres_database
from tests.support.pki import ClientCert, Pki
from tests.support.registry import register_dataset, register_participants
from tests.support.server import gateway_settings, running_gateway

MAKER = "EU.EORI.NL000000001"
UNIVERSITY = "NTRNL-40000001"
RESEARCH = "https://w3id.org/dpv#AcademicResearch"
POLICY = f"""
uid: urn:sluis:policy:maker:readings
type: Offer
target: urn:sluis:dataset:readings
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    assignee: urn:sluis:participant:{UNIVERSITY}
    constraints: [[purpose, isAnyOf, [dpv:AcademicResearch]]]
    data:
      columns: [n64, n32, score, label, at, at_utc]
"""
ROWS = [
    {
        "n64": i,
        "n32": i,
        "score": i / 2,
        "label": f"r{i}",
        "at": datetime(2026, 1, 1 + i),
        "at_utc": datetime(2026, 1, 1 + i, tzinfo=UTC),
    }
    for i in range(3)
]
TABLE = sa.Table(
    "readings",
    sa.MetaData(),
    sa.Column("n64", sa.BigInteger),
    sa.Column("n32", sa.Integer),
    sa.Column("score", sa.Float),
    sa.Column("label", sa.Text),
    sa.Column("at", sa.DateTime(timezone=False)),
    sa.Column("at_utc", sa.DateTime(timezone=True)),
)


@dataclass
class World:
    source: str
    url: str
    pki: Pki
    university: ClientCert
    token: str


def _parquet(directory: Path) -> dict[str, Any]:
    directory.mkdir(parents=True, exist_ok=True)
    schema = pa.schema(
        [
            ("n64", pa.int64()),
            ("n32", pa.int32()),
            ("score", pa.float64()),
            ("label", pa.string()),
            ("at", pa.timestamp("us")),
            ("at_utc", pa.timestamp("us", tz="UTC")),
        ]
    )
    pq.write_table(pa.Table.from_pylist(ROWS, schema=schema), directory / "readings.parquet")
    return {
        "type": "files",
        "root": str(directory),
        "path": "readings.parquet",
        "format": "parquet",
    }


async def _table(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    async with engine.begin() as conn:
        await conn.run_sync(TABLE.metadata.create_all)
        await conn.execute(TABLE.insert(), ROWS)
    await engine.dispose()


async def _seed(store: str, connector: dict[str, Any]) -> None:
    db = Database(store)
    await db.upgrade()
    await register_participants(
        db, [(MAKER, "Maker", ["provider", "operator"]), (UNIVERSITY, "Uni", ["consumer"])]
    )
    await register_dataset(db, "readings", provider=MAKER, policy=POLICY, connector=connector)
    await db.dispose()


def _source(stack: ExitStack, source: str, home: Path) -> dict[str, Any]:
    if source == "files":
        return _parquet(home / "data")
    if source == "sqlite":
        url = f"sqlite+aiosqlite:///{home / 'source.db'}"
    else:
        url = stack.enter_context(postgres_database())
    asyncio.run(_table(url))
    return {"type": "sql", "url": url, "table": "readings"}


def _client(pki: Pki, cert: ClientCert, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    context = mtls_context(pki.bundle, cert.cert_path, cert.key_path)
    return httpx.Client(base_url="", verify=context, headers=headers, timeout=30)


def _consumer(base: str, pki: Pki, maker: ClientCert, university: ClientCert) -> str:
    with _client(pki, maker) as admin:
        body = {"client_id": UNIVERSITY, "auth_method": "tls_client_auth"}
        body["scopes"] = ["dataset:readings"]  # type: ignore[assignment]
        assert admin.post(f"{base}/v1/admin/clients", json=body).status_code == 201
    with _client(pki, university) as client:
        agreement = {"dataset": "readings", "purpose": RESEARCH}
        made = client.post(f"{base}/v1/agreements", json=agreement)
        assert made.json()["state"] == "active", made.text
        form = {"grant_type": "client_credentials", "client_id": UNIVERSITY}
        got = client.post(f"{base}/oauth2/token", data=form)
    assert got.status_code == 200, got.text
    return str(got.json()["access_token"])


@pytest.fixture(
    scope="module",
    params=["files", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    source = str(request.param)
    home = tmp_path_factory.mktemp(f"hostile-{source}")
    pki = Pki(home / "pki")
    maker = pki.client("Maker", MAKER, ["provider", "operator"])
    university = pki.client("Uni", UNIVERSITY)
    store_backend = "postgresql" if source == "postgresql" else "sqlite"
    with ExitStack() as stack:
        connector = _source(stack, source, home)
        store = stack.enter_context(database_url(store_backend, home))
        asyncio.run(_seed(store, connector))
        base = stack.enter_context(running_gateway(gateway_settings(pki, home, store)))
        token = _consumer(base, pki, maker, university)
        yield World(source, base, pki, university, token)


def _post(world: World, body: dict[str, Any]) -> httpx.Response:
    """The body as a consumer's JSON text: escapes (\\u0000, \\ud800), NaN, 2**70 as they are."""
    with _client(world.pki, world.university, world.token) as client:
        return client.post(
            f"{world.url}/v1/datasets/readings/query",
            content=json.dumps(body).encode("ascii"),
            headers={"Content-Type": "application/json"},
        )


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.text
    body = dict(response.json())
    assert body["type"] == f"urn:sluis:problem:{code}", body
    return body


def _where(column: str, value: Any, op: str = "eq") -> dict[str, Any]:
    return {"columns": ["n64"], "where": [{"column": column, "op": op, "value": value}]}


HOSTILE = [
    pytest.param("n64", 2**70, "integer-range", id="n64-2**70"),
    pytest.param("n64", -(2**63) - 1, "integer-range", id="n64-below-int64"),
    pytest.param("score", float("nan"), "finite-number", id="score-NaN"),
    pytest.param("score", float("inf"), "finite-number", id="score-Infinity"),
    pytest.param("score", 10**400, "number-range", id="score-10**400"),
    pytest.param("label", "a\x00b", "text-nul", id="label-NUL"),
    pytest.param("label", "\ud800", "text-utf8", id="label-lone-surrogate"),
    pytest.param("at", "2026-01-01T00:00:00+00:00", "timestamp-timezone", id="naive-column-aware"),
]


@pytest.mark.parametrize(("column", "value", "rule"), HOSTILE)
def test_a_hostile_value_is_a_400_naming_column_and_rule(
    world: World, column: str, value: Any, rule: str
) -> None:
    body = _problem(_post(world, _where(column, value)), 400, "value-refused")
    assert (body["column"], body["rule"]) == (column, rule)
    assert column in body["detail"]


def test_an_aware_column_refuses_a_naive_value(world: World) -> None:
    if world.source == "sqlite":
        pytest.skip("SQLite has no zone-aware column type: at_utc reads as naive there")
    response = _post(world, _where("at_utc", "2026-01-01T00:00:00"))
    body = _problem(response, 400, "value-refused")
    assert (body["column"], body["rule"]) == ("at_utc", "timestamp-timezone")
    answered = _post(world, _where("at_utc", "2026-01-02T01:00:00+01:00"))
    assert answered.status_code == 200, answered.text
    assert [json.loads(line) for line in answered.text.splitlines()] == [{"n64": 1}]


def test_an_int32_column_refuses_beyond_int32_where_the_source_enforces_it(world: World) -> None:
    response = _post(world, _where("n32", 2**40))
    if world.source == "sqlite":  # SQLite's integer columns are all 64-bit
        assert response.status_code == 200, response.text
        return
    body = _problem(response, 400, "value-refused")
    assert (body["column"], body["rule"]) == ("n32", "integer-range")


def test_forty_not_in_lists_of_a_thousand_are_too_many_values(world: World) -> None:
    where = [
        {"column": "n64", "op": "not_in", "value": list(range(i * 1000, (i + 1) * 1000))}
        for i in range(40)
    ]
    body = _problem(_post(world, {"columns": ["n64"], "where": where}), 400, "too-many-values")
    assert "10000" in body["detail"]


def test_url_parameters_carry_the_same_checks(world: World) -> None:
    with _client(world.pki, world.university, world.token) as client:
        big = client.get(
            f"{world.url}/v1/datasets/readings/data", params={"where": f"n64,eq,{2**70}"}
        )
        nul = client.get(
            f"{world.url}/v1/datasets/readings/data", params={"where": "label,eq,a\x00b"}
        )
        nan = client.get(f"{world.url}/v1/datasets/readings/data", params={"where": "score,lt,NaN"})
        name = client.get(f"{world.url}/v1/datasets/readings/data", params={"columns": "n64,a\x00"})
    assert _problem(big, 400, "value-refused")["rule"] == "integer-range"
    assert _problem(nul, 400, "value-refused")["rule"] == "text-nul"
    assert _problem(nan, 400, "value-refused")["rule"] == "finite-number"
    assert 400 <= name.status_code < 500, name.text  # an unknown name: refused, audited


@pytest.mark.parametrize(
    "body",
    [
        {"columns": ["\ud800"]},
        {"columns": ["n64", "a\x00b"]},
        {"columns": ["n64"], "where": [{"column": "x\udfff", "op": "is_null"}]},
        {"group_by": ["\ud800"], "aggregates": [{"func": "count"}]},
        {"aggregates": [{"func": "max", "column": "\ud800"}]},
        {"columns": ["n64"], "order_by": [{"column": "\ud800"}]},
    ],
    ids=["columns", "nul", "where", "group_by", "aggregate", "order_by"],
)
def test_a_name_that_is_not_utf8_is_a_4xx_and_the_audit_log_goes_on(
    world: World, body: dict[str, Any]
) -> None:
    """Names reach the policy's explanation and so the audit log, which escapes them."""
    response = _post(world, body)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "\ud800" not in response.content.decode("utf-8")  # the body is valid UTF-8
    assert _post(world, _where("label", "r1")).status_code == 200


def test_a_lone_surrogate_in_a_field_name_is_a_422_not_a_500(world: World) -> None:
    response = _post(world, {"columns": ["n64"], "\ud800": 1})
    _problem(response, 422, "validation-error")


def test_a_well_formed_query_is_still_answered(world: World) -> None:
    response = _post(world, _where("label", "r2"))
    assert response.status_code == 200, response.text
    assert [json.loads(line) for line in response.text.splitlines()] == [{"n64": 2}]
