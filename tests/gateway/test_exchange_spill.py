"""Grouping and ordering through the gateway: within the configured limits, or a 400 naming them.

Real mTLS, bound tokens, the files connector over a generated Parquet file, on SQLite and
PostgreSQL. The gateway runs with a 32 MiB engine memory limit; one gateway may spill to
disk, the other may not (``spill_disk_limit: 0``) and must refuse what does not fit. And a
client that stops reading stops the gateway reading (back-pressure from the socket to the
file).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow import ipc

from gateway.client import mtls_context
from gateway.oauth.clients import ClientService
from gateway.oauth.schemas import ClientCreate
from gateway.storage.db import Database
from tests.support.databases import database_url
from tests.support.pki import ClientCert, Pki
from tests.support.registry import register_dataset, register_participants
from tests.support.server import gateway_settings, running_gateway

MAKER = "EU.EORI.NL000000001"
UNIVERSITY = "NTRNL-40000001"
RESEARCH = "https://w3id.org/dpv#AcademicResearch"
ROWS = 1_000_000
MiB = 1 << 20

POLICY = f"""
uid: urn:sluis:policy:maker:big
type: Offer
target: urn:sluis:dataset:big
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    assignee: urn:sluis:participant:{UNIVERSITY}
    constraints: [[purpose, isAnyOf, [dpv:AcademicResearch]]]
"""


@dataclass
class World:
    url: str
    university: ClientCert
    bundle: Path
    spill_dir: Path


def _write_data(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = list(range(ROWS))
    table = pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "amount": pa.array([float(ROWS - i) for i in ids]),
            "note": pa.array([f"row {i:09d} lorem ipsum dolor sit amet" for i in ids]),
        }
    )
    pq.write_table(table, path, row_group_size=50_000)


async def _setup_db(url: str, home: Path) -> None:
    db = Database(url)
    await db.upgrade()
    await register_participants(
        db, [(MAKER, "Machine Maker BV", ["provider"]), (UNIVERSITY, "Uni", ["consumer"])]
    )
    files = {
        "type": "files",
        "root": str(home / "data"),
        "path": "big.parquet",
        "format": "parquet",
    }
    await register_dataset(
        db, "big", provider=MAKER, policy=POLICY, connector=files, approval="automatic"
    )
    client = ClientCreate(
        client_id=UNIVERSITY, auth_method="tls_client_auth", scopes=["dataset:big"]
    )
    await ClientService(db).create(client, now=datetime.now(UTC))
    await db.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _world(database: str, home: Path, disk: int) -> Iterator[World]:
    _write_data(home / "data" / "big.parquet")
    pki = Pki(home / "pki")
    university = pki.client("Uni", UNIVERSITY)
    with database_url(database, home) as url:
        asyncio.run(_setup_db(url, home))
        settings = gateway_settings(
            pki, home, url, spill_memory_limit=32 * MiB, spill_disk_limit=disk
        )
        with running_gateway(settings) as base:
            world = World(base, university, pki.bundle, settings.spill_directory)
            with _client(world) as client:
                body = {"dataset": "big", "purpose": RESEARCH}
                assert client.post("/v1/agreements", json=body).status_code == 201
            yield world


@pytest.fixture(scope="module")
def spilling(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from _world(database, tmp_path_factory.mktemp(f"spill-{database}"), 1 << 30)


@pytest.fixture(scope="module")
def no_disk(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from _world(database, tmp_path_factory.mktemp(f"nodisk-{database}"), 0)


def _client(world: World, token: str | None = None) -> httpx.Client:
    context = mtls_context(world.bundle, world.university.cert_path, world.university.key_path)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=world.url, verify=context, headers=headers, timeout=120)


def _query(world: World, body: dict[str, Any]) -> httpx.Response:
    with _client(world) as client:
        form = {"grant_type": "client_credentials", "client_id": UNIVERSITY}
        token = client.post("/oauth2/token", data=form).json()["access_token"]
    with _client(world, token) as client:
        return client.post("/v1/datasets/big/query", json={**body, "format": "arrow"})


ORDER = {"columns": ["id", "amount", "note"], "order_by": [{"column": "amount"}]}
GROUP = {"group_by": ["note"], "aggregates": [{"func": "sum", "column": "amount"}]}


def test_ordering_beyond_the_memory_limit_spills_and_answers(spilling: World) -> None:
    response = _query(spilling, ORDER)
    assert response.status_code == 200, response.text
    table = ipc.open_stream(response.content).read_all()
    assert table.num_rows == ROWS
    assert table.column("id").to_pylist() == list(reversed(range(ROWS)))
    assert list(spilling.spill_dir.iterdir()) == []  # the spill files are gone


def test_grouping_beyond_the_memory_limit_spills_and_answers(spilling: World) -> None:
    response = _query(spilling, GROUP)
    assert response.status_code == 200, response.text
    table = ipc.open_stream(response.content).read_all()
    assert table.num_rows == ROWS
    assert table.column_names == ["note", "sum_amount"]


@pytest.mark.parametrize("body", [ORDER, GROUP], ids=["order", "group"])
def test_without_room_to_spill_the_query_is_refused_naming_the_limits(
    no_disk: World, body: dict[str, Any]
) -> None:
    response = _query(no_disk, body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:sluis:problem:query-too-large"
    assert "memory limit 32 MiB" in problem["detail"]
    assert "spill limit 0 MiB" in problem["detail"]
    assert list(no_disk.spill_dir.iterdir()) == []


def test_a_stalled_client_holds_back_the_read(spilling: World) -> None:
    """Back-pressure end to end: while the client stops reading, the gateway stops reading.

    The gateway runs in this process, so Arrow's allocation counter is the gateway's: after
    the first chunk and a stall, what it holds must be a few batches, not the dataset.
    """
    with _client(spilling) as client:
        form = {"grant_type": "client_credentials", "client_id": UNIVERSITY}
        token = client.post("/oauth2/token", data=form).json()["access_token"]
    before = pa.total_allocated_bytes()
    body = {"columns": ["id", "amount", "note"], "format": "csv"}
    with (
        _client(spilling, token) as client,
        client.stream("POST", "/v1/datasets/big/query", json=body) as response,
    ):
        assert response.status_code == 200
        chunks = response.iter_raw(64 * 1024)
        size = len(next(chunks))
        time.sleep(1.5)  # the client stalls; a gateway without back-pressure reads on
        held = pa.total_allocated_bytes() - before
        size += sum(len(chunk) for chunk in chunks)
    assert size > 40 * MiB  # the whole answer came through in the end
    assert held < 24 * MiB, f"Arrow memory held during the stall: {held / MiB:.0f} MiB"
