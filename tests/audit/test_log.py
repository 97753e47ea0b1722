"""The audit log on real SQLite and PostgreSQL: receipts, proofs, group commit, failures."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.audit.checkpoint import verify_checkpoint
from gateway.audit.errors import ProofError
from gateway.audit.log import AuditLog
from gateway.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from gateway.audit.repository import EntryFilter
from gateway.storage import StorageUnavailable
from gateway.storage.db import Database
from tests.audit.logs import NOW, ORIGIN, SIGNER, assert_consistent, opened, sample
from tests.support.databases import database_url

JWT = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as value:
        yield value


def test_receipt_proves_inclusion_in_a_signed_checkpoint(url: str) -> None:
    async def run() -> None:
        async with opened(url, sign_batches=False) as log:
            receipts = [await log.append(sample(n)) for n in range(7)]
            assert [r.index for r in receipts] == list(range(7))
            signed = await log.checkpoint_for(receipts[3])
            cp = verify_checkpoint(signed.note, [SIGNER.verifier()], ORIGIN)
            # signed from the receipt's own tree (its batch), so it includes entry 3 ...
            assert cp.size == receipts[3].tree_size
            assert cp.root_hash == receipts[3].root_hash
            cp = verify_checkpoint((await log.checkpoint_now()).note, [SIGNER.verifier()], ORIGIN)
            assert cp.size == 7  # ... and the latest checkpoint covers all of them
            assert cp.root_hash == receipts[-1].root_hash
            for receipt in receipts:
                proof = await log.inclusion_proof(receipt.index, cp.size)
                assert proof.leaf_hash == receipt.leaf_hash
                verify_inclusion(
                    proof.leaf_hash, receipt.index, cp.size, proof.hashes, cp.root_hash
                )
            (record,) = await log.entry_range(3, 4)
            assert leaf_hash(record.data) == receipts[3].leaf_hash
            assert record.entry == sample(3)

    asyncio.run(run())


def test_a_checkpoint_for_a_receipt_covers_its_entry_and_proofs_say_what_they_prove(
    url: str,
) -> None:
    """The cached newest checkpoint serves a receipt only if it holds the entry (size
    beyond the index); proofs carry their index and sizes; an empty log has no checkpoint."""

    async def run() -> None:
        async with opened(url, checkpoint_delay=3600, sign_batches=False) as log:
            assert await log.latest_checkpoint() is None
            first = await log.append(sample(0))
            assert (await log.checkpoint_for(first)).checkpoint.size == 1
            second = await log.append(sample(1))
            assert (await log.checkpoint_for(second)).checkpoint.size == 2
            proof = await log.inclusion_proof(0, 2)
            assert (proof.index, proof.tree_size, proof.leaf_hash) == (0, 2, first.leaf_hash)
            consistency = await log.consistency_proof(1, 2)
            assert (consistency.size1, consistency.size2) == (1, 2)

    asyncio.run(run())


def test_consistency_between_checkpoints(url: str) -> None:
    async def run() -> None:
        # No background checkpoint: on a slow machine it would add sizes between ours.
        async with opened(url, checkpoint_delay=3600, sign_batches=False) as log:
            sizes = []
            for n in range(1, 14):
                await log.append(sample(n))
                if n in {1, 2, 5, 8, 13}:
                    sizes.append((await log.checkpoint_now()).checkpoint)
            assert [c.size for c in await log.checkpoints()] == [1, 2, 5, 8, 13]
            for old in sizes:
                for new in sizes:
                    if old.size <= new.size:
                        proof = await log.consistency_proof(old.size, new.size)
                        verify_consistency(
                            old.size, new.size, proof.hashes, old.root_hash, new.root_hash
                        )
            with pytest.raises(ProofError):
                await log.consistency_proof(5, 14)
            with pytest.raises(ProofError):
                await log.inclusion_proof(13, 13)
            assert await log.checkpoint_now() == (await log.checkpoints())[-1]

    asyncio.run(run())


def test_group_commit_of_200_concurrent_appends(url: str) -> None:
    async def run() -> None:
        async with opened(url) as log:
            receipts = await asyncio.gather(*(log.append(sample(n)) for n in range(200)))
            assert sorted(r.index for r in receipts) == list(range(200))
            assert len({r.tree_size for r in receipts}) < 20  # batched, not 200 commits
            assert await assert_consistent(log) == 200
            final = max(receipts, key=lambda r: r.tree_size)
            assert await log.root_at(200) == final.root_hash

    asyncio.run(run())


def test_filters(url: str) -> None:
    async def run() -> None:
        async with opened(url) as log:
            for n in range(12):
                await log.append(sample(n, time=NOW + timedelta(minutes=n)))
            deny = await log.entries(EntryFilter(decision="deny"))
            assert [r.index for r in deny] == [0, 4, 8]
            window = EntryFilter(since=NOW + timedelta(minutes=2), until=NOW + timedelta(minutes=5))
            assert [r.index for r in await log.entries(window)] == [2, 3, 4]
            both = EntryFilter(participant="NTRNL-00000001", dataset="ds1")
            assert [r.index for r in await log.entries(both)] == [1, 7]
            page = await log.entries(EntryFilter(after=9, limit=5))
            assert [r.index for r in page] == [10, 11]

    asyncio.run(run())


def test_background_checkpointer_signs_new_entries(url: str) -> None:
    async def run() -> None:
        async with opened(url, checkpoint_delay=0.01) as log:
            await log.append(sample(1))
            for _ in range(1000):  # polls the store (up to ~10 s against hanging, not timing)
                latest = await log.latest_checkpoint()
                if latest is not None:
                    break
                await asyncio.sleep(0.01)
            assert latest is not None
            assert latest.size == 1

    asyncio.run(run())


def test_an_entry_carrying_a_raw_token_is_written_redacted(url: str) -> None:
    async def run() -> None:
        async with opened(url) as log:
            receipt = await log.append(sample(1, purpose=f"token {JWT}"))
            assert await log.size() == 1
            (record,) = await log.entry_range(receipt.index, receipt.index + 1)
            assert JWT.encode() not in record.data
            assert record.entry.redacted == ("purpose",)

    asyncio.run(run())


class CrashBeforeCommit(Database):
    """A real database whose next entry-writing transaction dies after its inserts.

    The failure is raised inside the transaction, after the INSERTs reached the server and
    before COMMIT: what a process killed at that moment leaves behind.
    """

    crash_next = False

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with super().session() as session:
            inserts: list[str] = []
            record = _record_inserts(inserts)
            connection = await session.connection()
            assert connection.sync_connection is not None
            event.listen(connection.sync_connection, "before_cursor_execute", record)
            # On SQLite the writer's inserts run on the driver's own connection: traced there.
            driver = (await connection.get_raw_connection()).driver_connection
            raw = getattr(driver, "_conn", None)  # aiosqlite's sqlite3 connection
            if raw is not None:
                await driver._execute(raw.set_trace_callback, lambda sql: record(0, 0, sql))
            try:
                yield session
            finally:
                if raw is not None:
                    await driver._execute(raw.set_trace_callback, None)
            if self.crash_next and "audit_entries" in inserts:
                self.crash_next = False
                raise StorageUnavailable("injected: process died before COMMIT")


_INSERT_INTO = re.compile(r'\bINSERT\s+INTO\s+"?(\w+)', re.IGNORECASE)


def _record_inserts(tables: list[str]) -> Callable[..., None]:
    """A cursor hook noting the table of every INSERT the connection runs."""

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        tables.extend(_INSERT_INTO.findall(statement))  # one statement may insert into two

    return record


def test_a_crash_before_commit_loses_nothing_acknowledged(url: str) -> None:
    async def run() -> None:
        db = CrashBeforeCommit(url)
        await db.upgrade()
        log = AuditLog(db, SIGNER, ORIGIN)
        try:
            acked = [await log.append(sample(n)) for n in range(5)]
            db.crash_next = True
            results = await asyncio.gather(
                *(log.append(sample(n)) for n in range(5, 30)), return_exceptions=True
            )
            failed = [r for r in results if isinstance(r, StorageUnavailable)]
            assert failed  # the crashed batch was never acknowledged
            assert await assert_consistent(log) == 5 + len(results) - len(failed)
            for receipt in acked:
                (record,) = await log.entry_range(receipt.index, receipt.index + 1)
                assert leaf_hash(record.data) == receipt.leaf_hash
            after = await log.append(sample(99))
            assert after.index == await log.size() - 1
            await assert_consistent(log)
        finally:
            await log.close()
            await db.dispose()

    asyncio.run(run())


def test_unavailable_store_fails_closed() -> None:
    async def run() -> None:
        db = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")
        log = AuditLog(db, SIGNER, ORIGIN)
        try:
            with pytest.raises(StorageUnavailable):
                await log.append(sample(1))
            with pytest.raises(StorageUnavailable):
                await log.checkpoint_now()
            with pytest.raises(StorageUnavailable):
                await log.entries()
        finally:
            await log.close()
            await db.dispose()
        with pytest.raises(StorageUnavailable):
            await log.append(sample(2))

    asyncio.run(run())


@pytest.mark.postgres
def test_two_replicas_on_one_postgres_interleave_without_gaps(tmp_path: Path) -> None:
    async def run(url: str) -> None:
        async with opened(url) as first, opened(url) as second:

            async def burst(log: AuditLog, base: int) -> list[int]:
                receipts = []
                for round_ in range(8):
                    batch = (log.append(sample(base + round_ * 20 + i)) for i in range(20))
                    receipts += await asyncio.gather(*batch)
                return [r.index for r in receipts]

            a, b = await asyncio.gather(burst(first, 0), burst(second, 1000))
            assert sorted(a + b) == list(range(320))
            assert not set(a) & set(b)
            assert await assert_consistent(first) == 320
            c1, c2 = await asyncio.gather(first.checkpoint_now(), second.checkpoint_now())
            assert c1.checkpoint.root_hash == c2.checkpoint.root_hash

    with database_url("postgresql", tmp_path) as url:
        asyncio.run(run(url))


def test_close_commits_what_is_queued_then_refuses(url: str) -> None:
    """A stop must not drop a queued entry (an exchange's completion nobody waits for)."""

    async def run() -> None:
        db = Database(url)
        await db.upgrade()
        log = AuditLog(db, SIGNER, ORIGIN)
        try:
            await log.append(sample(0))  # the writer is running
            for n in range(1, 4):
                log.enqueue(sample(n))
            await log.close()
            with pytest.raises(StorageUnavailable, match="audit log closed"):
                log.enqueue(sample(9))
        finally:
            await db.dispose()
        async with opened(url) as reopened:
            assert [r.entry for r in await reopened.entries()] == [sample(n) for n in range(4)]

    asyncio.run(run())
