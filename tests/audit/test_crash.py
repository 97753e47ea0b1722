"""A writer SIGKILLed mid-append loses no acknowledged entry and leaves a consistent tree."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.audit.checkpoint import verify_checkpoint
from gateway.audit.log import AuditReader
from gateway.audit.merkle import leaf_hash
from gateway.storage.db import Database
from tests.audit.logs import ORIGIN, SIGNER, assert_consistent, opened, sample
from tests.support.databases import database_url

REPO = Path(__file__).resolve().parents[2]
ACKS_BEFORE_KILL = 300


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as value:
        yield value


def _run_and_kill(url: str) -> dict[int, bytes]:
    """Start the child, SIGKILL it once it acknowledged enough; every receipt it printed."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.audit.crash_child", url],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    acked: dict[int, bytes] = {}
    try:
        for line in child.stdout:
            index, leaf = line.split()
            acked[int(index)] = bytes.fromhex(leaf)
            if len(acked) >= ACKS_BEFORE_KILL:
                os.kill(child.pid, signal.SIGKILL)
                break
        for line in child.stdout.read().splitlines():  # printed before it died
            index, _, leaf = line.partition(" ")
            if len(leaf) == 64:
                acked[int(index)] = bytes.fromhex(leaf)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    return acked


def test_killed_writer_loses_no_acknowledged_entry(url: str) -> None:
    asyncio.run(_migrate(url))
    acked = _run_and_kill(url)

    async def check() -> None:
        db = Database(url)
        reader = AuditReader(db)
        size = await assert_consistent(reader)
        assert size >= len(acked)
        for record in await reader.entry_range(0, size):
            if record.index in acked:
                assert leaf_hash(record.data) == acked.pop(record.index)
        assert not acked
        await db.dispose()
        async with opened(url) as log:  # a restarted writer carries on from committed rows
            receipt = await log.append(sample(10_000))
            assert receipt.index == size
            signed = await log.checkpoint_now()
            assert verify_checkpoint(signed.note, [SIGNER.verifier()], ORIGIN).size == size + 1
            await assert_consistent(log)

    asyncio.run(check())


async def _migrate(url: str) -> None:
    db = Database(url)
    await db.upgrade()
    await db.dispose()
