"""The callback outbox against each real store (SQLite, PostgreSQL when it answers) and a real
loopback TLS callback endpoint: a failed round stays pending until its next round or the next
start, messages of one process keep their order, and an old one is given up with its entry."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.audit.log import AuditLog
from gateway.dsp import outbox_repository
from gateway.dsp.callbacks import Callbacks
from gateway.dsp.outbox import Outbox, Outgoing
from gateway.storage.db import Database
from gateway.storage.models import DspOutboxRow
from tests.audit.logs import NOW, ORIGIN, SIGNER
from tests.support.databases import database_url
from tests.support.dsp_consumer import CallbackServer, callback_server
from tests.support.pki import Pki

LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)
ATTEMPTS = 2


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path / "db") as url:
        yield url


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path / "pki")


@pytest.fixture
def consumer(pki: Pki) -> Iterator[CallbackServer]:
    with callback_server(pki.server_cert, pki.server_key, pki.bundle) as server:
        yield server


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def _outbox(db: Database, audit: AuditLog, pki: Pki, clock: Clock) -> Outbox:
    tls = ssl.create_default_context(cafile=str(pki.bundle))
    maker = pki.client("Machine Maker BV", "EU.EORI.NL000000001", ["provider"])
    tls.load_cert_chain(maker.cert_path, maker.key_path)
    callbacks = Callbacks(LOOPBACK, tls, attempts=ATTEMPTS, first_delay=0.01)
    return Outbox(db, audit, callbacks, retry_interval=30, give_up_after=timedelta(hours=1),
                  clock=clock)  # fmt: skip


async def _store(db: Database, n: int, address: str) -> int:
    """Message ``n`` of one negotiation, stored as a state change stores it."""
    outgoing = Outgoing(process="dsp-negotiation:urn:uuid:p1", dataset_id="machines",
                        address=address, path=f"negotiations/urn:uuid:c1/m{n}",
                        message={"@type": "ContractNegotiationEventMessage", "n": n})  # fmt: skip
    async with db.session() as session:
        return await outgoing.put(session, NOW)


async def _rows(db: Database) -> list[tuple[str, int]]:
    async with db.session() as session:
        rows = await session.get(DspOutboxRow, 1), await session.get(DspOutboxRow, 2)
    return [(r.status, r.attempts) for r in rows if r is not None]


def test_a_failed_round_waits_for_its_time_or_the_next_start(
    backend: str, pki: Pki, consumer: CallbackServer
) -> None:
    async def run() -> list[tuple[str, Any]]:
        db = Database(backend)
        await db.upgrade()
        audit = AuditLog(db, SIGNER, ORIGIN)
        clock = Clock()
        outbox = _outbox(db, audit, pki, clock)
        try:
            first = await _store(db, 1, consumer.url)
            second = await _store(db, 2, consumer.url)
            consumer.fail_next(ATTEMPTS)
            await outbox.deliver(first)
            assert await _rows(db) == [("pending", 1), ("pending", 0)]
            await outbox.deliver(second)  # waits: the first of its process is pending
            assert await outbox.deliver_due() == 0  # the first's next round is not due
            assert consumer.received.empty()
            restarted = _outbox(db, audit, pki, clock)  # a new start tries every pending one
            assert await restarted.deliver_due(restarted=True) == 2
            assert await _rows(db) == [("delivered", 2), ("delivered", 1)]
            async with db.session() as session:  # kept a week, then forgotten
                await outbox_repository.purge(session, NOW - timedelta(days=7))
            assert len(await _rows(db)) == 2
            async with db.session() as session:
                await outbox_repository.purge(session, NOW + timedelta(minutes=1))
            assert await _rows(db) == []
            await restarted.callbacks.aclose()
            return [consumer.next(1), consumer.next(1)]
        finally:
            await outbox.aclose()
            await audit.close()
            await db.dispose()

    arrived = asyncio.run(run())
    assert [body["n"] for _, body in arrived] == [1, 2]  # in order
    assert arrived[0][0] == "/callback/negotiations/urn:uuid:c1/m1"


def test_a_message_too_old_is_given_up_with_its_entry(
    backend: str, pki: Pki, consumer: CallbackServer
) -> None:
    async def run() -> None:
        db = Database(backend)
        await db.upgrade()
        audit = AuditLog(db, SIGNER, ORIGIN)
        clock = Clock()
        outbox = _outbox(db, audit, pki, clock)
        try:
            row_id = await _store(db, 1, consumer.url)
            consumer.fail_next(ATTEMPTS)
            clock.now = NOW + timedelta(hours=2)
            assert await outbox.deliver_due() == 0
            assert (await _rows(db))[0] == ("given-up", 1)
            entry = (await audit.entries())[-1].entry
            assert (entry.action, entry.target) == ("dsp-callback-given-up",
                                                    "dsp-negotiation:urn:uuid:p1")  # fmt: skip
            assert entry.decision.result == "deny"
            await outbox.deliver(row_id)  # given up: never sent again
            assert consumer.received.empty()
        finally:
            await outbox.aclose()
            await audit.close()
            await db.dispose()

    asyncio.run(run())
