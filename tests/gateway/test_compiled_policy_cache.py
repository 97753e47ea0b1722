"""Issue 10: the gateway compiles a policy version once and decides every request on it.

On SQLite and PostgreSQL through the dataset service: the compiled policy is cached per
version (its hash), so the exchange no longer pays for hashing and validating on each request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

import gateway.datasets.service
from gateway.datasets.factory import create_connector
from gateway.datasets.schemas import DatasetSpec
from gateway.datasets.service import DatasetService
from gateway.storage.db import Database
from policies import CompiledPolicy, Policy, Profile
from tests.support.databases import database_url
from tests.support.pki import NOW
from tests.support.registry import files_connector, register_participants

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policies" / "machine_sensors.yaml"
PROVIDER = "NTRNL-10000001"


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


async def _load_twice(url: str) -> tuple[str, CompiledPolicy, CompiledPolicy, Policy]:
    spec = DatasetSpec(id="spindle-sensors", title="s", provider=PROVIDER, policy="p",
                       connector=files_connector())  # fmt: skip
    db = Database(url)
    try:
        service = DatasetService(db, create_connector)
        dataset = await service.register(spec, EXAMPLE.read_text(), "yaml", now=NOW)
        first = await service.compiled(dataset.policy_hash)
        second = await service.compiled(dataset.policy_hash)
        return dataset.policy_hash, first, second, await service.policy(dataset.policy_hash)
    finally:
        await db.dispose()


def test_a_policy_version_is_compiled_once_per_process(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled: list[Policy] = []
    real = gateway.datasets.service.compile_policy

    def spy(policy: Policy, profile: Profile) -> CompiledPolicy:
        compiled.append(policy)
        return real(policy, profile)

    monkeypatch.setattr(gateway.datasets.service, "compile_policy", spy)
    digest, first, second, policy = asyncio.run(_load_twice(db))
    assert first is second
    assert first.policy_hash == digest
    assert first.refusal is None
    assert policy is first.policy
    assert len(compiled) == 1
