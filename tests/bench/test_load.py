"""The load benchmark still measures what it says, on SQLite and PostgreSQL (a short run).

``make bench`` does not run in CI; this keeps its moving parts honest there: every
connection is its own consumer and gets answers without errors, the one-consumer cell runs,
and the earlier uses are seeded by direct SQL into the usage tables the gateway reads (a
schema change that breaks the seeding fails here, not on the integrator's quiet machine).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bench.load import _arguments, run_gateway, write_csv
from bench.world import World, consumer_ids
from gateway.storage.db import Database
from gateway.storage.models import UsageStateRow
from tests.support.databases import database_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def world_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[World, str]]:
    write_csv(tmp_path / "sensors.csv")
    world = World(tmp_path, consumer_ids(3))
    with database_url(request.param, tmp_path) as url:
        yield world, url


async def _uses(url: str, consumer: str) -> int:
    db = Database(url)
    try:
        async with db.session() as session:
            query = select(UsageStateRow.use_count).where(UsageStateRow.consumer_id == consumer)
            return int((await session.execute(query)).scalar_one())
    finally:
        await db.dispose()


def test_a_short_run_measures_every_table(world_url: tuple[World, str]) -> None:
    world, url = world_url
    run, body = run_gateway(world, url, [1, 2], 0.3, earlier_uses=(0, 40))
    assert body.startswith(b'"machine","temp_c","vibration","serial"\n')
    assert 2000 < len(body) < 2800  # the "2.4 KB CSV"
    for cell in [*run.cells.values(), run.one_consumer, *run.uses.values()]:
        assert cell.latencies
        assert not cell.errors, cell.errors
        assert cell.server_cpu > 0  # the gateway's CPU seconds, read from /proc
        assert cell.cpu_ms > 0
    # every connection of the crowd was a consumer of its own: each one spent uses
    crowd, fresh = world.consumers[:2], world.consumers[2]
    spent = [asyncio.run(_uses(url, party.id)) for party in crowd]
    assert all(n > 0 for n in spent), spent
    # the fresh consumer's earlier uses were seeded up to 40, then measured on top
    assert asyncio.run(_uses(url, fresh.id)) > 40


def test_the_targets_and_uses_can_be_chosen() -> None:
    chosen = _arguments(["--targets", "sqlite", "--connections", "8,32", "--uses", ""])
    assert (chosen.targets, chosen.connections, chosen.uses) == (["sqlite"], [8, 32], [])
    every = _arguments([])
    assert every.targets == ["sqlite", "postgresql", "bare", "nginx"]
    assert every.uses == [0, 10_000, 100_000]
    with pytest.raises(SystemExit):
        _arguments(["--targets", "sqlite,mysql"])
