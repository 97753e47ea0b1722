"""A running gateway says it is alive, and records the open exchanges of a gateway process
that is gone for good (killed, its ``instance_name`` never started again) as interrupted.

The rules (who counts as gone, once, never a live process) are tested on the exchange
service in test_write_path.py; here the served gateway's own timer does it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from gateway.audit.log import AuditLog
from gateway.storage.db import Database
from gateway.storage.models import GatewayInstanceRow, OpenExchangeRow
from tests.audit.logs import ORIGIN, SIGNER
from tests.support.pki import Pki
from tests.support.server import gateway_settings, serving

#: How long the test waits for the first beats (one every second with the setting below).
DEADLINE = 20.0


async def _left_by_a_gone_process(url: str) -> None:
    db = Database(url)
    await db.upgrade()
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    async with db.session() as session:
        await session.execute(insert(GatewayInstanceRow).values(name="gone", seen_at=long_ago))
        row = {"id": "x-1", "owner": "gone", "consumer_id": "c", "dataset_id": "d"}
        await session.execute(insert(OpenExchangeRow).values(**row, started_at=long_ago))
    await db.dispose()


async def _state(url: str) -> tuple[list[str], list[str], list[tuple[str | None, tuple[str, ...]]]]:
    db = Database(url)
    log = AuditLog(db, SIGNER, ORIGIN)
    try:
        async with db.session() as session:
            left = list((await session.scalars(select(OpenExchangeRow.id))).all())
            alive = list((await session.scalars(select(GatewayInstanceRow.name))).all())
        ended = [
            (r.entry.request_id, r.entry.decision.reasons)
            for r in await log.entries()
            if r.entry.event == "exchange-completed" and r.entry.decision is not None
        ]
        return left, alive, ended
    finally:
        await log.close()
        await db.dispose()


def test_a_served_gateway_records_what_a_gone_process_left_open(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    asyncio.run(_left_by_a_gone_process(url))
    pki = Pki(tmp_path / "pki")
    settings = gateway_settings(
        pki, tmp_path, url, instance_name="gw-here", instance_stale_after=10
    )
    with serving(settings):
        deadline = time.monotonic() + DEADLINE
        while (state := asyncio.run(_state(url)))[0] and time.monotonic() < deadline:
            time.sleep(0.2)
    left, alive, ended = state
    assert left == []
    assert alive == ["gw-here"]  # the gone process's row forgotten, this one's kept fresh
    assert ended == [("x-1", ("interrupted", "its gateway process stopped being seen"))]


def test_instance_stale_after_has_a_floor(tmp_path: Path) -> None:
    """Beats every tenth of it: below 10 s a busy database could make a live process look
    gone."""
    pki = Pki(tmp_path / "pki")
    with pytest.raises(ValueError, match=r"instance_stale_after[\s\S]*greater than or equal to 10"):
        gateway_settings(pki, tmp_path, "sqlite+aiosqlite://", instance_stale_after=9.9)
