"""Datasets' connectors: a bad configuration is refused at registration (400), and a
connector replaced after a configuration change is closed once its last user is done.
Real SQLite and PostgreSQL registries; real SQL engines behind the connectors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from fastapi import FastAPI

from connectors import Connector, ConnectorConfigError, QueryError, SourceRejected
from connectors.testing import InMemoryConnector
from gateway.datasets.factory import create_connector
from gateway.datasets.schemas import DatasetSpec
from gateway.datasets.service import DatasetService
from gateway.errors import BadRequest
from gateway.http import problems
from gateway.storage.db import Database
from tests.support.databases import database_url
from tests.support.pki import NOW
from tests.support.registry import register_participants

MAKER = "EU.EORI.NL000000001"
POLICY = """
uid: urn:sluis:policy:maker:x
type: Offer
target: urn:sluis:dataset:x
permissions:
  - action: read
"""


class _Tracked(InMemoryConnector):
    """The in-memory connector, remembering whether it was closed."""

    closed = False

    async def aclose(self) -> None:
        self.closed = True
        await super().aclose()


def _factory(built: list[_Tracked]) -> Any:
    def build(dataset_id: str, config: Mapping[str, Any]) -> Connector:
        if config.get("type") != "memory":
            return create_connector(dataset_id, config)
        built.append(_Tracked(dataset_id, pa.table({"v": [config["v"]]})))
        return built[-1]

    return build


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as url:
        yield url


def _spec(connector: dict[str, Any]) -> DatasetSpec:
    return DatasetSpec(id="x", title="x", provider=MAKER, policy="inline", connector=connector)


async def _service(url: str, built: list[_Tracked]) -> tuple[Database, DatasetService]:
    db = Database(url)
    await db.upgrade()
    await register_participants(db, [(MAKER, "Maker", ["provider"])])
    return db, DatasetService(db, _factory(built))


def test_a_replaced_connector_is_closed_after_its_last_lease(db_url: str) -> None:
    async def run() -> None:
        built: list[_Tracked] = []
        db, service = await _service(db_url, built)
        try:
            await service.register(_spec({"type": "memory", "v": 1}), POLICY, "yaml", now=NOW)
            old = await service.lease_connector(await service.get("x"))
            await service.register(_spec({"type": "memory", "v": 2}), POLICY, "yaml", now=NOW)
            new = await service.lease_connector(await service.get("x"))
            assert new.value is not old.value
            assert not old.value.closed  # still in use by a request in flight
            await old.release()
            assert old.value.closed
            await new.release()
            again = await service.lease_connector(await service.get("x"))
            assert again.value is new.value  # cached, not rebuilt
            assert not new.value.closed
            await again.release()
        finally:
            await service.aclose()
            await db.dispose()
        assert all(c.closed for c in built)

    asyncio.run(run())


@pytest.mark.parametrize(
    "connector",
    [
        {"type": "http", "base_url": "http://0177.0.0.1", "columns": {"id": "int64"}},
        {"type": "http-passthrough", "base_url": "http://0x7f.1", "routes": [
            {"method": "GET", "path": "/x"}]},
        {"type": "http", "base_url": "http://example.com", "columns": {"id": "int64"},
         "allow_networks": ["10.0.0.1/8"]},
        {"type": "files", "root": "/srv", "path": "x.csv", "format": "xls"},
        {"type": "no-such-kind"},
        {"type": "http", "base_url": "http://example.com", "columns": {"id": "int64"},
         "max_bytes": 0},
        {"type": "http-passthrough", "base_url": "http://example.com", "max_bytes": "16M",
         "routes": [{"method": "GET", "path": "/x"}]},
    ],
)  # fmt: skip
def test_a_bad_connector_configuration_is_a_400_at_registration(
    db_url: str, connector: dict[str, Any]
) -> None:
    async def run() -> None:
        db, service = await _service(db_url, [])
        try:
            with pytest.raises(BadRequest) as caught:
                await service.register(_spec(connector), POLICY, "yaml", now=NOW)
            assert caught.value.code == "connector-config"
        finally:
            await service.aclose()
            await db.dispose()

    asyncio.run(run())


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (ConnectorConfigError("the policy's row filter does not fit"), 500, "connector-config"),
        (SourceRejected("the upstream answered 500"), 502, "source-rejected"),
        (QueryError("limit and min_group_size must be integers from 0 to 2147483647"), 400,
         "query-invalid"),
    ],
)  # fmt: skip
def test_connector_errors_become_the_documented_problems(
    error: Exception, status: int, kind: str
) -> None:
    app = FastAPI()
    problems.install(app)

    @app.get("/boom")
    async def boom() -> None:
        raise error

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.get("/boom")

    response = asyncio.run(call())
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == f"urn:sluis:problem:{kind}"


def test_a_pass_through_policy_with_an_unusable_json_path_is_refused(db_url: str) -> None:
    policy = POLICY + '    data: {columns: [order, "lines[.qty"]}\n'
    connector = {
        "type": "http-passthrough",
        "base_url": "http://127.0.0.1:9",
        "routes": [{"method": "GET", "path": "/x"}],
    }

    async def run() -> None:
        db, service = await _service(db_url, [])
        try:
            with pytest.raises(BadRequest, match="lines"):
                await service.register(_spec(connector), policy, "yaml", now=NOW)
        finally:
            await service.aclose()
            await db.dispose()

    asyncio.run(run())
