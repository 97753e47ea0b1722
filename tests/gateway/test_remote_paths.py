"""A remote caller never sees the operator's paths, roots or hosts (issue 16).

Files datasets registered while their data was in place, then broken on disk: the file
gone, the file swapped for a link out of the root (to /etc/passwd), the root gone. Each
query is refused with the documented problem type and a fixed sentence; the audit entry
keeps the full reason for the officer. Over real mTLS, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI

from connectors import (
    ConnectorConfigError,
    PathRefused,
    SchemaMismatch,
    SourceError,
    SourceRejected,
    SourceTimeout,
    SourceUnavailable,
    TargetRefused,
    UnknownColumn,
)
from connectors.http_guard import check_address
from gateway.client import mtls_context
from gateway.http import problems
from gateway.storage.db import Database
from tests.support.databases import database_url
from tests.support.pki import ClientCert, Pki
from tests.support.registry import register_dataset, register_participants
from tests.support.server import gateway_settings, running_gateway

MAKER = "EU.EORI.NL000000001"
UNIVERSITY = "NTRNL-40000001"
OFFICER = "NTRNL-40000005"
RESEARCH = "https://w3id.org/dpv#AcademicResearch"
BROKEN = ("gone", "escaped", "rootless")


def _policy(dataset: str) -> str:
    return f"""
uid: urn:sluis:policy:maker:{dataset}
type: Offer
target: urn:sluis:dataset:{dataset}
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    assignee: urn:sluis:participant:{UNIVERSITY}
    constraints: [[purpose, isAnyOf, [dpv:AcademicResearch]]]
"""


@dataclass
class World:
    url: str
    pki: Pki
    home: Path
    certs: dict[str, ClientCert]


def _root(home: Path, dataset: str) -> Path:
    return home / f"secret-root-{dataset}"


async def _setup(url: str, home: Path) -> None:
    db = Database(url)
    await db.upgrade()
    await register_participants(
        db,
        [
            (MAKER, "Machine Maker BV", ["provider", "operator"]),
            (UNIVERSITY, "Universiteit Oost", ["consumer"]),
            (OFFICER, "Security Office", ["officer"]),
        ],
    )
    for dataset in BROKEN:
        root = _root(home, dataset)
        root.mkdir()
        pq.write_table(pa.table({"machine": ["X200"]}), root / "private-name.parquet")
        connector = {
            "type": "files",
            "root": str(root),
            "path": "private-name.parquet",
            "format": "parquet",
        }
        await register_dataset(
            db, dataset, provider=MAKER, policy=_policy(dataset), connector=connector
        )
    await db.dispose()


def _break(home: Path) -> None:
    """After registration: what an operator's disk can turn into."""
    (_root(home, "gone") / "private-name.parquet").unlink()
    escaped = _root(home, "escaped") / "private-name.parquet"
    escaped.unlink()
    escaped.symlink_to("/etc/passwd")
    shutil.rmtree(_root(home, "rootless"))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    home = tmp_path_factory.mktemp(f"paths-{request.param}")
    pki = Pki(home / "pki")
    certs = {
        "maker": pki.client("Machine Maker BV", MAKER, ["provider", "operator"]),
        "university": pki.client("Universiteit Oost", UNIVERSITY),
        "officer": pki.client("Security Office", OFFICER, ["officer"]),
    }
    with database_url(request.param, home) as url:
        asyncio.run(_setup(url, home))
        _break(home)
        with running_gateway(gateway_settings(pki, home, url)) as base:
            world = World(base, pki, home, certs)
            with _client(world, "maker") as admin:
                body = {
                    "client_id": UNIVERSITY,
                    "auth_method": "tls_client_auth",
                    "scopes": [f"dataset:{d}" for d in BROKEN],
                }
                assert admin.post("/v1/admin/clients", json=body).status_code == 201
            yield world


def _client(world: World, who: str, token: str | None = None) -> httpx.Client:
    cert = world.certs[who]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    context = mtls_context(world.pki.bundle, cert.cert_path, cert.key_path)
    return httpx.Client(base_url=world.url, verify=context, headers=headers, timeout=30)


def _query(world: World, dataset: str) -> httpx.Response:
    with _client(world, "university") as client:
        made = client.post("/v1/agreements", json={"dataset": dataset, "purpose": RESEARCH})
        assert made.status_code == 201, made.text
        form = {
            "grant_type": "client_credentials",
            "client_id": UNIVERSITY,
            "scope": f"dataset:{dataset}",
        }
        token = client.post("/oauth2/token", data=form).json()["access_token"]
    with _client(world, "university", token) as client:
        return client.post(f"/v1/datasets/{dataset}/query", json={})


@pytest.mark.parametrize(
    ("dataset", "status", "kind"),
    [
        ("gone", 502, "source-unavailable"),
        ("escaped", 400, "path-refused"),
        ("rootless", 500, "connector-config"),
    ],
)
def test_a_broken_files_dataset_names_no_server_side_path(
    world: World, dataset: str, status: int, kind: str
) -> None:
    response = _query(world, dataset)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == f"urn:sluis:problem:{kind}"
    for secret in ("private-name", "secret-root", "/etc/passwd", str(world.home)):
        assert secret not in response.text
    with _client(world, "officer") as officer:
        entries = officer.get("/v1/audit/entries", params={"dataset": dataset}).json()["entries"]
    reasons = " ".join(" ".join(e["entry"]["decision"]["reasons"]) for e in entries)
    assert "private-name" in reasons or "secret-root" in reasons  # the officer learns which


@pytest.mark.parametrize(
    "error",
    [
        SourceUnavailable("cannot resolve 'db.internal.example'"),
        SourceRejected("the upstream broke the protocol (RemoteProtocolError)"),
        SchemaMismatch("rows do not fit the schema (/srv/data/x.csv: column a)"),
        SourceTimeout("the database did not answer within 5s"),
        SourceError("files: the source failed (OSError)"),
        ConnectorConfigError("the files root does not exist: /srv/data"),
        PathRefused("a dangling link: 'x.csv'"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_the_operator_side_of_a_connector_error_stays_in_the_log(error: Exception) -> None:
    """Every sibling of the files errors: hosts, driver text and roots are the operator's."""
    response = _raise_through_problems(error)
    assert response.json()["detail"] == error.public_reason  # type: ignore[attr-defined]
    for secret in ("internal", "RemoteProtocolError", "/srv", "x.csv", "5s", "OSError"):
        assert secret not in response.text


def test_the_ssrf_guard_does_not_tell_a_consumer_the_upstream_address() -> None:
    with pytest.raises(TargetRefused) as caught:
        check_address(ipaddress.ip_address("10.1.2.3"), ())
    assert "10.1.2.3" in caught.value.reason  # for the log and the audit entry
    assert "10.1.2.3" not in _raise_through_problems(caught.value).text


def test_a_consumer_still_sees_what_was_wrong_with_its_own_query() -> None:
    response = _raise_through_problems(UnknownColumn("temp_f"))
    assert response.json()["detail"] == "unknown column: 'temp_f'"
    assert response.json()["column"] == "temp_f"


def _raise_through_problems(error: Exception) -> httpx.Response:
    app = FastAPI()
    problems.install(app)

    @app.get("/boom")
    async def boom() -> None:
        raise error

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.get("/boom")

    return asyncio.run(call())
