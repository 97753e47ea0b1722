"""Hostile sources through the whole gateway (issue 12): an upstream's 4xx reaches the
consumer as its status with a problem of the gateway's own (never the upstream's body); a
pass-through POST goes up with the consumer's Content-Type; a gzip-encoded answer is read;
a compression bomb is a 502 ``source-rejected`` naming the cap.

Real TLS gateway with client certificates, real SQLite and PostgreSQL registries, a real
loopback upstream (tests/connectors/upstream.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.client import mtls_context
from gateway.storage.db import Database
from tests.connectors.upstream import ROWS, upstream
from tests.support.databases import database_url
from tests.support.pki import ClientCert, Pki
from tests.support.registry import register_dataset, register_participants
from tests.support.server import gateway_settings, running_gateway

MAKER = "EU.EORI.NL000000001"
UNIVERSITY = "NTRNL-40000001"
RESEARCH = "https://w3id.org/dpv#AcademicResearch"
DATASETS = ("api", "rows", "bomb")


def _policy(dataset: str, columns: str) -> str:
    return f"""
uid: urn:sluis:policy:maker:{dataset}
type: Offer
target: urn:sluis:dataset:{dataset}
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    assignee: urn:sluis:participant:{UNIVERSITY}
    constraints: [[purpose, isAnyOf, [dpv:AcademicResearch]]]
    data: {{columns: [{columns}]}}
"""


async def _setup(url: str, base: str) -> None:
    db = Database(url)
    await db.upgrade()
    await register_participants(
        db, [(MAKER, "Maker", ["provider", "operator"]), (UNIVERSITY, "Uni", ["consumer"])]
    )
    network = ["127.0.0.1/32"]
    api = {
        "type": "http-passthrough",
        "base_url": base,
        "routes": [{"method": "GET", "path": "/teapot"}, {"method": "POST", "path": "/echo-type"}],
        "allow_networks": network,
    }
    table = {"base_url": base, "columns": {"id": "int64", "name": "string"}}
    rows = {"type": "http", "path": "/gzip-rows", "allow_networks": network, **table}
    bomb = {"type": "http", "path": "/bomb", "allow_networks": network, "max_bytes": 10**6}
    connectors = {"api": (api, "type"), "rows": (rows, "id, name"), "bomb": (bomb | table, "id")}
    for dataset, (connector, columns) in connectors.items():
        policy = _policy(dataset, columns)
        await register_dataset(db, dataset, provider=MAKER, policy=policy, connector=connector)
    await db.dispose()


@dataclass
class World:
    url: str
    pki: Pki
    university: ClientCert
    token: str


def _client(url: str, pki: Pki, cert: ClientCert, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    context = mtls_context(pki.bundle, cert.cert_path, cert.key_path)
    return httpx.Client(base_url=url, verify=context, headers=headers, timeout=30)


def _token(base: str, pki: Pki, maker: ClientCert, university: ClientCert) -> str:
    with _client(base, pki, maker) as admin:
        scopes = [f"dataset:{d}" for d in DATASETS]
        body = {"client_id": UNIVERSITY, "auth_method": "tls_client_auth", "scopes": scopes}
        assert admin.post("/v1/admin/clients", json=body).status_code == 201
    with _client(base, pki, university) as client:
        for dataset in DATASETS:
            made = client.post("/v1/agreements", json={"dataset": dataset, "purpose": RESEARCH})
            assert made.status_code in {200, 201}, made.text
        form = {"grant_type": "client_credentials", "client_id": UNIVERSITY}
        return str(client.post("/oauth2/token", data=form).json()["access_token"])


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    home: Path = tmp_path_factory.mktemp(f"hostile-{request.param}")
    pki = Pki(home / "pki")
    maker = pki.client("Maker", MAKER, ["provider", "operator"])
    university = pki.client("Uni", UNIVERSITY)
    with upstream() as base, database_url(request.param, home) as url:
        asyncio.run(_setup(url, base))
        with running_gateway(gateway_settings(pki, home, url)) as gateway:
            yield World(gateway, pki, university, _token(gateway, pki, maker, university))


def _call(world: World, method: str, target: str, **options: object) -> httpx.Response:
    with _client(world.url, world.pki, world.university, world.token) as client:
        return client.request(method, target, **options)  # type: ignore[arg-type]


def test_an_upstream_4xx_is_its_status_with_our_problem_never_its_body(world: World) -> None:
    response = _call(world, "GET", "/v1/datasets/api/api/teapot")
    assert response.status_code == 418
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:sluis:problem:upstream-refused"
    assert "internal-host-42" not in response.text
    assert int(response.headers["sluis-audit-index"]) >= 0


def test_a_pass_through_post_goes_up_with_its_content_type(world: World) -> None:
    kind = "application/merge-patch+json"
    response = _call(
        world,
        "POST",
        "/v1/datasets/api/api/echo-type",
        content=b"{}",
        headers={"content-type": kind},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"type": kind}


def test_a_gzip_encoded_table_is_read(world: World) -> None:
    response = _call(world, "GET", "/v1/datasets/rows/data?columns=id,name")
    assert response.status_code == 200, response.text
    assert len(response.text.splitlines()) == len(ROWS)


def test_a_compression_bomb_is_a_502_naming_the_cap(world: World) -> None:
    response = _call(world, "GET", "/v1/datasets/bomb/data?columns=id")
    assert response.status_code == 502
    assert response.json()["type"] == "urn:sluis:problem:source-rejected"
    # The consumer learns the source misbehaved; the cap it broke is in the gateway's log
    # and the exchange's audit entry, not in the answer (provider-side detail).
    assert (
        response.json()["detail"]
        == "the data source answered with an error or an unusable response"
    )
