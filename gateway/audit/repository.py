"""All SQL for the audit log. Functions take a session inside the caller's transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal, TypeVar

from sqlalchemy import (
    ClauseElement,
    ColumnElement,
    Delete,
    Insert,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import TextClause

from gateway.audit.compact import Node, NodeID
from gateway.storage import StorageUnavailable
from gateway.storage.models import (
    AuditCheckpointRow,
    AuditEntryRow,
    AuditHeadRow,
    AuditIdentityRow,
    AuditNodeRow,
)

#: pg_advisory_xact_lock key of the audit sequencer: int64 of b"sluisaud".
SEQUENCER_LOCK = int.from_bytes(b"sluisaud", "big", signed=True)
_HEAD_ID = 1


class TreeInconsistent(Exception):
    """Stored nodes do not form the tree the head row describes (corruption)."""


@dataclass(frozen=True)
class EntryFilter:
    """Which entries to list: a half-open time window, participant, dataset, decision."""

    since: datetime | None = None
    until: datetime | None = None
    participant: str | None = None
    dataset: str | None = None
    decision: str | None = None
    after: int | None = None  # only indices above this (keyset paging)
    limit: int = 100
    event: str | None = None  # appended (issue 15): the console filters by event type
    before: int | None = None  # only indices below this (keyset paging, newest first)
    newest_first: bool = False
    # appended (issue 15, migration 0019): what an entry touched, its trace, its exchange
    target: str | None = None
    trace_id: str | None = None
    request_id: str | None = None
    sort: SortColumn = "index"  # then by index: keyset paging on (column, idx)
    cursor: SortKey | None = None  # the (column value, idx) of the last entry shown


def column_text(value: str) -> str:
    """Text as the filter columns hold it: PostgreSQL's text cannot hold NUL, and caller
    text (a path, a header) can carry one, so NUL is kept as U+FFFD there (the entry's bytes
    keep it exactly). Filters are mapped the same way, so they still find the entry."""
    return value.replace("\x00", "\ufffd")


SortColumn = Literal["index", "time", "event", "participant", "dataset", "decision"]
#: A sort column's value (None sorts before every value) and the entry's index.
SortKey = tuple[str | datetime | None, int]


def sort_column(name: SortColumn) -> InstrumentedAttribute[Any]:
    """The column ``name`` sorts by (each has its ``(column, idx)`` index)."""
    columns: dict[str, InstrumentedAttribute[Any]] = {
        "index": AuditEntryRow.idx,
        "time": AuditEntryRow.time,
        "event": AuditEntryRow.event,
        "participant": AuditEntryRow.participant,
        "dataset": AuditEntryRow.dataset,
        "decision": AuditEntryRow.decision,
    }
    return columns[name]


@dataclass(frozen=True)
class CountFilter:
    """Which entries to count: a half-open time window."""

    since: datetime | None = None
    until: datetime | None = None


# The writer's statements run in Core on these tables (typed FromClause by the ORM).
_HEAD: Table = AuditHeadRow.__table__  # type: ignore[assignment]
_ENTRIES: Table = AuditEntryRow.__table__  # type: ignore[assignment]
_NODES: Table = AuditNodeRow.__table__  # type: ignore[assignment]
_CHECKPOINTS: Table = AuditCheckpointRow.__table__  # type: ignore[assignment]


async def lock_sequencer(session: AsyncSession) -> None:
    """Take the sequencer's lock for this transaction, before any effect or entry is written.

    PostgreSQL: the transaction-scoped advisory lock. SQLite: the database's write lock,
    by a no-op write to the head row; this also opens the transaction for real, so that a
    SAVEPOINT after it nests inside it (the driver's legacy mode begins a transaction only
    before a write, and a SAVEPOINT opened outside one would commit on its RELEASE).
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(_ADVISORY_LOCK, {"key": SEQUENCER_LOCK})
    else:  # one hop to the driver's thread (through the session's connection, three)
        await execute_one(session, _LOCK_HEAD, {})


# Built once, as every statement a batch runs (built per call, SQLAlchemy's expressions cost
# more Python than the round trip: ~2.9 ms of CPU per one-entry batch on PostgreSQL)
_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
# the no-op write that takes SQLite's write lock
_LOCK_HEAD = update(_HEAD).where(_HEAD.c.id == _HEAD_ID).values(size=_HEAD.c.size)
_GROW = (
    update(_HEAD)
    .where(_HEAD.c.id == _HEAD_ID)
    .values(size=_HEAD.c.size + bindparam("grown_by"))
    .returning(_HEAD.c.size)
)


async def grow(session: AsyncSession, count: int) -> int:
    """Add ``count`` to the head row (taking its write lock); the size before."""
    connection = await session.connection()
    new_size = (await connection.execute(_GROW, {"grown_by": count})).scalar_one()
    return int(new_size) - count


async def size(session: AsyncSession) -> int:
    """The committed tree size."""
    stmt = select(AuditHeadRow.size).where(AuditHeadRow.id == _HEAD_ID)
    return int((await session.execute(stmt)).scalar_one())


async def node_hashes(session: AsyncSession, ids: Sequence[NodeID]) -> list[bytes]:
    """The hashes of ``ids``, in their order; :class:`TreeInconsistent` if one is missing."""
    if not ids:
        return []
    found: dict[NodeID, bytes] = {}
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), 100):
        chunk = wanted[start : start + 100]
        params: dict[str, int] = {}
        for i, node in enumerate(chunk):
            params[f"l{i}"], params[f"i{i}"] = node.level, node.index
        for level, idx, hash_ in await session.execute(_nodes_query(len(chunk)), params):
            found[NodeID(level, idx)] = bytes(hash_)
    missing = [n for n in ids if n not in found]
    if missing:
        raise TreeInconsistent(f"missing tree node {missing[0]}")
    return [found[n] for n in ids]


@lru_cache(maxsize=128)  # by node count: a proof asks for at most ~2 log2(size) nodes
def _nodes_query(count: int) -> TextClause:
    """The hashes of ``count`` nodes, each ``(level = :lN AND idx = :iN)``, as plain SQL text:
    built as SQLAlchemy expressions (a clause pair per node) a proof's statement cost ~3 ms
    of Python per call against ~0.1 ms for SQLite to answer it (measured at 1M entries)."""
    where = " OR ".join(f"(level = :l{i} AND idx = :i{i})" for i in range(count))
    return text(f"SELECT level, idx, hash FROM {_NODES.name} WHERE {where}")  # noqa: S608 - the table's own name; values are bound


async def insert_batch(
    session: AsyncSession, entries: Sequence[dict[str, object]], nodes: Sequence[Node]
) -> None:
    """Insert entry rows and the nodes they completed (one transaction, the caller's)."""
    connection = await session.connection()  # Core on the tables: no ORM bulk machinery
    rows = [{"level": n.level, "idx": n.index, "hash": n.hash} for n in nodes]
    if connection.dialect.name == "postgresql":
        await _insert_unnested(connection, list(entries), rows)
        return
    await connection.execute(insert(_ENTRIES), list(entries))
    await connection.execute(insert(_NODES), rows)


async def _insert_unnested(
    connection: AsyncConnection, entries: list[dict[str, object]], nodes: list[dict[str, object]]
) -> None:
    """PostgreSQL: the entries and the nodes in one statement (one round trip, one Bind of
    one array per column instead of one per row), each value through its column type's
    bind processor as SQLAlchemy would. Entry rows all have the same columns."""
    params: dict[str, object] = {}
    entry_names = tuple(entries[0]) if entries else ("idx",)
    for label, table, rows, names in (
        ("e", _ENTRIES, entries, entry_names),
        ("n", _NODES, nodes, ("level", "idx", "hash")),
    ):
        for i, name in enumerate(names):
            process = _bind_processor(table, name, connection.dialect)
            params[f"{label}{i}"] = [_bound(process, row[name]) for row in rows]
    await connection.execute(_unnested(entry_names, connection.dialect), params)


@lru_cache(maxsize=16)  # per entry column set (the writer's is always the same) and dialect
def _unnested(entry_names: tuple[str, ...], dialect: Dialect) -> TextClause:
    """:func:`_insert_unnested`'s statement: each column's values as one typed array."""
    selects = []
    for label, table, names in (
        ("e", _ENTRIES, entry_names),
        ("n", _NODES, ("level", "idx", "hash")),
    ):
        arrays = [
            f"CAST(:{label}{i} AS {table.c[name].type.compile(dialect=dialect)}[])"
            for i, name in enumerate(names)
        ]
        selects.append(
            f"INSERT INTO {table.name} ({', '.join(names)}) "  # noqa: S608 - the table's own columns; values bound
            f"SELECT * FROM unnest({', '.join(arrays)})"
        )
    return text(f"WITH e AS ({selects[0]}) {selects[1]}")


_T = TypeVar("_T")


class SqliteTail:
    """The writer's statements after the effects, on SQLite's own connection in its driver's
    thread: a batch's head, nodes, entries and checkpoint cost one thread hop, not one per
    statement. The SQL is that of :func:`grow`, :func:`node_hashes`, :func:`insert_batch`
    and :func:`add_checkpoint` (with a signer key), and every value goes through its
    column type's bind processor, so the rows stored are the same.
    """

    def __init__(self, connection: sqlite3.Connection, dialect: Dialect) -> None:
        self._connection = connection
        self._dialect = dialect

    def grow(self, count: int) -> int:
        """As :func:`grow`: add ``count`` to the head row; the size before."""
        row = self._connection.execute(
            "UPDATE audit_head SET size = size + ? WHERE id = ? RETURNING size", (count, _HEAD_ID)
        ).fetchone()
        return int(row[0]) - count

    def node_hashes(self, ids: Sequence[NodeID]) -> list[bytes]:
        """As :func:`node_hashes` (one SELECT per node: only after another writer grew it)."""
        hashes = []
        for node in ids:
            row = self._connection.execute(
                "SELECT hash FROM audit_nodes WHERE level = ? AND idx = ?", (node.level, node.index)
            ).fetchone()
            if row is None:
                raise TreeInconsistent(f"missing tree node {node}")
            hashes.append(bytes(row[0]))
        return hashes

    def insert_batch(self, entries: Sequence[dict[str, object]], nodes: Sequence[Node]) -> None:
        """As :func:`insert_batch`: the entry rows (all with the same columns) and nodes."""
        self._insert(_ENTRIES, list(entries))
        self._insert(_NODES, [{"level": n.level, "idx": n.index, "hash": n.hash} for n in nodes])

    def add_checkpoint(
        self, size_: int, root_hash: bytes, note: str, signed_at: datetime, *, signer_key: str
    ) -> bool:
        """As :func:`add_checkpoint` with ``signer_key``: stored only while that key is the
        log's (or it has none yet) and no checkpoint of that size exists; whether it was."""
        values = self._values(
            _CHECKPOINTS,
            {"size": size_, "root_hash": root_hash, "note": note, "signed_at": signed_at},
        )
        cursor = self._connection.execute(
            "INSERT INTO audit_checkpoints (size, root_hash, note, signed_at) SELECT ?, ?, ?, ? "
            "WHERE EXISTS (SELECT id FROM audit_identity WHERE key = ?) "
            "OR NOT EXISTS (SELECT id FROM audit_identity) ON CONFLICT DO NOTHING",
            (*values, signer_key),
        )
        return cursor.rowcount == 1

    def run(self, statement: ClauseElement, values: dict[str, object]) -> tuple[int, Any]:
        """One Core ``statement`` with ``values``, compiled by SQLAlchemy for SQLite (once)
        and bound through its binds' processors, as the session would run it: its row
        count and first row (None without one)."""
        compiled, processors = _compiled(statement, self._dialect)
        params = compiled.construct_params(values)
        bound = tuple(_bound(processors[n], params[n]) for n in compiled.positiontup)
        cursor = self._connection.execute(compiled.string, bound)
        first = cursor.fetchone() if cursor.description else None
        count = cursor.rowcount
        cursor.close()
        return count, first

    def write_rows(self, inserts: RowWrites, deletes: RowWrites) -> None:
        """As :func:`write_rows` (its inserted rows whole): a refusal raises RowsRefused."""
        try:
            for table, rows in inserts:
                self._insert(table, list(rows))
            for table, rows in deletes:
                names = list(rows[0])
                where = " AND ".join(f"{name} = ?" for name in names)
                self._connection.executemany(
                    f"DELETE FROM {table.name} WHERE {where}",  # noqa: S608 - the table's own columns; values bound
                    [self._values(table, {name: row[name] for name in names}) for row in rows],
                )
        except sqlite3.Error as exc:
            raise RowsRefused(f"{type(exc).__name__}: {exc}") from exc

    def _insert(self, table: Table, rows: list[dict[str, object]]) -> None:
        if not rows:
            return
        names = list(rows[0])
        marks = ", ".join("?" * len(names))
        self._connection.executemany(
            f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})",  # noqa: S608 - names are the table's own columns, values are bound
            [self._values(table, row) for row in rows],
        )

    def _values(self, table: Table, row: dict[str, object]) -> tuple[object, ...]:
        return tuple(
            _bound(_bind_processor(table, name, self._dialect), value)
            for name, value in row.items()
        )


_Processor = Callable[[Any], Any] | None
_PROCESSORS: dict[tuple[str, str, str], _Processor] = {}
_COMPILED: dict[tuple[int, str], tuple[ClauseElement, Any, dict[str, _Processor]]] = {}


def _compiled(statement: ClauseElement, dialect: Dialect) -> tuple[Any, dict[str, _Processor]]:
    """``statement`` compiled for ``dialect`` and its binds' processors by name; kept per
    statement object (the hot path's are built once)."""
    key = (id(statement), dialect.name)
    found = _COMPILED.get(key)
    if found is None or found[0] is not statement:
        compiled: Any = statement.compile(dialect=dialect)  # an SQLCompiler: binds, positiontup
        processors = {name: _processor(b.type, dialect) for name, b in compiled.binds.items()}
        found = _COMPILED[key] = (statement, compiled, processors)
    return found[1], found[2]


def _bind_processor(table: Table, name: str, dialect: Dialect) -> _Processor:
    """The column type's bind processor for ``dialect``, kept per column."""
    key = (table.name, name, dialect.name)
    if key not in _PROCESSORS:
        _PROCESSORS[key] = _processor(table.c[name].type, dialect)
    return _PROCESSORS[key]


def _processor(kind: Any, dialect: Dialect) -> _Processor:
    """What SQLAlchemy applies to a value of type ``kind`` before ``dialect``'s driver sees it."""
    processor: _Processor = kind.dialect_impl(dialect).bind_processor(dialect)
    return processor


def _bound(process: _Processor, value: object) -> object:
    """``value`` as the driver gets it: through ``process``, except None (SQL NULL)."""
    return value if process is None or value is None else process(value)


async def in_sqlite_thread(session: AsyncSession, work: Callable[[SqliteTail], _T]) -> _T:
    """Run ``work`` in the session's transaction on SQLite's driver thread (one hop).

    aiosqlite runs every call on its connection in one thread; ``_execute`` is how it
    queues one (it has no public way to run a function there). A driver error becomes
    StorageUnavailable; the caller's transaction is then rolled back as for any failure.
    """
    connection = await session.connection()
    driver: Any = (await connection.get_raw_connection()).driver_connection  # aiosqlite's
    tail_dialect = connection.dialect

    def run() -> _T:
        return work(SqliteTail(driver._conn, tail_dialect))  # aiosqlite private, see above

    try:
        result: _T = await driver._execute(run)  # aiosqlite private, see above
    except sqlite3.Error as exc:
        raise StorageUnavailable(f"audit store: {type(exc).__name__}: {exc}") from exc
    return result


class RowsRefused(Exception):
    """The database refused rows :func:`write_rows` wrote (a duplicate key, a constraint);
    the driver's error is the cause."""


#: Rows to write together, per table: inserted (whole rows) or deleted (by the columns given).
RowWrites = Sequence[tuple[Table, Sequence[dict[str, object]]]]


async def write_rows(session: AsyncSession, inserts: RowWrites, deletes: RowWrites) -> None:
    """Insert then delete rows in the session's transaction, one statement per table.

    A delete row names the columns that pick the rows (all equal). On SQLite, when every
    inserted row names every column of its table (no column default applies), all of it
    runs in one hop to the driver's thread (through the session's connection, three per
    table), each value through its column type's bind processor as SQLAlchemy binds it.
    A refusal by the database raises :class:`RowsRefused` there, SQLAlchemy's error
    elsewhere.
    """
    inserts = [(table, rows) for table, rows in inserts if rows]
    deletes = [(table, rows) for table, rows in deletes if rows]
    if not inserts and not deletes:
        return
    connection = await session.connection()
    if connection.dialect.name == "sqlite" and all(_whole(t, rows) for t, rows in inserts):
        await in_sqlite_thread(session, lambda tail: tail.write_rows(inserts, deletes))
        return
    for table, rows in inserts:  # elsewhere SQLAlchemy's own errors
        await connection.execute(insert(table), list(rows))
    for table, rows in deletes:
        await connection.execute(_deleting(table, list(rows[0])), list(rows))


def _whole(table: Table, rows: Sequence[dict[str, object]]) -> bool:
    """Every row names every column of ``table``."""
    names = set(table.c.keys())
    return all(row.keys() == names for row in rows)


def _deleting(table: Table, names: list[str]) -> Delete:
    """DELETE FROM ``table`` WHERE each of ``names`` equals its bound value."""
    return delete(table).where(*(table.c[name] == bindparam(name) for name in names))


async def execute_one(
    session: AsyncSession, statement: ClauseElement, values: dict[str, object]
) -> tuple[int, Any]:
    """One Core ``statement`` with ``values`` in the session's transaction: its row count and
    first row (None without one). On SQLite in one hop to the driver's thread (through the
    session's connection a statement costs three or four: cursor, execute, fetch, close);
    the SQL is SQLAlchemy's own compilation of ``statement``, the values bound as it binds
    them. Elsewhere through the session's connection."""
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        return await in_sqlite_thread(session, lambda tail: tail.run(statement, values))
    result = await connection.execute(statement, values)  # type: ignore[call-overload]
    first = result.first() if result.returns_rows else None
    return result.rowcount, first


async def entries(session: AsyncSession, where: EntryFilter) -> list[tuple[int, bytes, object]]:
    """``(index, canonical bytes, sort key)`` of the entries matching ``where``.

    By ``where.sort`` then index, ascending, or descending with ``newest_first``; after
    ``where.cursor`` in that order. A missing value (NULL) sorts before every other, on
    both SQLite and PostgreSQL: the NULLs and the values are read as two segments, each
    one range of the ``(column, idx)`` index, so a deep page costs what the first does.
    """
    column = sort_column(where.sort)
    stmt = select(AuditEntryRow.idx, AuditEntryRow.entry, column)
    for condition in _conditions(where):
        if condition is not None:
            stmt = stmt.where(condition)
    if where.sort == "index":
        stmt = stmt.order_by(column.desc() if where.newest_first else column)
        result = await session.execute(stmt.limit(where.limit))
        return [(int(idx), bytes(entry), key) for idx, entry, key in result]
    if where.newest_first:
        stmt = stmt.order_by(column.desc(), AuditEntryRow.idx.desc())
    else:
        stmt = stmt.order_by(column, AuditEntryRow.idx)
    rows: list[tuple[int, bytes, object]] = []
    for segment in _segments(column, where.cursor, newest_first=where.newest_first):
        result = await session.execute(stmt.where(segment).limit(where.limit - len(rows)))
        rows += [(int(idx), bytes(entry), key) for idx, entry, key in result]
        if len(rows) == where.limit:
            break
    return rows


def _conditions(where: EntryFilter) -> list[ColumnElement[bool] | None]:
    texts = {
        name: None if value is None else column_text(value)
        for name, value in (
            ("participant", where.participant),
            ("dataset", where.dataset),
            ("target", where.target),
            ("trace_id", where.trace_id),
            ("request_id", where.request_id),
        )
    }
    return [
        AuditEntryRow.time >= where.since if where.since else None,
        AuditEntryRow.time < where.until if where.until else None,
        AuditEntryRow.participant == texts["participant"] if where.participant else None,
        AuditEntryRow.dataset == texts["dataset"] if where.dataset else None,
        AuditEntryRow.decision == where.decision if where.decision else None,
        AuditEntryRow.event == where.event if where.event else None,
        AuditEntryRow.target == texts["target"] if where.target else None,
        AuditEntryRow.trace_id == texts["trace_id"] if where.trace_id else None,
        AuditEntryRow.request_id == texts["request_id"] if where.request_id else None,
        AuditEntryRow.idx > where.after if where.after is not None else None,
        AuditEntryRow.idx < where.before if where.before is not None else None,
    ]


def _segments(
    column: InstrumentedAttribute[Any], cursor: SortKey | None, *, newest_first: bool
) -> list[ColumnElement[bool]]:
    """What is left after ``cursor``, as the NULL and the value segments in reading order."""
    idx = AuditEntryRow.idx
    nulls: ColumnElement[bool] = column.is_(None)
    values: ColumnElement[bool] = column.is_not(None)
    if cursor is not None:
        value, index = cursor
        if value is None:  # inside the NULLs: the rest of them, then (ascending) the values
            nulls = and_(nulls, idx < index if newest_first else idx > index)
            return [nulls] if newest_first else [nulls, values]
        key = tuple_(column, idx)
        values = and_(
            values, key < tuple_(value, index) if newest_first else key > tuple_(value, index)
        )
        return [values, nulls] if newest_first else [values]
    return [values, nulls] if newest_first else [nulls, values]


async def counts(session: AsyncSession, where: CountFilter) -> list[tuple[str, str | None, int]]:
    """``(event, decision, count)`` of the entries in the window, grouped in SQL.

    Index-only on (event, decision, time) (migration 0014): the log itself is not loaded.
    """
    stmt = select(AuditEntryRow.event, AuditEntryRow.decision, func.count()).group_by(
        AuditEntryRow.event, AuditEntryRow.decision
    )
    if where.since is not None:
        stmt = stmt.where(AuditEntryRow.time >= where.since)
    if where.until is not None:
        stmt = stmt.where(AuditEntryRow.time < where.until)
    return [(str(e), d, int(n)) for e, d, n in await session.execute(stmt)]


async def activity(
    session: AsyncSession, where: CountFilter
) -> list[tuple[str, str, str | None, int]]:
    """``(dataset, participant, decision, count)`` of the access decisions in the window."""
    stmt = (
        select(
            AuditEntryRow.dataset,
            AuditEntryRow.participant,
            AuditEntryRow.decision,
            func.count(),
        )
        .where(AuditEntryRow.event == "access-decision", AuditEntryRow.dataset.is_not(None))
        .group_by(AuditEntryRow.dataset, AuditEntryRow.participant, AuditEntryRow.decision)
    )
    if where.since is not None:
        stmt = stmt.where(AuditEntryRow.time >= where.since)
    if where.until is not None:
        stmt = stmt.where(AuditEntryRow.time < where.until)
    rows = await session.execute(stmt)
    return [(str(d), str(p or ""), r, int(n)) for d, p, r, n in rows]


async def entry_range(session: AsyncSession, begin: int, end: int) -> list[tuple[int, bytes]]:
    """``(index, canonical bytes)`` for indices ``[begin, end)``."""
    stmt = (
        select(AuditEntryRow.idx, AuditEntryRow.entry)
        .where(AuditEntryRow.idx >= begin, AuditEntryRow.idx < end)
        .order_by(AuditEntryRow.idx)
    )
    return [(int(idx), bytes(entry)) for idx, entry in await session.execute(stmt)]


async def latest_checkpoint(session: AsyncSession) -> AuditCheckpointRow | None:
    """The checkpoint of the largest tree."""
    stmt = select(AuditCheckpointRow).order_by(AuditCheckpointRow.size.desc()).limit(1)
    return (await session.scalars(stmt)).first()


async def checkpoint_at_least(session: AsyncSession, min_size: int) -> AuditCheckpointRow | None:
    """The smallest checkpoint of at least ``min_size`` leaves."""
    stmt = (
        select(AuditCheckpointRow)
        .where(AuditCheckpointRow.size >= min_size)
        .order_by(AuditCheckpointRow.size)
        .limit(1)
    )
    return (await session.scalars(stmt)).first()


async def all_checkpoints(session: AsyncSession) -> list[AuditCheckpointRow]:
    """Every checkpoint, smallest tree first."""
    stmt = select(AuditCheckpointRow).order_by(AuditCheckpointRow.size)
    return list((await session.scalars(stmt)).all())


async def add_checkpoint(
    session: AsyncSession,
    size_: int,
    root_hash: bytes,
    note: str,
    signed_at: datetime,
    *,
    signer_key: str | None = None,
) -> bool:
    """Store a checkpoint; if another replica stored one of that size first, keep theirs.
    Whether this call stored it.

    With ``signer_key`` (the signer's verifier key string) nothing is stored unless that
    is the log's current key, or the log has no identity yet: a key handed over signs no
    more, at no extra round trip (the caller sees no row of that size).
    """
    values = {"size": size_, "root_hash": root_hash, "note": note, "signed_at": signed_at}
    stmt = _checkpoint_insert(session.get_bind().dialect.name, checked=signer_key is not None)
    if signer_key is not None:
        values["signer_key"] = signer_key
    result = await (await session.connection()).execute(stmt, values)
    return bool(result.rowcount == 1)


_CHECKPOINT_VALUES = ("size", "root_hash", "note", "signed_at")


@lru_cache(maxsize=8)  # per dialect, with or without the key check: built once each
def _checkpoint_insert(dialect: str, *, checked: bool) -> Insert:
    """:func:`add_checkpoint`'s INSERT ... ON CONFLICT DO NOTHING, its values bound by name
    (and ``signer_key``, when ``checked``: stored only while that key is the log's)."""
    insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
    table: Table = AuditCheckpointRow.__table__  # type: ignore[assignment]
    if not checked:  # the columns are the execution's parameters
        return insert_(table).on_conflict_do_nothing()
    row = [bindparam(name, type_=table.c[name].type).label(name) for name in _CHECKPOINT_VALUES]
    current = select(AuditIdentityRow.id).where(AuditIdentityRow.key == bindparam("signer_key"))
    source = select(*row).where(or_(current.exists(), ~select(AuditIdentityRow.id).exists()))
    return insert_(table).from_select(list(_CHECKPOINT_VALUES), source).on_conflict_do_nothing()


async def checkpoint_of_size(session: AsyncSession, size_: int) -> AuditCheckpointRow | None:
    """The checkpoint of exactly ``size_`` leaves."""
    return await session.get(AuditCheckpointRow, size_)


_IDENTITY_ID = 1


async def identity(session: AsyncSession) -> AuditIdentityRow | None:
    """The log's identity row, if the log has one yet."""
    stmt = select(AuditIdentityRow).where(AuditIdentityRow.id == _IDENTITY_ID)
    return (await session.scalars(stmt)).first()


async def add_identity(session: AsyncSession, origin: str, key: str, created_at: datetime) -> None:
    """Store the log's identity; if another replica stored one first, keep theirs."""
    values = {"id": _IDENTITY_ID, "origin": origin, "first_key": key, "key": key}
    values["created_at"] = created_at
    insert_ = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(insert_(AuditIdentityRow).values(**values).on_conflict_do_nothing())


async def hand_over(session: AsyncSession, old_key: str, new_key: str, at: datetime) -> bool:
    """Make ``new_key`` the signing key, if ``old_key`` still is; whether it was."""
    stmt = (
        update(AuditIdentityRow)
        .where(AuditIdentityRow.id == _IDENTITY_ID, AuditIdentityRow.key == old_key)
        .values(key=new_key, rotated_at=at)
        .returning(AuditIdentityRow.id)
    )
    return (await session.execute(stmt)).first() is not None


async def replace_note(session: AsyncSession, size_: int, root_hash: bytes, note: str) -> bool:
    """Put ``note`` (more signatures over the same tree) in place of the stored one."""
    stmt = (
        update(AuditCheckpointRow)
        .where(AuditCheckpointRow.size == size_, AuditCheckpointRow.root_hash == root_hash)
        .values(note=note)
        .returning(AuditCheckpointRow.size)
    )
    return (await session.execute(stmt)).first() is not None
