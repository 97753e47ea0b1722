"""A state change committed with its entry (``append(entry, effect=...)``): both or neither.

On real SQLite and PostgreSQL: an effect's rows and its entry land in one transaction; an
effect that raises fails only its own appender, takes no index and leaves no row, while
the rest of its batch commits; a transaction that dies before COMMIT loses both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import bindparam, event, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.admin.changes import commit
from gateway.audit import repository as repo
from gateway.audit.log import AuditLog, Effect, Unchanged, stage
from gateway.audit.repository import execute_one
from gateway.errors import Conflict
from gateway.exchange.repository import _CLOSE, _OPEN, close_exchange, end_exchange
from gateway.storage import StorageUnavailable
from gateway.storage.models import OpenExchangeRow, ParticipantRow, UTCDateTime
from tests.audit.logs import NOW, ORIGIN, SIGNER, assert_consistent, opened, sample
from tests.audit.test_log import CrashBeforeCommit
from tests.support.databases import database_url


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as value:
        yield value


def _add(pid: str, *, then_raise: Exception | None = None) -> Effect:
    """An effect that inserts participant ``pid`` (and then raises, if told to)."""

    async def effect(session: AsyncSession) -> None:
        session.add(
            ParticipantRow(
                id=pid, name=pid, roles=["consumer"], status="active", groups=[],
                created_at=NOW, updated_at=NOW,
            )
        )  # fmt: skip
        await session.flush()
        if then_raise is not None:
            raise then_raise

    return effect


async def _ids(log: AuditLog) -> list[str]:
    async with log.db.session() as session:
        return list((await session.scalars(select(ParticipantRow.id).order_by("id"))).all())


def test_an_effect_commits_with_its_entry(url: str) -> None:
    async def run() -> None:
        async with opened(url) as log:
            receipt = await log.append(sample(1), effect=_add("NTRNL-00000001"))
            assert receipt.index == 0
            assert await _ids(log) == ["NTRNL-00000001"]
            (record,) = await log.entry_range(0, 1)
            assert record.entry == sample(1)

    asyncio.run(run())


def test_a_failing_effect_in_the_middle_of_a_batch_fails_only_its_appender(url: str) -> None:
    async def run() -> None:
        async with opened(url) as log:
            refused = Conflict("participant-exists", "injected")
            appends = [log.append(sample(n), effect=_add(f"NTRNL-0000000{n}")) for n in range(1, 3)]
            appends.append(log.append(sample(3), effect=_add("NTRNL-00000003", then_raise=refused)))
            appends.append(log.append(sample(4)))  # a plain entry rides the same batch
            appends += [
                log.append(sample(n), effect=_add(f"NTRNL-0000000{n}")) for n in range(5, 7)
            ]
            results = await asyncio.gather(*appends, return_exceptions=True)
            assert results[2] is refused
            receipts = [r for r in results if not isinstance(r, BaseException)]
            assert [r.index for r in receipts] == [0, 1, 2, 3, 4]  # no index for the refused
            assert {r.tree_size for r in receipts} == {5}  # one batch, one transaction
            assert await _ids(log) == [f"NTRNL-0000000{n}" for n in (1, 2, 5, 6)]
            stored = [record.entry for record in await log.entry_range(0, 10)]
            assert stored == [sample(n) for n in (1, 2, 4, 5, 6)]
            assert await assert_consistent(log) == 5

    asyncio.run(run())


def test_a_database_error_in_an_effect_is_storage_unavailable_for_it_alone(url: str) -> None:
    async def broken(session: AsyncSession) -> None:
        await session.execute(text("SELECT * FROM no_such_table"))

    async def run() -> None:
        async with opened(url) as log:
            results = await asyncio.gather(
                log.append(sample(1), effect=_add("NTRNL-00000001")),
                log.append(sample(2), effect=broken),
                log.append(sample(3), effect=_add("NTRNL-00000001")),  # a duplicate
                log.append(sample(4)),
                return_exceptions=True,
            )
            assert isinstance(results[1], StorageUnavailable)
            assert isinstance(results[2], IntegrityError)  # the caller explains duplicates
            assert [r.index for r in (results[0], results[3])] == [0, 1]  # type: ignore[union-attr]
            assert await _ids(log) == ["NTRNL-00000001"]
            assert await assert_consistent(log) == 2

    asyncio.run(run())


def test_an_effect_and_a_failing_commit_lose_both(url: str) -> None:
    async def run() -> None:
        db = CrashBeforeCommit(url)
        await db.upgrade()
        log = AuditLog(db, SIGNER, ORIGIN)
        try:
            db.crash_next = True
            with pytest.raises(StorageUnavailable):
                await log.append(sample(1), effect=_add("NTRNL-00000001"))
            assert await log.size() == 0
            assert await _ids(log) == []
            receipt = await log.append(sample(2), effect=_add("NTRNL-00000001"))
            assert receipt.index == 0  # the lost append consumed nothing
            assert await _ids(log) == ["NTRNL-00000001"]
            assert await assert_consistent(log) == 1
        finally:
            await log.close()
            await db.dispose()

    asyncio.run(run())


def test_a_batch_of_only_refused_effects_writes_nothing(url: str) -> None:
    async def run() -> None:
        async with opened(url) as log:
            with pytest.raises(Conflict):
                await log.append(
                    sample(1), effect=_add("NTRNL-00000001", then_raise=Conflict("x", "y"))
                )
            assert await log.size() == 0
            assert await _ids(log) == []
            assert (await log.append(sample(2))).index == 0

    asyncio.run(run())


class _Statements:
    """Every statement (and SAVEPOINT / ROLLBACK) the engine of ``log`` runs while entered;
    on SQLite also the staged rows' statements, which run on the driver's own connection
    (``SqliteTail.write_rows``: one statement per table, noted as such)."""

    def __init__(self, log: AuditLog) -> None:
        self.engine = log.db.engine.sync_engine
        self.seen: list[str] = []
        self._write_rows = repo.SqliteTail.write_rows

    def _statement(self, _conn: object, _cursor: object, statement: str, *_: object) -> None:
        self.seen.append(" ".join(statement.split()).upper())

    def _rollback(self, *_: object) -> None:
        self.seen.append("ROLLBACK")

    def __enter__(self) -> list[str]:
        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine, "rollback", self._rollback)
        written = self._write_rows
        seen = self.seen

        def write_rows(tail: repo.SqliteTail, inserts: Any, deletes: Any) -> None:
            seen.extend(f"INSERT INTO {t.name.upper()}" for t, _ in inserts)
            seen.extend(f"DELETE FROM {t.name.upper()}" for t, _ in deletes)  # noqa: S608 - a note, never run
            written(tail, inserts, deletes)

        repo.SqliteTail.write_rows = write_rows  # type: ignore[method-assign]
        return self.seen

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "rollback", self._rollback)
        repo.SqliteTail.write_rows = self._write_rows  # type: ignore[method-assign]


def _stage_then(exchange: str, *, refuse: bool = False) -> Effect:
    """An effect that stages an open-exchange row ``exchange`` (a table the registry does
    not track, so no other SAVEPOINT is involved); then raises Unchanged if told to
    (breaking its promise on purpose: what it staged must not be inserted either)."""

    async def effect(session: AsyncSession) -> None:
        row = {"id": exchange, "owner": "test", "consumer_id": "c", "dataset_id": "d"}
        await stage(session, OpenExchangeRow, row | {"started_at": NOW})
        if refuse:
            raise Unchanged(exchange)

    return effect


async def _exchanges(log: AuditLog) -> list[str]:
    async with log.db.session() as session:
        found = await session.scalars(select(OpenExchangeRow.id).order_by(OpenExchangeRow.id))
        return list(found.all())


def test_an_unchanged_refusal_needs_no_rollback_nor_savepoints(url: str) -> None:
    """Effects run bare: a refusal that wrote nothing leaves the batch as it is, and the
    rows the others staged are inserted together, after the last effect."""

    async def run() -> None:
        async with opened(url) as log:
            await log.append(sample(0))  # the head row exists, the frontier is known
            with _Statements(log) as seen:
                results = await asyncio.gather(
                    log.append(sample(1), effect=_stage_then("x1")),
                    log.append(sample(2), effect=_stage_then("x2", refuse=True)),
                    log.append(sample(3), effect=_stage_then("x3")),
                    return_exceptions=True,
                )
            assert isinstance(results[1], Unchanged)
            assert [r.index for r in (results[0], results[2])] == [1, 2]  # type: ignore[union-attr]
            assert await _exchanges(log) == ["x1", "x3"]
            assert not [s for s in seen if "SAVEPOINT" in s or s == "ROLLBACK"], seen
            inserts = [s for s in seen if s.startswith("INSERT INTO OPEN_EXCHANGES")]
            assert len(inserts) == 1  # both staged rows in one statement
            assert not [s for s in seen if s.startswith("SELECT AUDIT_NODES")]  # kept frontier
            assert await assert_consistent(log) == 3

    asyncio.run(run())


def test_a_staged_row_that_conflicts_fails_only_its_appender(url: str) -> None:
    """A duplicate among the staged rows rolls the batch back; run again with a SAVEPOINT
    per effect, only the duplicate's appender is refused."""

    async def run() -> None:
        async with opened(url) as log:
            await log.append(sample(0), effect=_stage_then("x2"))
            results = await asyncio.gather(
                log.append(sample(1), effect=_stage_then("x1")),
                log.append(sample(2), effect=_stage_then("x2")),  # exists
                log.append(sample(3), effect=_stage_then("x3")),
                return_exceptions=True,
            )
            assert isinstance(results[1], IntegrityError)
            assert [r.index for r in (results[0], results[2])] == [1, 2]  # type: ignore[union-attr]
            assert await _exchanges(log) == ["x1", "x2", "x3"]
            assert await assert_consistent(log) == 3

    asyncio.run(run())


def test_an_effect_that_wrote_and_failed_is_undone_and_the_others_run_once(url: str) -> None:
    """The batch run again after a failure re-runs the other effects: each one's rows are
    there exactly once, and the failed one's are not there at all."""
    calls: list[str] = []

    def counted(pid: str, then_raise: Exception | None = None) -> Effect:
        inner = _add(pid, then_raise=then_raise)

        async def effect(session: AsyncSession) -> None:
            calls.append(pid)
            await inner(session)

        return effect

    async def run() -> None:
        async with opened(url) as log:
            await log.append(sample(0))
            results = await asyncio.gather(
                log.append(sample(1), effect=counted("NTRNL-00000001")),
                log.append(sample(2), effect=counted("NTRNL-00000002", Conflict("x", "y"))),
                log.append(sample(3), effect=counted("NTRNL-00000003")),
                return_exceptions=True,
            )
            assert isinstance(results[1], Conflict)
            assert await _ids(log) == ["NTRNL-00000001", "NTRNL-00000003"]
            assert calls.count("NTRNL-00000001") == 2  # bare, then with savepoints
            assert await assert_consistent(log) == 3

    asyncio.run(run())


def test_the_kept_frontier_follows_another_writer_on_the_same_store(url: str) -> None:
    """Two logs on one database append in turns: each one's kept frontier is stale after
    the other's batch, is read again, and the tree stays whole."""

    async def run() -> None:
        async with opened(url) as first:
            second = AuditLog(first.db, SIGNER, ORIGIN)
            try:
                for n in range(12):
                    await (first if n % 3 else second).append(sample(n))
                assert await assert_consistent(first) == 12
            finally:
                await second.close()

    asyncio.run(run())


def test_a_registry_table_cannot_be_staged(url: str) -> None:
    """Staged rows go in Core, which the registry does not see: its tables are refused, so
    a change of who may do what can never skip the registry's version."""

    async def run() -> None:
        async with opened(url) as log:
            with pytest.raises(TypeError, match="participants is the registry's"):
                await log.append(sample(1), effect=_stage_participant)
            assert await _ids(log) == []
            assert await log.size() == 0

    asyncio.run(run())


async def _stage_participant(session: AsyncSession) -> None:
    row = {"id": "NTRNL-00000009", "name": "x", "roles": [], "status": "active", "groups": []}
    await stage(session, ParticipantRow, row | {"created_at": NOW, "updated_at": NOW})


def test_a_change_committed_after_a_rerun_returns_what_the_committed_run_made(url: str) -> None:
    """``admin.changes.commit`` hands back its change's result: when another effect's failure
    makes the batch run again, the result of the run that committed (a row made in the rolled
    back run, with its id, never existed)."""
    runs: list[int] = []

    async def change(session: AsyncSession) -> int:
        await _add(f"NTRNL-0000001{len(runs)}")(session)
        runs.append(len(runs) + 1)
        return runs[-1]

    async def run() -> None:
        async with opened(url) as log:
            await log.append(sample(0))
            made, refused = await asyncio.gather(
                commit(log, sample(1), change),
                log.append(sample(2), effect=_add("NTRNL-00000002", then_raise=Conflict("x", "y"))),
                return_exceptions=True,
            )
            assert isinstance(refused, Conflict)
            assert runs == [1, 2]  # bare, then again with savepoints
            assert made == 2
            assert await _ids(log) == ["NTRNL-00000011"]  # the second run's row, committed

    asyncio.run(run())


def test_one_statement_runs_in_the_effects_transaction(url: str) -> None:
    """``execute_one`` (on SQLite one hop to the driver's thread, with SQLAlchemy's
    compilation and bind processing): the row count and first row, committed or rolled
    back with the batch it runs in."""
    statement = (
        update(_OPEN)
        .where(_OPEN.c.id == bindparam("exchange"))
        .values(started_at=bindparam("at", type_=UTCDateTime()))
        .returning(_OPEN.c.id)
    )
    found: list[tuple[int, Any]] = []
    failed: list[tuple[int, Any]] = []  # the log may run a failed effect again, alone

    async def close_then_fail(session: AsyncSession) -> None:
        failed.append(await execute_one(session, _CLOSE, {"exchange": "x1"}))
        raise RuntimeError("after the delete")

    async def close(session: AsyncSession) -> None:
        at = NOW + timedelta(hours=1)
        found.append(await execute_one(session, statement, {"exchange": "x1", "at": at}))
        found.append(await execute_one(session, _CLOSE, {"exchange": "x1"}))
        found.append(await execute_one(session, _CLOSE, {"exchange": "x1"}))

    async def run() -> tuple[list[str], list[str]]:
        async with opened(url) as log:
            await log.append(sample(0), effect=_stage_then("x1"))
            with pytest.raises(RuntimeError):
                await log.append(sample(1), effect=close_then_fail)
            kept = await _exchanges(log)
            await log.append(sample(1), effect=close)
            return kept, await _exchanges(log)

    assert asyncio.run(run()) == (["x1"], [])
    assert failed
    assert all(f == (1, None) for f in failed)  # deleted, then rolled back with its batch
    (_, row), (closed, none), (again, _) = found
    assert row is not None
    assert row[0] == "x1"
    assert (closed, none, again) == (1, None, 0)


def _end_then(exchange: str) -> Effect:
    """The completion's effect: end the exchange, whether or not it is still open."""

    async def effect(session: AsyncSession) -> None:
        await end_exchange(session, exchange)

    return effect


def _close_strictly(exchange: str) -> Effect:
    """A restart's effect: close the exchange only if it is still open (else Unchanged)."""

    async def effect(session: AsyncSession) -> None:
        if not await close_exchange(session, exchange):
            raise Unchanged(exchange)

    return effect


def test_ended_exchanges_are_deleted_together_after_the_inserts(url: str) -> None:
    """Completions staged in one batch end their exchanges in one DELETE, after the batch's
    inserts: an exchange opened and ended in the same batch is gone, and one already gone
    is simply not there (issue 10: no statement per completion)."""

    async def run() -> None:
        async with opened(url) as log:
            await log.append(sample(0), effect=_stage_then("x1"))
            await log.append(sample(1), effect=_stage_then("x2"))
            with _Statements(log) as seen:
                results = await asyncio.gather(
                    log.append(sample(2), effect=_end_then("x1")),
                    log.append(sample(3), effect=_stage_then("x3")),
                    log.append(sample(4), effect=_end_then("x3")),  # opened in this batch
                    log.append(sample(5), effect=_end_then("gone")),
                )
            assert [r.index for r in results] == [2, 3, 4, 5]
            assert await _exchanges(log) == ["x2"]
            deletes = [s for s in seen if s.startswith("DELETE FROM OPEN_EXCHANGES")]
            assert len(deletes) == 1, seen
            inserts = [s for s in seen if s.startswith("INSERT INTO OPEN_EXCHANGES")]
            assert seen.index(inserts[0]) < seen.index(deletes[0])
            assert not [s for s in seen if "SAVEPOINT" in s or s == "ROLLBACK"], seen
            assert await assert_consistent(log) == 6

    asyncio.run(run())


def test_a_strict_close_sees_an_end_staged_before_it_in_the_batch(url: str) -> None:
    """A restart's close after a completion of the same exchange in one batch finds it
    closed, as it would had the completion deleted the row at once: its entry is refused."""

    async def run() -> None:
        async with opened(url) as log:
            await log.append(sample(0), effect=_stage_then("x1"))
            results = await asyncio.gather(
                log.append(sample(1), effect=_end_then("x1")),
                log.append(sample(2), effect=_close_strictly("x1")),
                return_exceptions=True,
            )
            assert isinstance(results[1], Unchanged)
            assert results[0].index == 1  # type: ignore[union-attr]
            assert await _exchanges(log) == []
            assert await assert_consistent(log) == 2

    asyncio.run(run())


def test_outside_a_batch_an_exchange_ends_at_once(url: str) -> None:
    """``end_exchange`` in a session of its own (no batch staging) deletes at once."""

    async def run() -> None:
        async with opened(url) as log:
            await log.append(sample(0), effect=_stage_then("x1"))
            async with log.db.session() as session:
                await end_exchange(session, "x1")
                assert not await close_exchange(session, "x1")
            assert await _exchanges(log) == []

    asyncio.run(run())


def test_a_sqlite_batch_costs_four_driver_hops(tmp_path: Path) -> None:
    """On SQLite, a batch whose effects stage rows and end exchanges costs four hops to the
    driver's thread, however many entries it holds: the sequencer's lock, the staged rows
    (inserts and deletes together), the head, entries, nodes and checkpoint, and the COMMIT
    (no ROLLBACK on return after it: tests/gateway/test_db_reset.py). Issue 10: each hop is
    a thread switch both ways; before, 9 a batch and one more per ended exchange."""

    async def run() -> None:
        with database_url("sqlite", tmp_path) as url:
            async with opened(url, checkpoint_delay=3600) as log:  # no checkpointer's hops
                await log.append(sample(0), effect=_stage_then("x1"))
                hops: list[str] = []
                driver_class: Any = aiosqlite.Connection
                original = driver_class._execute

                async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
                    hops.append(getattr(fn, "__qualname__", repr(fn)))
                    return await original(self, fn, *args, **kwargs)

                driver_class._execute = counted
                try:
                    await asyncio.gather(
                        log.append(sample(1), effect=_end_then("x1")),
                        log.append(sample(2), effect=_stage_then("x2")),
                        log.append(sample(3), effect=_stage_then("x3")),
                        log.append(sample(4)),
                    )
                finally:
                    driver_class._execute = original
                assert len(hops) == 4, hops
                assert await _exchanges(log) == ["x2", "x3"]

    asyncio.run(run())
