"""The audit log's group commit exactly, on real SQLite and PostgreSQL.

Which batch each entry lands in (cut at ``max_batch``, in arrival order), the checkpoint
each batch signs, the words of every refusal (a size beyond the tree, a missing node, a
store failure inside an effect, a closed log, an unexpected failure in a batch), what
``close`` does with appends it cannot drain in time, the operator's log lines, a key
handed over, what the readers return, and (SQLite, traced) the writer's one hop and its
kept frontier. Written against the survivors of ``python -m tests.mutate
gateway/audit/log``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, event, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.audit.checkpoint import verify_checkpoint
from gateway.audit.entry import encode_entry
from gateway.audit.errors import CheckpointError, ProofError
from gateway.audit.identity import Configured, establish
from gateway.audit.keys import Signer
from gateway.audit.log import AuditLog, AuditReader, Effect, Unchanged, stage
from gateway.audit.merkle import leaf_hash, root_hash
from gateway.audit.records import Receipt
from gateway.audit.repository import CountFilter, EntryFilter
from gateway.storage import StorageUnavailable
from gateway.storage.db import Database
from gateway.storage.models import AuditNodeRow, OpenExchangeRow, ParticipantRow
from tests.audit.logs import NOW, ORIGIN, SIGNER, opened, sample
from tests.support.databases import database_url

OTHER = Signer(ORIGIN, bytes(range(1, 33)))  # the key the log was handed over to


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as value:
        yield value


def _leaves(count: int) -> list[bytes]:
    """The leaf hashes of ``sample(0)`` .. ``sample(count - 1)``."""
    return [leaf_hash(encode_entry(sample(n))) for n in range(count)]


def test_batches_are_cut_at_max_batch_in_arrival_order(url: str) -> None:
    """Five appends queued at once, two a batch: batches of 2, 2 and 1, indices in the
    order the appends came, each receipt naming its own batch's tree, one checkpoint each."""

    async def run() -> None:
        async with opened(url, max_batch=2, checkpoint_delay=3600) as log:
            receipts = await asyncio.gather(*(log.append(sample(n)) for n in range(5)))
            leaves = _leaves(5)
            assert receipts == [
                Receipt(n, leaves[n], size, root_hash(leaves[:size]))
                for n, size in enumerate((2, 2, 4, 4, 5))
            ]
            stored = await log.checkpoints()
            assert [c.size for c in stored] == [2, 4, 5]
            for signed in stored:
                checkpoint = verify_checkpoint(signed.note, [SIGNER.verifier()], ORIGIN)
                assert checkpoint.root_hash == root_hash(leaves[: signed.size])
            # the newest checkpoint this process signed serves the receipts it covers
            assert await log.checkpoint_for(receipts[0]) == stored[-1]

    asyncio.run(run())


def test_one_batch_holds_at_most_max_batch_and_the_rest_ride_the_next(url: str) -> None:
    """A batch of exactly ``max_batch`` is not split; one more starts the next batch."""

    async def run() -> None:
        async with opened(url, max_batch=3, checkpoint_delay=3600) as log:
            exact = await asyncio.gather(*(log.append(sample(n)) for n in range(3)))
            assert [r.tree_size for r in exact] == [3, 3, 3]
            more = await asyncio.gather(*(log.append(sample(n)) for n in range(3, 7)))
            assert [r.tree_size for r in more] == [6, 6, 6, 7]
            assert [c.size for c in await log.checkpoints()] == [3, 6, 7]

    asyncio.run(run())


def test_a_size_beyond_the_committed_tree_is_refused_in_words(url: str) -> None:
    """Every proof and root asks the committed size first: its exact size is served, one
    more is refused with the size asked for and the size there is."""

    async def run() -> None:
        async with opened(url, sign_batches=False) as log:
            for n in range(3):
                await log.append(sample(n))
            leaves = _leaves(3)
            assert await log.root_at(3) == root_hash(leaves)
            assert len(await log.frontier_hashes(3)) == 2
            assert (await log.inclusion_proof(2, 3)).leaf_hash == leaves[2]
            assert (await log.consistency_proof(1, 3)).size2 == 3
            refusals = (
                log.root_at(4),
                log.frontier_hashes(4),
                log.inclusion_proof(0, 4),
                log.consistency_proof(1, 4),
            )
            for refused in refusals:
                with pytest.raises(ProofError) as caught:
                    await refused
                assert caught.value.code == "size-out-of-range"
                assert caught.value.detail == "tree size 4 beyond 3"

    asyncio.run(run())


def test_a_missing_tree_node_is_storage_unavailable_in_words(url: str) -> None:
    """A node the head row promises but the store lost is corruption: the reader refuses
    (StorageUnavailable, the caller fails closed) and says which node."""

    async def run() -> None:
        async with opened(url, sign_batches=False) as log:
            for n in range(3):
                await log.append(sample(n))
            async with log.db.session() as session:
                await session.execute(
                    delete(AuditNodeRow).where(AuditNodeRow.level == 0, AuditNodeRow.idx == 2)
                )
            reader = AuditReader(log.db)
            with pytest.raises(StorageUnavailable) as caught:
                await reader.root_at(3)
            missing = "NodeID(level=0, index=2)"
            assert str(caught.value) == f"audit store: missing tree node {missing}"
            with pytest.raises(StorageUnavailable) as caught:
                await reader.inclusion_proof(2, 3)
            assert str(caught.value) == f"audit store: missing tree node {missing}"

    asyncio.run(run())


def test_a_store_failure_inside_an_effect_names_its_kind(url: str) -> None:
    """An effect's database error (not a duplicate) is the store's, refused as such."""

    async def broken(session: AsyncSession) -> None:
        await session.execute(text("SELECT * FROM no_such_table"))

    async def run() -> None:
        async with opened(url) as log:
            with pytest.raises(StorageUnavailable) as caught:
                await log.append(sample(1), effect=broken)
            kind = "OperationalError" if log.db.dialect == "sqlite" else "ProgrammingError"
            assert str(caught.value) == f"audit effect: {kind}"
            assert await log.size() == 0

    asyncio.run(run())


def test_close_waits_at_most_drain_then_fails_what_is_left_in_words(url: str) -> None:
    """A batch stuck in its transaction past ``drain``: close cancels it (rolled back), and
    its appender and the one queued behind it hear "audit log closed"; nothing is written,
    the log reads on and refuses new appends in the same words."""

    async def run() -> None:
        release = asyncio.Event()  # never set: the effect waits until close cancels it
        entered = asyncio.Event()

        async def stuck(_session: AsyncSession) -> None:
            entered.set()
            await release.wait()

        async with opened(url, max_batch=1, checkpoint_delay=3600) as log:
            await log.append(sample(0))
            first = asyncio.ensure_future(log.append(sample(1), effect=stuck))
            await entered.wait()
            second = asyncio.ensure_future(log.append(sample(2)))
            await asyncio.sleep(0)
            await log.close(drain=0.01)
            for cut in (first, second):
                with pytest.raises(StorageUnavailable) as caught:
                    await cut
                assert str(caught.value) == "audit log closed"
            assert await log.size() == 1
            assert [r.index for r in await log.entries()] == [0]
            with pytest.raises(StorageUnavailable) as caught:
                await log.append(sample(3))
            assert str(caught.value) == "audit log closed"
            with pytest.raises(StorageUnavailable) as caught:
                log.enqueue(sample(4))
            assert str(caught.value) == "audit log closed"

    asyncio.run(run())


def test_close_before_any_append_and_twice_is_quiet(url: str) -> None:
    """A log that never started closes at once, as does a closed one."""

    async def run() -> None:
        async with opened(url) as log:
            await log.close()
            await log.close()
            assert await log.size() == 0

    asyncio.run(run())


def test_an_origin_a_checkpoint_cannot_carry_is_refused_when_the_log_is_made() -> None:
    db = Database("sqlite+aiosqlite://")
    with pytest.raises(CheckpointError) as caught:
        AuditLog(db, SIGNER, "sluis.example/audit\nsize 0")
    assert caught.value.code == "bad-origin"


class _FailingClock:
    """A clock that raises the first ``failures`` times it is read (an unexpected failure
    inside a batch's transaction), then tells ``NOW``."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def __call__(self) -> datetime:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("clock broken")
        return NOW


def test_an_unexpected_failure_fails_its_whole_batch_in_words_and_is_logged(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Any failure that is not the store's: every appender of the batch hears
    StorageUnavailable naming its kind, the operator reads it in full, nothing is written,
    and the next batch commits where the tree was."""

    async def run() -> None:
        clock = _FailingClock(0)
        async with opened(url, clock=clock, checkpoint_delay=3600) as log:
            first = await log.append(sample(0))
            clock.failures = 1
            results = await asyncio.gather(
                *(log.append(sample(n)) for n in range(1, 4)), return_exceptions=True
            )
            assert [str(r) for r in results] == ["audit append failed: RuntimeError"] * 3
            assert all(isinstance(r, StorageUnavailable) for r in results)
            after = await log.append(sample(1))
            assert (first.index, after.index, after.tree_size) == (0, 1, 2)
            assert after.root_hash == root_hash(_leaves(2))
            assert [c.size for c in await log.checkpoints()] == [1, 2]

    with caplog.at_level(logging.ERROR, logger="sluis.audit"):
        asyncio.run(run())
    (record,) = [r for r in caplog.records if r.name == "sluis.audit"]
    assert record.getMessage() == "audit append failed"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


def test_a_batch_run_again_with_savepoints_says_why_at_debug(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An effect that fails after it may have written: the batch is run again, one
    SAVEPOINT per effect, and the debug log names the failure."""

    async def dirty(session: AsyncSession) -> None:
        await session.execute(text("SELECT 1"))
        raise LookupError("after a write")

    async def run() -> None:
        async with opened(url, checkpoint_delay=3600) as log:
            with pytest.raises(LookupError):
                await log.append(sample(0), effect=dirty)
            assert (await log.append(sample(1))).index == 0

    with caplog.at_level(logging.DEBUG, logger="sluis.audit"):
        asyncio.run(run())
    messages = [r.getMessage() for r in caplog.records if r.name == "sluis.audit"]
    assert messages == [
        "audit batch run again, one savepoint per effect: LookupError('after a write')"
    ]


def test_a_queued_entry_that_cannot_commit_is_logged_with_its_reason(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Nobody waits for an enqueued entry: its refusal goes to the operator's log."""

    async def refused(_session: AsyncSession) -> None:
        raise Unchanged("nothing to close")

    async def run() -> None:
        async with opened(url, checkpoint_delay=3600) as log:
            log.enqueue(sample(0), effect=refused)
            log.enqueue(sample(1))
            await log.settled()
            assert [r.entry for r in await log.entries()] == [sample(1)]

    with caplog.at_level(logging.INFO, logger="sluis.audit"):
        asyncio.run(run())
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "sluis.audit"]
    assert messages == [(logging.ERROR, "queued audit entry not committed: nothing to close")]


def test_start_runs_one_writer_and_one_checkpointer(url: str) -> None:
    """``start`` (and every append after it) keeps the same two tasks; close ends them."""

    async def run() -> None:
        async with opened(url) as log:
            before = set(asyncio.all_tasks())
            await log.start()
            await log.start()
            await log.append(sample(0))
            started = set(asyncio.all_tasks()) - before
            assert sorted(t.get_name() for t in started) == ["audit-checkpointer", "audit-writer"]
            await log.close()
            assert all(t.done() for t in started)

    asyncio.run(run())


def test_a_key_handed_over_signs_no_batch_and_the_checkpointer_retries_and_says_so(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A log whose key is no longer the log's: its batches commit, their checkpoints are
    not stored; the checkpointer tries again (refused each time, logged each time with the
    hand-over as the cause)."""

    async def run() -> None:
        db = Database(url)
        await db.upgrade()
        await establish(db, Configured(ORIGIN, False, OTHER.verifier().public_key), now=NOW)
        log = AuditLog(db, SIGNER, ORIGIN, checkpoint_delay=0.01)
        try:
            receipt = await log.append(sample(0))
            assert receipt.index == 0
            for _ in range(300):  # polls (up to ~3 s against hanging, not timing)
                if len(_retries(caplog)) >= 2:
                    break
                await asyncio.sleep(0.01)
            assert await log.checkpoints() == []
            with pytest.raises(StorageUnavailable) as caught:
                await log.checkpoint_for(receipt)
            assert str(caught.value) == "the audit log was handed over to another key; restart"
        finally:
            await log.close()
            await db.dispose()

    with caplog.at_level(logging.WARNING, logger="sluis.audit"):
        asyncio.run(run())
    assert len(_retries(caplog)) >= 2


def _retries(caplog: pytest.LogCaptureFixture) -> list[str]:
    said = (  # the cause in its own words, not "store unavailable" (the store is fine)
        "audit checkpoint not signed (the audit log was handed over to another key; restart);"
        " will retry"
    )
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "sluis.audit" and r.levelno == logging.WARNING and r.getMessage() == said
    ]


def test_on_sqlite_a_batch_is_written_past_the_engine(tmp_path: Path) -> None:
    """SQLite: the sequencer's lock (a no-op UPDATE of the head), then the head, entries,
    nodes and checkpoint go through the driver's own connection (two hops); the engine runs
    no statement for the batch."""

    async def run() -> None:
        with database_url("sqlite", tmp_path) as url:
            db = _Traced(url)
            db.seen = []
            await db.upgrade()
            log = AuditLog(db, SIGNER, ORIGIN, checkpoint_delay=3600)
            try:
                await log.append(sample(0))
                seen: list[str] = []

                def statement(_c: object, _k: object, sql: str, *_: object) -> None:
                    seen.append(" ".join(sql.split()).upper())

                engine = log.db.engine.sync_engine
                event.listen(engine, "before_cursor_execute", statement)
                db.seen.clear()
                try:
                    await log.append(sample(1))
                finally:
                    event.remove(engine, "before_cursor_execute", statement)
                assert seen == []
                traced = [" ".join(s.split()).upper() for s in db.seen if s != "BEGIN "]
                assert traced[0].startswith("UPDATE AUDIT_HEAD SET SIZE=AUDIT_HEAD.SIZE WHERE")
                assert traced[1].startswith("UPDATE AUDIT_HEAD SET SIZE = SIZE + 1 WHERE")
                assert await log.size() == 2
            finally:
                await log.close()
                await db.dispose()

    asyncio.run(run())


def test_readers_return_exactly_what_is_stored(url: str) -> None:
    """A page and its last sort value, the smallest checkpoint of at least a size, the
    checkpoints for export with the proof from the one before (none for the first), the
    frontier's hashes."""

    async def run() -> None:
        async with opened(url, max_batch=2, checkpoint_delay=3600) as log:
            assert await log.entry_page(EntryFilter()) == ([], None)
            assert await log.checkpoint_at_least(0) is None
            await asyncio.gather(*(log.append(sample(n)) for n in range(5)))
            leaves = _leaves(5)
            records, last = await log.entry_page(EntryFilter(limit=2, newest_first=True))
            assert ([r.index for r in records], last) == ([4, 3], 3)
            records, last = await log.entry_page(EntryFilter(sort="dataset", limit=3))
            assert ([r.index for r in records], last) == ([0, 2, 4], "ds0")
            assert [(await log.checkpoint_at_least(n)).size for n in (0, 2, 3, 5)] == [2, 2, 4, 5]  # type: ignore[union-attr]
            assert await log.checkpoint_at_least(6) is None
            exported = await log.export_checkpoints()
            stored = await log.checkpoints()
            assert [(e.size, e.note) for e in exported] == [(s.size, s.note) for s in stored]
            assert exported[0].consistency == ()
            assert exported[1].consistency == (await log.consistency_proof(2, 4)).hashes
            assert exported[2].consistency == (await log.consistency_proof(4, 5)).hashes
            assert await log.frontier_hashes(5) == [root_hash(leaves[:4]), leaves[4]]
            assert await log.frontier_hashes(0) == []

    asyncio.run(run())


def test_checkpoint_for_serves_the_newest_it_signed_that_holds_the_entry(url: str) -> None:
    """Without batch checkpoints: the first receipt signs its own tree; an older receipt is
    then served that newest checkpoint; a newer one signs its own and becomes the newest."""

    async def run() -> None:
        async with opened(url, sign_batches=False, checkpoint_delay=3600) as log:
            receipts = [await log.append(sample(n)) for n in range(6)]
            sizes = [(await log.checkpoint_for(receipts[n])).size for n in (3, 1, 3, 5, 4, 0)]
            assert sizes == [4, 4, 4, 6, 6, 6]
            assert [c.size for c in await log.checkpoints()] == [4, 6]

    asyncio.run(run())


def test_the_current_checkpoint_is_the_newest_stored_or_a_first_one(url: str) -> None:
    async def run() -> None:
        async with opened(url, sign_batches=False, checkpoint_delay=3600) as log:
            await log.append(sample(0))
            await log.append(sample(1))
            first = await log.current_checkpoint()
            assert first.size == 2
            await log.append(sample(2))
            assert await log.current_checkpoint() == first  # the newest stored: not signed anew
            assert await log.checkpoint_now() != first
            assert (await log.current_checkpoint()).size == 3

    asyncio.run(run())


def test_an_unchanged_refusal_first_in_its_batch_stages_nothing(url: str) -> None:
    """The first effect to stage rows into a table refuses (Unchanged): what it staged is
    dropped, the next effect's rows in that table go in alone."""

    async def run() -> None:
        async with opened(url, checkpoint_delay=3600) as log:
            results = await asyncio.gather(
                log.append(sample(1), effect=_stage_then("x1", refuse=True)),
                log.append(sample(2), effect=_stage_then("x2")),
                return_exceptions=True,
            )
            assert isinstance(results[0], Unchanged)
            assert results[1].index == 0  # type: ignore[union-attr]
            async with log.db.session() as session:
                found = await session.scalars(select(OpenExchangeRow.id))
                assert list(found.all()) == ["x2"]

    asyncio.run(run())


def _stage_then(exchange: str, *, refuse: bool = False) -> Effect:
    """An effect that stages an open-exchange row ``exchange``, then raises Unchanged if
    told to (breaking its promise: what it staged must not be inserted either)."""

    async def effect(session: AsyncSession) -> None:
        row = {"id": exchange, "owner": "test", "consumer_id": "c", "dataset_id": "d"}
        await stage(session, OpenExchangeRow, row | {"started_at": NOW})
        if refuse:
            raise Unchanged(exchange)

    return effect


def test_a_registry_table_is_refused_for_staging_in_words(url: str) -> None:
    async def effect(session: AsyncSession) -> None:
        row = {"id": "NTRNL-00000009", "name": "x", "roles": [], "status": "active"}
        await stage(session, ParticipantRow, row | {"groups": []})

    async def run() -> None:
        async with opened(url, checkpoint_delay=3600) as log:
            with pytest.raises(TypeError) as caught:
                await log.append(sample(1), effect=effect)
            assert str(caught.value) == "participants is the registry's: write it in the effect"

    asyncio.run(run())


class _Traced(Database):
    """A real SQLite database noting every statement its sessions run, those the writer
    runs on the driver's own connection included."""

    seen: list[str]

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with super().session() as session:
            connection = await session.connection()
            driver = (await connection.get_raw_connection()).driver_connection
            raw = driver._conn  # aiosqlite's sqlite3 connection
            await driver._execute(raw.set_trace_callback, self.seen.append)
            try:
                yield session
            finally:
                await driver._execute(raw.set_trace_callback, None)


def test_a_process_reads_no_node_for_its_next_batch(tmp_path: Path) -> None:
    """The frontier a batch grew the tree to is kept: the process's next batch starts from
    it and reads no node (SQLite: the writer's statements on the driver's connection)."""

    async def run() -> None:
        with database_url("sqlite", tmp_path) as url:
            db = _Traced(url)
            db.seen = []
            await db.upgrade()
            log = AuditLog(db, SIGNER, ORIGIN, checkpoint_delay=3600)
            try:
                await log.append(sample(0))
                await log.append(sample(1))
                db.seen.clear()
                await log.append(sample(2))
                assert any("INSERT INTO audit_entries" in s for s in db.seen), db.seen
                assert not [s for s in db.seen if "audit_nodes WHERE" in s], db.seen
            finally:
                await log.close()
                await db.dispose()

    asyncio.run(run())


def test_checkpoint_now_signs_nothing_when_the_newest_covers_the_tree(url: str) -> None:
    """checkpoint_now (the background signer's call) signs and stores the tree once; asked
    again for the same tree it returns that checkpoint and writes nothing."""

    async def run() -> None:
        async with opened(url, sign_batches=False, checkpoint_delay=3600) as log:
            await log.append(sample(0))
            signed = await log.append(sample(1))
            inserts: list[str] = []

            def statement(_c: object, _k: object, sql: str, *_: object) -> None:
                if sql.startswith("INSERT INTO audit_checkpoints"):
                    inserts.append(sql)

            engine = log.db.engine.sync_engine
            event.listen(engine, "before_cursor_execute", statement)
            try:
                first = await log.checkpoint_now()
                assert (first.size, first.checkpoint.root_hash) == (2, signed.root_hash)
                assert len(inserts) == 1
                assert await log.checkpoint_now() == first
                assert len(inserts) == 1  # nothing signed nor stored again
                await log.append(sample(2))
                assert (await log.checkpoint_now()).size == 3
                assert len(inserts) == 2
            finally:
                event.remove(engine, "before_cursor_execute", statement)
            assert [c.size for c in await log.checkpoints()] == [2, 3]

    asyncio.run(run())


def test_the_counts_and_the_activity_of_a_window(url: str) -> None:
    """What the console's charts read: decisions counted per event and per dataset,
    participant and decision, in a half-open time window."""

    async def run() -> None:
        async with opened(url, checkpoint_delay=3600) as log:
            for n in range(5):
                await log.append(sample(n))
            await log.append(sample(5, time=NOW + timedelta(hours=1)))
            window = CountFilter(until=NOW + timedelta(hours=1))
            assert sorted(await log.counts(window)) == [
                ("access-decision", "deny", 2),
                ("access-decision", "permit", 3),
            ]
            assert sorted(await log.activity(window)) == [
                ("ds0", "NTRNL-00000000", "deny", 1),
                ("ds0", "NTRNL-00000001", "deny", 1),
                ("ds0", "NTRNL-00000002", "permit", 1),
                ("ds1", "NTRNL-00000000", "permit", 1),
                ("ds1", "NTRNL-00000001", "permit", 1),
            ]

    asyncio.run(run())


def test_a_failure_outside_the_batchs_transaction_fails_its_appenders_and_the_writer_goes_on(
    url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception that escapes ``_commit``'s own handling (a bug in handing out the
    receipts, in ``_fail`` itself) fails that batch's appenders with StorageUnavailable
    (fail closed: no receipt, so no data) and is logged; the writer lives on and the next
    append commits. Before, the writer task ended silently and every later append waited
    for ever."""
    original = AuditLog._commit
    calls = 0

    async def breaks_once(self: AuditLog, batch: list[object]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug outside the transaction's handling")
        await original(self, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(AuditLog, "_commit", breaks_once)

    async def run() -> None:
        async with opened(url, checkpoint_delay=3600) as log:
            first = log.append(sample(0))
            with pytest.raises(StorageUnavailable, match="audit append failed: RuntimeError"):
                await asyncio.wait_for(first, timeout=10)  # a hang guard, not a timing
            receipt = await asyncio.wait_for(log.append(sample(1)), timeout=10)
            assert receipt.index == 0  # the failed batch took no index
            assert calls == 2

    with caplog.at_level(logging.ERROR, logger="sluis.audit"):
        asyncio.run(run())
    assert [r.getMessage() for r in caplog.records if r.name == "sluis.audit"] == [
        "audit batch failed outside its transaction"
    ]
