"""Issue 11: a policy whose target can never match its dataset's asset is refused at registration.

On SQLite and PostgreSQL through the service, and on the command line (``sluis datasets add``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from gateway.cli.main import app
from gateway.datasets.factory import create_connector
from gateway.datasets.schemas import DatasetSpec
from gateway.datasets.service import DatasetService
from gateway.errors import BadRequest, ServiceUnavailable
from gateway.storage.db import Database
from gateway.storage.models import PolicyVersionRow
from tests.support.databases import database_url
from tests.support.pki import NOW
from tests.support.registry import files_connector, register_participants
from tests.support.server import signing_key

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"
PROVIDER = "NTRNL-10000001"
CONNECTOR = files_connector()  # registration reads the file: it must exist
HEAD = "uid: urn:sluis:policy:meters\ntype: Offer\n"
MISMATCHES = {
    "policy-level typo": HEAD + "target: urn:sluis:dataset:metres\npermissions: [{action: read}]",
    "every permission elsewhere": HEAD + "permissions: [{action: read, target: urn:x}]",
    "a prohibition elsewhere": HEAD
    + "target: urn:sluis:dataset:meters\npermissions: [{action: read}]\n"
    + "prohibitions: [{action: use, target: urn:sluis:dataset:metres}]",
    "an unplaced collection": HEAD
    + "permissions: [{action: read, target: {collection: urn:sluis:assets:all}}]",
}
MATCHES = {
    "the asset": HEAD + "target: urn:sluis:dataset:meters\npermissions: [{action: read}]",
    "a list holding it": HEAD
    + "target: [urn:x, urn:sluis:dataset:meters]\npermissions: [{action: read}]",
    "no target": HEAD + "permissions: [{action: read}]",
    "one of two permissions": HEAD
    + "permissions: [{action: read, target: urn:x},\n"
    + "              {action: read, target: urn:sluis:dataset:meters}]",
    "deny-all": HEAD + "target: urn:x",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL with the provider registered."""
    with database_url(request.param, tmp_path) as url:
        asyncio.run(_seed(url))
        yield url


async def _seed(url: str) -> None:
    db = Database(url)
    try:
        await db.upgrade()
        await register_participants(db, [(PROVIDER, "P", ["provider"])])
    finally:
        await db.dispose()


def _register(
    url: str, policy: str, fmt: str = "yaml", asset: str | None = None, dataset: str = "meters"
) -> str:
    spec = DatasetSpec(id=dataset, title="m", provider=PROVIDER, policy="p", asset=asset,
                       connector=CONNECTOR)  # fmt: skip

    async def run() -> str:
        db = Database(url)
        try:
            return (
                await DatasetService(db, create_connector).register(spec, policy, fmt, now=NOW)
            ).asset
        finally:
            await db.dispose()

    return asyncio.run(run())


@pytest.mark.parametrize("name", sorted(MISMATCHES))
def test_a_policy_that_cannot_reach_the_asset_is_refused(db: str, name: str) -> None:
    with pytest.raises(BadRequest) as caught:
        _register(db, MISMATCHES[name])
    assert caught.value.code == "policy-target-mismatch"
    assert "urn:sluis:dataset:meters" in caught.value.detail


@pytest.mark.parametrize("name", sorted(MATCHES))
def test_a_policy_that_reaches_the_asset_is_registered(db: str, name: str) -> None:
    assert _register(db, MATCHES[name]) == "urn:sluis:dataset:meters"


def test_the_example_policies_register_for_their_assets(db: Database) -> None:
    ttl = (EXAMPLES / "grid_meters.ttl").read_text()
    assert _register(db, ttl, "turtle", dataset="smart-meters")
    yaml_text = (EXAMPLES / "machine_sensors.yaml").read_text()
    assert _register(db, yaml_text, dataset="spindle-sensors")
    private = (EXAMPLES / "staff_salaries.yaml").read_text()
    assert _register(db, private, dataset="staff-salaries")
    with pytest.raises(BadRequest):
        _register(db, yaml_text)  # the default asset, urn:sluis:dataset:meters


def test_datasets_add_refuses_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SLUIS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SLUIS_HOME", str(tmp_path))
    # Admin changes are audited: the CLI signs with the gateway's audit key.
    monkeypatch.setenv("SLUIS_AUDIT_KEY_FILE", str(signing_key(tmp_path, "audit-key.pem")))
    runner = CliRunner()
    added = runner.invoke(
        app, ["participants", "add", PROVIDER, "--name", "P", "--role", "provider"]
    )
    assert added.exit_code == 0, added.output
    (tmp_path / "policy.yaml").write_text(MISMATCHES["policy-level typo"])
    spec = (
        f"id: meters\ntitle: m\nprovider: {PROVIDER}\npolicy: policy.yaml\nconnector: {CONNECTOR}\n"
    )
    (tmp_path / "spec.yaml").write_text(spec)
    result = runner.invoke(app, ["datasets", "add", str(tmp_path / "spec.yaml")])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("sluis: error: ")
    assert "urn:sluis:dataset:metres" in lines[0]
    assert "urn:sluis:dataset:meters" in lines[0]


def test_a_stored_version_that_no_longer_validates_is_unavailable(db: str) -> None:
    """A version stored by an older, lenient release (``date:`` for ``data:``) is refused
    on load with a clear problem, never served under the lenient reading and never a 500."""
    _register(db, MATCHES["the asset"])
    lenient = MATCHES["the asset"].replace(
        "[{action: read}]", "[{action: read, date: {columns: [a]}}]"
    )

    async def load() -> None:
        database = Database(db)
        try:
            async with database.session() as session:
                row = await session.scalar(select(PolicyVersionRow))
                assert row is not None
                row.text, digest = lenient, row.hash
            await DatasetService(database, create_connector).policy(digest)
        finally:
            await database.dispose()

    with pytest.raises(ServiceUnavailable) as caught:
        asyncio.run(load())
    assert caught.value.code == "policy-unloadable"
    assert "permissions[0].date" in caught.value.detail


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        ("policy: other.yaml\n", "spec.yaml:6:1: policy: given twice (duplicate_key)"),
        ("approval:\n", "spec.yaml:6:1: approval: given without a value (empty_value)"),
        ("aproval: automatic\n", "spec.yaml:6:1: aproval: unknown key (unknown_key)"),
    ],
)
def test_a_dataset_spec_is_read_strictly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tail: str, message: str
) -> None:
    """YAML keeps the last of two equal keys; the spec that registers a policy must not."""
    monkeypatch.setenv("SLUIS_HOME", str(tmp_path))
    spec = (
        f"id: meters\ntitle: m\nprovider: {PROVIDER}\npolicy: policy.yaml\nconnector: {CONNECTOR}\n"
    )
    (tmp_path / "spec.yaml").write_text(spec + tail)
    result = CliRunner().invoke(app, ["datasets", "add", str(tmp_path / "spec.yaml")])
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [f"sluis: error: {tmp_path}/{message}"]
