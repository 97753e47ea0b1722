"""The Python client and ``sluis fetch`` against the real server over mTLS.

Each refusal of the exchange reaches the SDK as a SluisError with a stable problem type,
and is audited; hostile bodies get 4xx, never 500.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from gateway.cli.main import app
from gateway.client import SluisClient, SluisError, mtls_context
from gateway.storage.db import Database
from tests.gateway.test_exchange import AGGREGATE_POLICY, POLICY, _write_data
from tests.support.pki import ClientCert, Pki
from tests.support.registry import register_dataset, register_participants
from tests.support.server import gateway_settings, running_gateway

MAKER = "EU.EORI.NL000000001"
UNIVERSITY = "NTRNL-40000001"
OFFICER = "NTRNL-40000005"
RESEARCH = "https://w3id.org/dpv#AcademicResearch"


@dataclass
class World:
    url: str
    pki: Pki
    certs: dict[str, ClientCert]
    database: Path


async def _setup_db(url: str, home: Path) -> None:
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
    files = {
        "type": "files",
        "root": str(home / "data"),
        "path": "sensors.parquet",
        "format": "parquet",
    }
    for dataset_id, policy in [("sensors", POLICY), ("sensors-agg", AGGREGATE_POLICY)]:
        await register_dataset(db, dataset_id, provider=MAKER, policy=policy, connector=files)
    await db.dispose()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("sdk")
    _write_data(home / "data")
    pki = Pki(home / "pki")
    certs = {
        "maker": pki.client("Machine Maker BV", MAKER, ["provider", "operator"]),
        "university": pki.client("Universiteit Oost", UNIVERSITY),
        "officer": pki.client("Security Office", OFFICER, ["officer"]),
    }
    url = f"sqlite+aiosqlite:///{home / 'sluis.db'}"
    asyncio.run(_setup_db(url, home))
    with running_gateway(gateway_settings(pki, home, url)) as base:
        world = World(base, pki, certs, home / "sluis.db")
        context = mtls_context(pki.bundle, certs["maker"].cert_path, certs["maker"].key_path)
        with httpx.Client(base_url=base, verify=context) as admin:
            body = {"client_id": UNIVERSITY, "auth_method": "tls_client_auth",
                    "scopes": ["dataset:sensors", "dataset:sensors-agg"]}  # fmt: skip
            assert admin.post("/v1/admin/clients", json=body).status_code == 201
        yield world


def _sdk(world: World, who: str, client_id: str | None = None) -> SluisClient:
    cert = world.certs[who]
    return SluisClient(
        world.url,
        ca_bundle=world.pki.bundle,
        cert_file=cert.cert_path,
        key_file=cert.key_path,
        client_id=client_id or UNIVERSITY,
    )


def _refused(action: Any) -> SluisError:
    with pytest.raises(SluisError) as info:
        action()
    return info.value


def test_query_returns_an_arrow_table_with_a_receipt(world: World) -> None:
    with _sdk(world, "university") as uni:
        uni.request_agreement("sensors", purpose=RESEARCH)
        table = uni.query("sensors", columns=["machine", "temp_c"], where=[("temp_c", "lt", 62.0)])
        assert table.column_names == ["machine", "temp_c"]
        assert table.num_rows == 2
        assert uni.last_receipt is not None
        assert uni.last_receipt.checkpoint.startswith(b"localhost:8443/audit\n")
        catalog = {d["dct:identifier"] for d in uni.catalog()}
    assert catalog == {"sensors", "sensors-agg"}


def test_fetch_streams_to_a_file(world: World, tmp_path: Path) -> None:
    out = tmp_path / "sensors.parquet"
    with _sdk(world, "university") as uni:
        seen: list[int] = []
        receipt = uni.fetch(
            "sensors", out, fmt="parquet", columns=["machine"], progress=seen.append
        )
    assert pq.read_table(out).num_rows == 8
    assert sum(seen) == out.stat().st_size
    assert receipt.index >= 0
    assert not out.with_name(out.name + ".part").exists()


def test_sluis_fetch_command(world: World, tmp_path: Path) -> None:
    cert = world.certs["university"]
    env = {
        "SLUIS_GATEWAY_URL": world.url,
        "SLUIS_CA_BUNDLE": str(world.pki.bundle),
        "SLUIS_CLIENT_CERT": str(cert.cert_path),
        "SLUIS_CLIENT_KEY": str(cert.key_path),
        "SLUIS_CLIENT_ID": UNIVERSITY,
    }
    out = tmp_path / "x.csv"
    runner = CliRunner()
    done = runner.invoke(
        app, ["fetch", "sensors", "-o", str(out), "--format", "csv", "--where", "machine,eq,Z9"],
        env=env,
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert out.read_text().splitlines()[1].startswith('"Z9"')
    refused = runner.invoke(
        app, ["fetch", "sensors", "-o", str(out), "--columns", "serial"], env=env
    )
    assert refused.exit_code == 1
    assert refused.output.startswith("sluis: error: 403 column-not-allowed")


def test_refusals_reach_the_sdk_with_stable_types(world: World) -> None:
    with _sdk(world, "university") as uni, _sdk(world, "maker", MAKER) as maker:
        first = uni.request_agreement("sensors-agg", purpose=RESEARCH)
        assert (
            _refused(lambda: uni.query("sensors-agg", columns=["machine"])).type
            == "aggregate-required"
        )
        maker_error = _refused(lambda: maker.decide_agreement(first["id"], "revoke", "study over"))
        assert maker_error.type == "oauth-invalid-client"  # the maker has no OAuth client
        assert f"sluis clients add {MAKER}" in maker_error.detail  # what to register
        assert "('" not in maker_error.detail  # not a Python tuple
    context = mtls_context(
        world.pki.bundle, world.certs["maker"].cert_path, world.certs["maker"].key_path
    )
    with httpx.Client(base_url=world.url, verify=context) as provider:
        revoked = provider.post(
            f"/v1/agreements/{first['id']}/revoke", json={"reason": "study over"}
        )
    assert revoked.json()["state"] == "revoked"
    assert revoked.json()["reason"] == "study over"
    with _sdk(world, "university") as uni:
        error = _refused(
            lambda: uni.query("sensors-agg", group_by=["machine"], aggregates=[("count", None)])
        )
        assert (error.status, error.type) == (403, "no-agreement")
        wrong = uni.request_agreement("sensors-agg", purpose="https://w3id.org/dpv#Marketing")
        assert wrong["state"] == "rejected"
        assert (
            _refused(lambda: uni.query("sensors-agg", aggregates=[("count", None)])).type
            == "no-agreement"
        )
    with httpx.Client(base_url=world.url, verify=_mtls(world, "officer")) as officer:
        entries = officer.get("/v1/audit/entries", params={"dataset": "sensors-agg", "limit": 500})
    denied = [e["entry"]["decision"]["reasons"][0] for e in entries.json()["entries"]
              if e["entry"]["event"] == "access-decision"]  # fmt: skip
    assert "no-agreement" in denied
    assert "no_active_permission" in denied


def _mtls(world: World, who: str) -> Any:
    cert = world.certs[who]
    return mtls_context(world.pki.bundle, cert.cert_path, cert.key_path)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"x" * (2 << 20), 413),
        (b"[" * 100_000 + b"]" * 100_000, 400),
        (b'{"columns": [], "nonsense": 1}', 422),
        (b'{"where": [{"column": "temp_c", "op": "between", "value": 1}]}', 422),
        (b'{"limit": -1}', 422),
        (b"\xff\xfe", 422),
    ],
    ids=["oversized", "deep", "unknown-field", "unknown-op", "negative-limit", "not-utf8"],
)
def test_hostile_bodies_get_4xx_never_500(world: World, body: bytes, status: int) -> None:
    with _sdk(world, "university") as uni:
        uni._ensure_token()
        token = uni._oauth.token["access_token"]
    with httpx.Client(base_url=world.url, verify=_mtls(world, "university")) as client:
        response = client.post(
            "/v1/datasets/sensors/query",
            content=body,
            headers={"Authorization": f"Bearer {token}", "content-type": "application/json"},
        )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_no_data_leaves_when_the_audit_store_is_unavailable(world: World) -> None:
    with _sdk(world, "university") as uni:
        uni.request_agreement("sensors", purpose=RESEARCH)
        uni._ensure_token()
        blocker = sqlite3.connect(world.database, timeout=1, isolation_level=None)
        try:
            blocker.execute("BEGIN EXCLUSIVE")  # every writer waits 5 s, then gives up
            error = _refused(lambda: uni.query("sensors", columns=["machine"]))
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert (error.status, error.type) == (503, "storage-unavailable")
        assert uni.query("sensors", columns=["machine"]).num_rows == 8  # and back when it is


def _cli_env(world: World, who: str) -> dict[str, str]:
    cert = world.certs[who]
    return {
        "SLUIS_GATEWAY_URL": world.url,
        "SLUIS_CA_BUNDLE": str(world.pki.bundle),
        "SLUIS_CLIENT_CERT": str(cert.cert_path),
        "SLUIS_CLIENT_KEY": str(cert.key_path),
    }


def test_sluis_agreements_command(world: World) -> None:
    runner = CliRunner()
    consumer, provider = _cli_env(world, "university"), _cli_env(world, "maker")
    asked = runner.invoke(
        app, ["agreements", "request", "sensors-agg", "--purpose", RESEARCH], env=consumer
    )
    assert asked.exit_code == 0, asked.output
    agreement_id = asked.output.split()[0]
    again = runner.invoke(
        app, ["agreements", "request", "sensors-agg", "--purpose", RESEARCH], env=consumer
    )
    assert again.exit_code == 0, again.output
    assert again.output.split()[0] == agreement_id  # one live agreement per dataset
    assert "nothing new was requested" in again.output
    listed = runner.invoke(app, ["agreements", "list"], env={**provider, "COLUMNS": "250"})
    assert agreement_id in listed.output
    refused = runner.invoke(
        app, ["agreements", "revoke", agreement_id, "--reason", "x"], env=consumer
    )
    assert refused.exit_code == 1
    assert refused.output.startswith("sluis: error: 403 role-required")
    revoked = runner.invoke(
        app, ["agreements", "revoke", agreement_id, "--reason", "study over"], env=provider
    )
    assert "revoked (study over)" in revoked.output
    again = runner.invoke(app, ["agreements", "approve", agreement_id], env=provider)
    assert again.output.startswith("sluis: error: 409 agreement-state")


def test_fetch_asks_for_aggregates_from_the_cli_and_the_sdk(world: World, tmp_path: Path) -> None:
    """An aggregates-only dataset is usable from ``sluis fetch`` and ``SluisClient.fetch``."""
    with _sdk(world, "university") as uni:
        asked = uni.request_agreement("sensors-agg", purpose=RESEARCH)
        if asked["state"] == "requested":  # manual approval: the provider approves
            with httpx.Client(base_url=world.url, verify=_mtls(world, "maker")) as provider:
                approved = provider.post(f"/v1/agreements/{asked['id']}/approve")
                assert approved.json()["state"] == "active", approved.text
        out = tmp_path / "agg.parquet"
        uni.fetch("sensors-agg", out, group_by=["machine"], aggregates=[("count", None)])
        # min_group_size 3: Z9's one machine is not released
        assert pq.read_table(out).to_pydict() == {"machine": ["X200", "X300"], "count_rows": [4, 3]}
    env = {**_cli_env(world, "university"), "SLUIS_CLIENT_ID": UNIVERSITY}
    runner = CliRunner()
    out = tmp_path / "agg.csv"
    args = ["fetch", "sensors-agg", "-o", str(out), "--format", "csv", "--group-by", "machine"]
    done = runner.invoke(app, [*args, "--agg", "count", "--agg", "max:temp_c"], env=env)
    assert done.exit_code == 0, done.output
    assert out.read_text().splitlines() == [
        '"machine","count_rows","max_temp_c"',
        '"X200",4,63',
        '"X300",3,66',
    ]
    for bad, said in [
        (["--agg", "median:temp_c"], "--agg 'median:temp_c': unknown function 'median'; use one"),
        (["--agg", "avg"], "--agg 'avg': avg needs a column (avg:COLUMN)"),
        (["--group-by", "machine"], "--group-by needs at least one --agg"),
        (["--agg", "count", "--columns", "machine"], "--columns is for rows;"),
    ]:
        refused = runner.invoke(app, ["fetch", "sensors-agg", "-o", str(out), *bad], env=env)
        assert refused.exit_code == 1
        assert refused.output.startswith(f"sluis: error: {said}"), refused.output
