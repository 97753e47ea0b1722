"""The audit log's IO edge: durable, group-committed appends, checkpoints and proofs.

::

    append(entry)  --queue-->  writer task  --one transaction per batch-->  database
                                  lock (PostgreSQL advisory lock), head size += n,
                                  entries + the tree nodes they complete, commit
                                  and the batch's signed checkpoint (the writer knows
                                  its size and root: one signature, one row per batch)
                               then every appender in the batch gets its Receipt
    checkpointer task: only when a batch's checkpoint was not stored (the log's key was
                       handed over meanwhile): waits ``checkpoint_delay`` and tries again
    enqueue(entry, effect=...)    the same, without waiting: the entry rides the next batch
                                  (the exchange's completion entry; a failure is logged)

    append(entry, effect=change)   the change and its entry commit together, or neither:
                                   in the batch transaction, after the lock and before the
                                   head grows; one that raises fails only its own appender
                                   (with its exception), writes no entry and consumes no
                                   index. Effects run bare first (no SAVEPOINT each: two
                                   statements fewer per entry); one that raises
                                   :class:`Unchanged` wrote nothing and is simply refused,
                                   any other failure rolls the batch back and runs it again
                                   with a SAVEPOINT per effect, so the outcome is the same

An append returns only once its entry is committed. The tree's state lives only in
committed rows (the head row, entries and nodes are written in one transaction), so a
process killed at any moment loses nothing acknowledged and leaves no half-grown tree.
Every database failure comes out as :class:`~gateway.storage.StorageUnavailable`: the
caller must refuse the request (fail closed). Appends and proofs read O(log n) nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.audit import repository as repo
from gateway.audit.checkpoint import Checkpoint, sign_checkpoint
from gateway.audit.compact import (
    Frontier,
    Node,
    NodeID,
    consistency_proof_nodes,
    frontier_ids,
    inclusion_proof_nodes,
)
from gateway.audit.entry import AuditEntry, encode_entry, nothing_to_fix
from gateway.audit.errors import ProofError
from gateway.audit.keys import Signer
from gateway.audit.merkle import leaf_hash
from gateway.audit.records import (
    AuditRecord,
    ConsistencyProof,
    InclusionProof,
    Receipt,
    SignedCheckpoint,
)
from gateway.audit.repository import CountFilter, EntryFilter, TreeInconsistent
from gateway.audit.verify import ExportedCheckpoint
from gateway.storage import StorageUnavailable
from gateway.storage.db import Database
from gateway.storage.models import AuditCheckpointRow

log = logging.getLogger("sluis.audit")

Clock = Callable[[], datetime]
#: A state change committed with its entry: runs on the batch's session (see ``_sequence``).
Effect = Callable[[AsyncSession], Awaitable[None]]
MAX_BATCH = 500
CHECKPOINT_DELAY = 0.5  # seconds; with signing time, well under the promised 1 s
DRAIN_SECONDS = 5.0  # how long close() waits for queued appends to commit


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Unchanged(Exception):
    """Raised by an effect that wrote nothing before it raised: its appender is refused with
    it, and the batch goes on without a rollback (see ``_sequence``)."""


class _Dirty(Exception):
    """An effect run without its own SAVEPOINT failed after it may have written: the batch
    is rolled back and run again with one SAVEPOINT per effect."""


_STAGED = "sluis.audit.staged"


async def stage(session: AsyncSession, table: type[Any], row: dict[str, object]) -> None:
    """Insert ``row`` into ``table`` as part of an effect, with the batch's other rows.

    In a batch run without savepoints the rows of every effect are inserted together
    (one statement per table) after the last effect, so no later effect of the same batch
    sees them; otherwise (a SAVEPOINT per effect, or outside the log) at once. For rows
    nothing else in a batch reads: a use's record, an opened exchange. Not for the tables
    the registry follows (TypeError): they are inserted in Core, which it does not see.
    """
    _not_the_registrys(table)
    staged: _Staged | None = session.info.get(_STAGED)
    if staged is None:
        await session.execute(insert(table), [row])
    else:
        staged.setdefault((_INSERT, table), []).append(row)


def staged_delete(session: AsyncSession, table: type[Any], key: dict[str, object]) -> bool:
    """Delete the rows of ``table`` whose columns equal ``key``'s, with the batch's other
    rows (after its inserts), when the session is a batch's run without savepoints; False
    otherwise (the caller deletes at once). For a delete whose outcome nobody asks (an
    exchange's completion closes it whether or not a restart closed it first).
    """
    _not_the_registrys(table)
    staged: _Staged | None = session.info.get(_STAGED)
    if staged is None:
        return False
    staged.setdefault((_DELETE, table), []).append(key)
    return True


def is_staged_for_delete(session: AsyncSession, table: type[Any], key: dict[str, object]) -> bool:
    """Whether an earlier effect of the batch staged the delete of ``key``'s rows: to a later
    effect they are gone already (as they would be had it deleted them at once)."""
    staged: _Staged | None = session.info.get(_STAGED)
    return staged is not None and key in staged.get((_DELETE, table), ())


def _not_the_registrys(table: type[Any]) -> None:
    from gateway.registry import tracks  # noqa: PLC0415 - the registry imports the services

    if tracks(table.__tablename__):  # its rows go in Core, which the registry does not see
        raise TypeError(f"{table.__tablename__} is the registry's: write it in the effect")


_INSERT, _DELETE = "insert", "delete"
#: Rows a batch's effects staged, by (insert or delete, table), in order.
_Staged = dict[tuple[str, type[Any]], list[dict[str, object]]]


class AuditReader:
    """Read access to a stored log: entries, checkpoints and proofs (no key needed)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        """A transaction; database failures and a corrupt tree become StorageUnavailable."""
        try:
            async with self.db.session() as session:
                yield session
        except (IntegrityError, TreeInconsistent) as exc:
            raise StorageUnavailable(f"audit store: {exc}") from exc

    async def size(self) -> int:
        """How many entries are committed."""
        async with self._session() as session:
            return await repo.size(session)

    async def entries(self, where: EntryFilter | None = None) -> list[AuditRecord]:
        """Entries matching ``where`` (default: the first 100), by index."""
        records, _ = await self.entry_page(where or EntryFilter())
        return records

    async def entry_page(self, where: EntryFilter) -> tuple[list[AuditRecord], object]:
        """Entries matching ``where`` in its order, and the last one's sort-column value."""
        async with self._session() as session:
            rows = await repo.entries(session, where)
        last = rows[-1][2] if rows else None
        return [AuditRecord(index, data) for index, data, _ in rows], last

    async def counts(self, where: CountFilter) -> list[tuple[str, str | None, int]]:
        """``(event, decision, count)`` of the entries in ``where``'s time window."""
        async with self._session() as session:
            return await repo.counts(session, where)

    async def activity(self, where: CountFilter) -> list[tuple[str, str, str | None, int]]:
        """``(dataset, participant, decision, count)`` of access decisions in the window."""
        async with self._session() as session:
            return await repo.activity(session, where)

    async def entry_range(self, begin: int, end: int) -> list[AuditRecord]:
        """Entries ``[begin, end)`` by index (export pages through the log with this)."""
        async with self._session() as session:
            rows = await repo.entry_range(session, begin, end)
        return [AuditRecord(index, data) for index, data in rows]

    async def latest_checkpoint(self) -> SignedCheckpoint | None:
        """The newest signed checkpoint, if any was signed."""
        async with self._session() as session:
            row = await repo.latest_checkpoint(session)
        return None if row is None else _signed(row.note)

    async def checkpoint_at_least(self, size: int) -> SignedCheckpoint | None:
        """The smallest signed checkpoint of at least ``size`` entries, if any."""
        async with self._session() as session:
            row = await repo.checkpoint_at_least(session, size)
        return None if row is None else _signed(row.note)

    async def checkpoints(self) -> list[SignedCheckpoint]:
        """Every signed checkpoint, smallest first."""
        async with self._session() as session:
            rows = await repo.all_checkpoints(session)
        return [_signed(row.note) for row in rows]

    async def export_checkpoints(self) -> list[ExportedCheckpoint]:
        """Every checkpoint with the consistency proof from the one before (for export)."""
        chain: list[ExportedCheckpoint] = []
        previous = 0
        for signed in await self.checkpoints():
            proof: tuple[bytes, ...] = ()
            if previous:
                proof = (await self.consistency_proof(previous, signed.size)).hashes
            chain.append(ExportedCheckpoint(signed.size, signed.note, proof))
            previous = signed.size
        return chain

    async def inclusion_proof(self, index: int, tree_size: int) -> InclusionProof:
        """The audit path of entry ``index`` in the committed tree of ``tree_size`` entries.

        Raises :class:`ProofError` for an index or size outside the committed tree.
        """
        plan = inclusion_proof_nodes(index, tree_size)
        async with self._session() as session:
            await self._check_committed(session, tree_size)
            leaf, *hashes = await repo.node_hashes(session, [NodeID(0, index), *plan.ids])
        return InclusionProof(index, tree_size, leaf, tuple(plan.combine(hashes)))

    async def frontier_hashes(self, size: int) -> list[bytes]:
        """The roots of the perfect subtrees covering ``[0, size)`` (a range export's start)."""
        async with self._session() as session:
            await self._check_committed(session, size)
            return await repo.node_hashes(session, frontier_ids(size))

    async def consistency_proof(self, size1: int, size2: int) -> ConsistencyProof:
        """The proof that the committed tree of ``size2`` entries extends that of ``size1``."""
        plan = consistency_proof_nodes(size1, size2)
        async with self._session() as session:
            await self._check_committed(session, size2)
            hashes = await repo.node_hashes(session, plan.ids)
        return ConsistencyProof(size1, size2, tuple(plan.combine(hashes)))

    async def root_at(self, tree_size: int) -> bytes:
        """The root hash of the committed tree of ``tree_size`` entries (O(log n))."""
        async with self._session() as session:
            await self._check_committed(session, tree_size)
            return await _frontier(session, tree_size)

    @staticmethod
    async def _check_committed(session: AsyncSession, tree_size: int) -> None:
        committed = await repo.size(session)
        if tree_size > committed:
            raise ProofError("size-out-of-range", f"tree size {tree_size} beyond {committed}")


@dataclass
class _Pending:
    data: bytes
    entry: AuditEntry
    done: asyncio.Future[Receipt]
    effect: Effect | None = None


class AuditLog(AuditReader):
    """The appending, signing log one gateway process runs (one per replica)."""

    def __init__(
        self,
        db: Database,
        signer: Signer,
        origin: str,
        *,
        checkpoint_delay: float = CHECKPOINT_DELAY,
        max_batch: int = MAX_BATCH,
        clock: Clock = _utcnow,
        sign_batches: bool = True,
    ) -> None:
        super().__init__(db)
        self.signer = signer
        self.origin = origin
        self._key = signer.verifier().key_string()  # stored checkpoints need it to be current
        Checkpoint(origin, 0, b"\0" * 32)  # refuse an origin a checkpoint cannot carry, now
        self._checkpoint_delay = checkpoint_delay
        self._max_batch = max_batch
        self._clock = clock
        self._sign_batches = sign_batches  # False: checkpoints only on demand (tools, tests)
        self._pending: list[_Pending] = []
        self._in_flight: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._dirty = asyncio.Event()
        self._sign_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._latest_signed: SignedCheckpoint | None = None  # newest this process signed
        self._frontier: Frontier | None = None  # after the last batch this process committed

    async def start(self) -> None:
        """Start the writer and checkpointer tasks (``append`` also does, lazily)."""
        self._ensure_started()

    async def close(self, *, drain: float = DRAIN_SECONDS) -> None:
        """Refuse new appends, commit the ones queued (waiting at most ``drain`` seconds),
        then stop the tasks; appends still queued then fail with StorageUnavailable.

        Queued is what a stop must not lose: a completion entry an exchange cut off by the
        stop has just enqueued (nobody waits for it) would otherwise be dropped here.
        """
        self._closed = True
        waiting = [item.done for item in self._in_flight + self._pending]
        if waiting and self._tasks:
            await asyncio.wait(waiting, timeout=drain)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        # A batch cut off mid-transaction was rolled back: its appenders hear so.
        self._fail(self._in_flight + self._pending, StorageUnavailable("audit log closed"))
        self._pending, self._in_flight = [], []

    async def append(self, entry: AuditEntry, *, effect: Effect | None = None) -> Receipt:
        """Append ``entry``; return once it is committed.

        With ``effect``, the state change it makes on the session it is given commits in
        the same transaction as ``entry``: both or neither. An exception the effect raises
        (Conflict, NotFound, ...) is raised here, and no entry is written for it; a database
        error inside it (other than IntegrityError) becomes StorageUnavailable.

        Raises :class:`~gateway.audit.errors.EntryError` for an entry that may not be
        written (a raw secret in it) and StorageUnavailable if it could not be committed.
        """
        data = encode_entry(entry)
        if self._closed:
            raise StorageUnavailable("audit log closed")
        self._ensure_started()
        done: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(data, entry, done, effect))
        self._wakeup.set()
        # Shielded: a caller that gives up does not un-commit the entry, nor stall the batch.
        return await asyncio.shield(done)

    def enqueue(self, entry: AuditEntry, *, effect: Effect | None = None) -> None:
        """Queue ``entry`` for the next batch and return at once (nobody waits for it).

        For an entry the caller must not wait for (the exchange's completion entry): it is
        committed with a later batch; a failure to commit it is logged. An entry that may
        not be written (a raw secret in it) raises EntryError here, as with ``append``.
        """
        data = encode_entry(entry)
        if self._closed:
            raise StorageUnavailable("audit log closed")
        self._ensure_started()
        done: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_log_failure)
        self._pending.append(_Pending(data, entry, done, effect))
        self._wakeup.set()

    async def settled(self) -> None:
        """Wait until every append queued before this call is committed (or has failed)."""
        waiting = [item.done for item in self._in_flight + self._pending]
        if waiting:
            await asyncio.wait(waiting)

    async def size(self) -> int:
        """How many entries are committed, once this process's queued appends are."""
        await self.settled()
        return await super().size()

    async def entries(self, where: EntryFilter | None = None) -> list[AuditRecord]:
        """As ``AuditReader.entries``, once this process's queued appends are committed."""
        await self.settled()
        return await super().entries(where)

    async def entry_page(self, where: EntryFilter) -> tuple[list[AuditRecord], object]:
        """As ``AuditReader.entry_page``, once this process's queued appends are committed."""
        await self.settled()
        return await super().entry_page(where)

    async def entry_range(self, begin: int, end: int) -> list[AuditRecord]:
        """As ``AuditReader.entry_range``, once this process's queued appends are committed."""
        await self.settled()
        return await super().entry_range(begin, end)

    async def checkpoint_now(self) -> SignedCheckpoint:
        """Sign the committed tree now, unless a checkpoint of its size exists already."""
        async with self._sign_lock, self._session() as session:
            size = await repo.size(session)
            latest = await repo.latest_checkpoint(session)
            if latest is not None and latest.size >= size:
                return _signed(latest.note)
            root = await _frontier(session, size)
            note = sign_checkpoint(Checkpoint(self.origin, size, root), self.signer)
            await repo.add_checkpoint(
                session, size, root, note.decode(), self._clock(), signer_key=self._key
            )
            stored = await repo.checkpoint_of_size(session, size)
        return _handed_over_unless(stored)

    async def checkpoint_for(self, receipt: Receipt) -> SignedCheckpoint:
        """A signed checkpoint that includes ``receipt``'s entry (signing one if needed).

        The receipt carries the size and root of the tree its batch committed, so a new
        checkpoint is signed from those without reading the tree back: one insert.
        """
        latest = self._latest_signed
        if latest is not None and latest.size > receipt.index:
            return latest
        note = sign_checkpoint(
            Checkpoint(self.origin, receipt.tree_size, receipt.root_hash), self.signer
        )
        async with self._sign_lock, self._session() as session:
            await repo.add_checkpoint(
                session,
                receipt.tree_size,
                receipt.root_hash,
                note.decode(),
                self._clock(),
                signer_key=self._key,
            )
            stored = await repo.checkpoint_of_size(session, receipt.tree_size)
        signed = _handed_over_unless(stored)
        if latest is None or signed.size > latest.size:
            self._latest_signed = signed
        return signed

    async def current_checkpoint(self) -> SignedCheckpoint:
        """The newest checkpoint; signs the first one if the log has none yet."""
        latest = await self.latest_checkpoint()
        return latest if latest is not None else await self.checkpoint_now()

    def _ensure_started(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._write_loop(), name="audit-writer"),
                asyncio.create_task(self._checkpoint_loop(), name="audit-checkpointer"),
            ]

    async def _write_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                self._pending = self._pending[self._max_batch :]
                self._in_flight = batch
                try:
                    await self._commit(batch)
                except Exception as exc:  # escaped _commit's own handling: nobody waits for ever
                    self._frontier = None
                    log.exception("audit batch failed outside its transaction")
                    failed = StorageUnavailable(f"audit append failed: {type(exc).__name__}")
                    self._fail(batch, failed)
                self._in_flight = []  # kept when cancelled: close fails what was in flight

    async def _commit(self, batch: list[_Pending]) -> None:
        refused: dict[int, BaseException] = {}
        try:
            try:
                receipts = await self._sequence(batch, refused, savepoints=False)
            except _Dirty as dirty:  # an effect failed after it may have written: again
                self._frontier = None
                log.debug("audit batch run again, one savepoint per effect: %r", dirty.__cause__)
                receipts = await self._sequence(batch, refused, savepoints=True)
        except StorageUnavailable as exc:
            self._frontier = None
            self._fail(batch, exc)
            return
        except Exception as exc:  # every waiting appender must hear of any failure
            self._frontier = None
            log.exception("audit append failed")
            self._fail(batch, StorageUnavailable(f"audit append failed: {type(exc).__name__}"))
            return
        for item, receipt in zip(_accepted(batch, refused), receipts, strict=True):
            if not item.done.done():
                item.done.set_result(receipt)

    async def _sequence(
        self, batch: list[_Pending], refused: dict[int, BaseException], *, savepoints: bool
    ) -> list[Receipt]:
        """One transaction: lock, run the effects, grow the head, write entries and nodes.

        Without ``savepoints`` each effect runs bare: one that raises :class:`Unchanged`
        wrote nothing, so its appender hears of it at once and its entry takes no index;
        any other failure (of an effect, or of inserting the rows effects staged) raises
        :class:`_Dirty` and the transaction is rolled back. With ``savepoints`` (the second
        run) each effect runs in its own SAVEPOINT and one that raises is rolled back to it,
        as before. Either way ``refused`` holds the refused by position. If the transaction
        itself then fails, every other appender hears StorageUnavailable.

        The tree's frontier is kept from the last batch this process committed and read
        only when the head shows another writer (a replica) grew the tree since.
        """
        async with self._session() as session:
            await repo.lock_sequencer(session)
            await _run_effects(session, batch, refused, savepoints=savepoints)
            batch = _accepted(batch, refused)
            if not batch:
                return []
            if self.db.dialect == "sqlite":  # the rest in one hop on the driver's thread
                grown = await repo.in_sqlite_thread(session, lambda tail: self._grow(tail, batch))
            else:
                grown = await self._grow_async(session, batch)
        frontier, leaves, signed = grown
        self._frontier = frontier  # committed: the next batch of this process starts here
        if signed is not None:  # the newest tree: under the sequencer lock, no replica grew it
            self._latest_signed = signed
        elif self._sign_batches:  # not stored: the checkpointer tries again (and finds out why)
            self._dirty.set()
        start = frontier.size - len(leaves)
        root = frontier.root()
        return [Receipt(start + i, leaf, frontier.size, root) for i, leaf in enumerate(leaves)]

    def _grow(self, tail: repo.SqliteTail, batch: list[_Pending]) -> _Grown:
        """Grow the head, the tree, entries, nodes and checkpoint on SQLite (see ``_sequence``);
        as ``_grow_async``, with the same pure steps, in the driver's thread."""
        start = tail.grow(len(batch))
        frontier = self._kept_frontier(start)
        if frontier is None:
            frontier = Frontier.from_hashes(start, tail.node_hashes(frontier_ids(start)))
        frontier, rows, nodes, leaves = _extend(frontier, start, batch)
        tail.insert_batch(rows, nodes)
        signed = None
        if self._sign_batches:
            size, root, note, at = self._batch_checkpoint(frontier)
            if tail.add_checkpoint(size, root, note, at, signer_key=self._key):
                signed = _signed(note)
        return frontier, leaves, signed

    async def _grow_async(self, session: AsyncSession, batch: list[_Pending]) -> _Grown:
        """Grow the head, the tree, entries, nodes and checkpoint (PostgreSQL)."""
        start = await repo.grow(session, len(batch))
        frontier = self._kept_frontier(start)
        if frontier is None:
            frontier = Frontier.from_hashes(
                start, await repo.node_hashes(session, frontier_ids(start))
            )
        frontier, rows, nodes, leaves = _extend(frontier, start, batch)
        await repo.insert_batch(session, rows, nodes)
        signed = None
        if self._sign_batches:
            size, root, note, at = self._batch_checkpoint(frontier)
            if await repo.add_checkpoint(session, size, root, note, at, signer_key=self._key):
                signed = _signed(note)
        return frontier, leaves, signed

    def _kept_frontier(self, start: int) -> Frontier | None:
        """The frontier this process kept from its last batch, if it is that of the tree of
        ``start`` leaves; None when another writer grew the tree since (read its nodes)."""
        frontier = self._frontier
        if frontier is None or frontier.size != start:
            return None
        return frontier

    def _batch_checkpoint(self, frontier: Frontier) -> tuple[int, bytes, str, datetime]:
        """The checkpoint of the tree the batch grows to, signed: size, root, note, time.
        Stored in the batch's transaction unless the log's key was handed over to another
        (then not stored: the checkpointer tries again and finds out why)."""
        root = frontier.root()
        note = sign_checkpoint(Checkpoint(self.origin, frontier.size, root), self.signer)
        return frontier.size, root, note.decode(), self._clock()

    async def _checkpoint_loop(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(self._checkpoint_delay)
            self._dirty.clear()
            try:
                await self.checkpoint_now()
            except StorageUnavailable as exc:  # its words: the store, or a key handed over
                log.warning("audit checkpoint not signed (%s); will retry", exc)
                self._dirty.set()

    @staticmethod
    def _fail(batch: list[_Pending], exc: StorageUnavailable) -> None:
        for item in batch:
            if not item.done.done():
                item.done.set_exception(exc)


async def _run_effects(
    session: AsyncSession,
    batch: list[_Pending],
    refused: dict[int, BaseException],
    *,
    savepoints: bool,
) -> None:
    """Run the batch's effects (see ``AuditLog._sequence``); the refused go into
    ``refused`` by position and hear of it at once."""
    staged: _Staged = {}
    if not savepoints:
        session.info[_STAGED] = staged
    try:
        for position, item in enumerate(batch):
            if item.effect is None or position in refused:
                continue
            if savepoints:
                failure = await _run_effect(session, item.effect)
            else:
                failure = await _run_bare(session, item.effect, staged)
            if failure is not None:
                refused[position] = failure
                if not item.done.done():
                    item.done.set_exception(failure)
    finally:
        session.info.pop(_STAGED, None)
    try:  # one statement per table (none is the registry's: ``stage``), inserts first
        await repo.write_rows(
            session,
            [(table.__table__, rows) for (kind, table), rows in staged.items() if kind == _INSERT],
            [(table.__table__, rows) for (kind, table), rows in staged.items() if kind == _DELETE],
        )
    except (SQLAlchemyError, repo.RowsRefused) as exc:
        raise _Dirty from exc


async def _run_bare(session: AsyncSession, effect: Effect, staged: _Staged) -> BaseException | None:
    """Run ``effect`` without a SAVEPOINT: what it raised as :class:`Unchanged`, or None
    (kept); any other failure is :class:`_Dirty` (the batch must be rolled back)."""
    before = {table: len(rows) for table, rows in staged.items()}
    try:
        await effect(session)
    except Unchanged as exc:
        for table, rows in staged.items():  # nothing written: nor staged
            del rows[before.get(table, 0) :]
        return exc
    except Exception as exc:  # judged again, each effect in its own savepoint
        raise _Dirty from exc
    return None


async def _run_effect(session: AsyncSession, effect: Effect) -> BaseException | None:
    """Run ``effect`` in a savepoint; what it raised (rolled back), or None (kept)."""
    try:
        async with session.begin_nested():
            await effect(session)
    except IntegrityError as exc:  # a duplicate: the effect's owner explains it
        return exc
    except SQLAlchemyError as exc:  # the store, not the change: fail closed (503)
        return StorageUnavailable(f"audit effect: {type(exc).__name__}")
    except Exception as exc:  # noqa: BLE001 - any failure of a change belongs to its appender
        return exc
    return None


#: What growing the tree by a batch gave: the new frontier, the leaves, the stored checkpoint.
_Grown = tuple[Frontier, list[bytes], SignedCheckpoint | None]


def _extend(
    frontier: Frontier, start: int, batch: list[_Pending]
) -> tuple[Frontier, list[dict[str, object]], list[Node], list[bytes]]:
    """The tree of ``start`` leaves grown by ``batch`` (pure): frontier, entry rows, the
    nodes the batch completed, and its leaf hashes."""
    rows: list[dict[str, object]] = []
    nodes: list[Node] = []
    leaves: list[bytes] = []
    for offset, item in enumerate(batch):
        leaf = leaf_hash(item.data)
        frontier, completed = frontier.append(leaf)
        nodes.extend(completed)
        leaves.append(leaf)
        rows.append(_entry_row(start + offset, item, leaf))
    return frontier, rows, nodes, leaves


def _log_failure(done: asyncio.Future[Receipt]) -> None:
    """For a queued entry nobody waits for: say so if it could not be committed."""
    if not done.cancelled() and done.exception() is not None:
        log.error("queued audit entry not committed: %s", done.exception())


def _accepted(batch: list[_Pending], refused: dict[int, BaseException]) -> list[_Pending]:
    """The batch without the items whose effects were refused."""
    return [item for position, item in enumerate(batch) if position not in refused]


def _entry_row(index: int, item: _Pending, leaf: bytes) -> dict[str, object]:
    entry = item.entry
    return {
        "idx": index,
        "entry": item.data,
        "leaf_hash": leaf,
        "time": entry.time,
        "event": entry.event,
        "participant": _text_or_none(entry.actor.participant),
        "dataset": _text_or_none(entry.dataset),
        "decision": entry.decision.result if entry.decision else None,
        **_link_columns(item),
    }


#: Entry fields kept as columns too (migration 0019): what it touched, its trace, its exchange.
LINK_COLUMNS = ("target", "trace_id", "request_id")


def _link_columns(item: _Pending) -> dict[str, object]:
    """The link fields as the canonical bytes hold them (redacted, escaped): never raw text."""
    given = [getattr(item.entry, name) for name in LINK_COLUMNS]
    if nothing_to_fix([value for value in given if value is not None]):  # written as given
        return {name: _text_or_none(value) for name, value in zip(LINK_COLUMNS, given, strict=True)}
    written = json.loads(item.data)
    return {name: _text_or_none(written.get(name)) for name in LINK_COLUMNS}


def _text_or_none(value: object) -> str | None:
    return repo.column_text(value) if isinstance(value, str) else None


async def _frontier(session: AsyncSession, size: int) -> bytes:
    """The root of the committed tree of ``size`` leaves, from its frontier nodes."""
    hashes = await repo.node_hashes(session, frontier_ids(size))
    return Frontier.from_hashes(size, hashes).root()


def _handed_over_unless(stored: AuditCheckpointRow | None) -> SignedCheckpoint:
    """The stored checkpoint; none means ours was refused: the log has another key now."""
    if stored is None:
        raise StorageUnavailable("the audit log was handed over to another key; restart")
    return _signed(stored.note)


def _signed(note: str) -> SignedCheckpoint:
    """A stored note (written by us, so trusted) with its parsed body."""
    data = note.encode()
    text = data[: data.rindex(b"\n\n") + 1].decode()
    return SignedCheckpoint(Checkpoint.parse(text), data)
