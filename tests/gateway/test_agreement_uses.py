"""Counting uses atomically: two replicas racing for the last use, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.agreements import repository
from gateway.storage.db import Database
from gateway.storage.models import AgreementRow, PolicyVersionRow
from tests.support.databases import database_url
from tests.support.pki import NOW
from tests.support.registry import register_dataset, register_participants

POLICY = """
uid: urn:sluis:policy:uses
type: Offer
target: urn:sluis:dataset:d
permissions: [{action: read}]
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as value:
        yield value


async def _agreement(db: Database) -> str:
    await register_participants(db, [("NTRNL-10000001", "P", ["provider"]),
                                     ("NTRNL-10000002", "C", ["consumer"])])  # fmt: skip
    connector = {"type": "files", "root": "/nonexistent", "path": "x.parquet", "format": "parquet"}
    await register_dataset(db, "d", provider="NTRNL-10000001", policy=POLICY, connector=connector)
    async with db.session() as session:
        digest = await session.scalar(select(PolicyVersionRow.hash))
        session.add(AgreementRow(
            id="agr-race", dataset_id="d", consumer_id="NTRNL-10000002", purpose="x:y",
            state="active", policy_hash=str(digest), reason=None, use_count=0, created_at=NOW,
            updated_at=NOW, decided_at=NOW,
        ))  # fmt: skip
    return "agr-race"


def test_two_replicas_cannot_both_spend_the_same_use(url: str) -> None:
    async def run() -> list[bool]:
        first, second = Database(url), Database(url)  # two replicas, two connection pools
        await first.upgrade()
        agreement_id = await _agreement(first)

        async def spend(db: Database) -> bool:
            async with db.session() as session:
                return await repository.spend(session, agreement_id, 0, NOW)

        results = list(await asyncio.gather(*(spend(db) for db in (first, second) * 5),
                                            return_exceptions=False))  # fmt: skip
        async with first.session() as session:
            row = await repository.get(session, agreement_id)
            assert row is not None
            assert row.use_count == 1
        await first.dispose()
        await second.dispose()
        return results

    outcomes = asyncio.run(run())
    assert outcomes.count(True) == 1  # ten attempts at use number 1: exactly one counts
