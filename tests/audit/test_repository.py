"""The audit log's SQL (gateway/audit/repository.py), called directly on SQLite and PostgreSQL.

The log reaches most of it through its writer and readers; these pin what the log does not
look at: what ``add_checkpoint`` and the hand-over return, rows read in their ``ORDER BY``
although stored in another order, the head's arithmetic, the exact refusals, and the paths
the log takes on one database only (the async writer's statements, which SQLite's log skips).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.audit import repository as repo
from gateway.audit.compact import Node, NodeID
from gateway.storage import StorageUnavailable
from gateway.storage.db import Database
from gateway.storage.models import AuditEntryRow, AuditHeadRow
from tests.audit.logs import NOW, ORIGIN
from tests.support.databases import database_url

LATER = NOW + timedelta(hours=1)
AMSTERDAM = timezone(timedelta(hours=1))
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as value:
        yield value


def _root(n: int) -> bytes:
    return bytes([n]) * 32


def _on(url: str, *steps: Callable[[AsyncSession], Awaitable[None]]) -> None:
    """Run each step in its own committed transaction on a migrated database at ``url``."""

    async def run() -> None:
        db = Database(url)
        await db.upgrade()
        try:
            for step in steps:
                async with db.session() as session:
                    await step(session)
        finally:
            await db.dispose()

    asyncio.run(run())


async def _whole_table_reads(session: AsyncSession) -> None:
    """On PostgreSQL, read tables as a large range is read (an export): in the order the
    rows lie, not through an index. SQLite reads an index range in its order."""
    if session.get_bind().dialect.name == "postgresql":
        for plan in ("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan"):
            await session.execute(text(f"SET LOCAL {plan} = off"))


def _row(idx: int, **fields: Any) -> dict[str, object]:
    """An entry row as the writer makes it (every column, all rows alike)."""
    return {
        "idx": idx,
        "entry": b'{"n":%d}' % idx,
        "leaf_hash": _root(idx),
        "time": NOW + timedelta(minutes=idx),
        "event": "access-decision",
        "participant": f"p{idx % 2}",
        "dataset": "ds",
        "decision": "permit",
        "target": None,
        "trace_id": None,
        "request_id": None,
    } | fields


def test_add_checkpoint_says_whether_this_call_stored_it(url: str) -> None:
    async def first(session: AsyncSession) -> None:
        assert await repo.add_checkpoint(session, 3, _root(3), "n3", NOW) is True
        # another replica stored that size first: theirs is kept, and this call says so
        assert await repo.add_checkpoint(session, 3, _root(9), "other", LATER) is False
        # no identity yet: any signer's key may store
        assert await repo.add_checkpoint(session, 4, _root(4), "n4", NOW, signer_key="a") is True

    async def stored(session: AsyncSession) -> None:
        row = await repo.checkpoint_of_size(session, 3)
        assert row is not None
        assert (row.size, bytes(row.root_hash), row.note, row.signed_at) == (3, _root(3), "n3", NOW)
        assert await repo.checkpoint_of_size(session, 5) is None

    async def adopt(session: AsyncSession) -> None:
        await repo.add_identity(session, ORIGIN, "a", NOW)
        await repo.add_identity(session, "other.example/audit", "b", LATER)  # theirs first

    async def signed_by_the_current_key(session: AsyncSession) -> None:
        found = await repo.identity(session)
        assert found is not None
        assert (found.id, found.origin, found.first_key, found.key) == (1, ORIGIN, "a", "a")
        assert (found.created_at, found.rotated_at) == (NOW, None)
        assert await repo.add_checkpoint(session, 5, _root(5), "n5", NOW, signer_key="b") is False
        assert await repo.checkpoint_of_size(session, 5) is None
        # signed_at in another zone: stored as the same instant (the column's type), in UTC
        at = NOW.astimezone(AMSTERDAM)
        assert await repo.add_checkpoint(session, 5, _root(5), "n5", at, signer_key="a") is True
        assert await repo.add_checkpoint(session, 5, _root(5), "n5'", NOW, signer_key="a") is False

    async def stored_by_the_key(session: AsyncSession) -> None:
        row = await repo.checkpoint_of_size(session, 5)
        assert row is not None
        assert (row.size, bytes(row.root_hash), row.note, row.signed_at) == (5, _root(5), "n5", NOW)
        assert row.signed_at.utcoffset() == timedelta(0)

    _on(url, first, stored, adopt, signed_by_the_current_key, stored_by_the_key)


def test_a_hand_over_moves_the_key_once_and_the_old_key_signs_no_more(url: str) -> None:
    async def adopt(session: AsyncSession) -> None:
        await repo.add_identity(session, ORIGIN, "a", NOW)
        await repo.add_checkpoint(session, 3, _root(3), "n3", NOW, signer_key="a")

    async def hand_over(session: AsyncSession) -> None:
        assert await repo.hand_over(session, "b", "c", LATER) is False  # not the current key
        assert await repo.hand_over(session, "a", "c", LATER) is True
        assert await repo.hand_over(session, "a", "d", LATER) is False  # handed over already

    async def after(session: AsyncSession) -> None:
        found = await repo.identity(session)
        assert found is not None
        assert (found.id, found.origin, found.first_key, found.key) == (1, ORIGIN, "a", "c")
        assert (found.created_at, found.rotated_at) == (NOW, LATER)
        assert await repo.add_checkpoint(session, 4, _root(4), "n4", NOW, signer_key="a") is False
        assert await repo.add_checkpoint(session, 4, _root(4), "n4", NOW, signer_key="c") is True

    async def cosigned(session: AsyncSession) -> None:
        assert await repo.replace_note(session, 3, _root(3), "n3 cosigned") is True
        assert await repo.replace_note(session, 3, _root(4), "forged") is False  # another tree
        assert await repo.replace_note(session, 5, _root(3), "none") is False  # no such size

    async def notes(session: AsyncSession) -> None:
        rows = await repo.all_checkpoints(session)
        assert [(r.size, r.note) for r in rows] == [(3, "n3 cosigned"), (4, "n4")]

    _on(url, adopt, hand_over, after, cosigned, notes)


def test_checkpoints_are_read_by_size_whatever_order_they_were_stored_in(url: str) -> None:
    async def empty(session: AsyncSession) -> None:
        assert await repo.latest_checkpoint(session) is None
        assert await repo.checkpoint_at_least(session, 0) is None
        assert await repo.all_checkpoints(session) == []

    async def store(session: AsyncSession) -> None:
        for size in (5, 2, 9):  # out of order: the rows' physical order is not the sizes'
            assert await repo.add_checkpoint(session, size, _root(size), f"n{size}", NOW)

    async def read(session: AsyncSession) -> None:
        await _whole_table_reads(session)
        assert [r.size for r in await repo.all_checkpoints(session)] == [2, 5, 9]
        latest = await repo.latest_checkpoint(session)
        assert latest is not None
        assert (latest.size, latest.note) == (9, "n9")
        at_least = {n: await repo.checkpoint_at_least(session, n) for n in (0, 2, 3, 5, 6, 9, 10)}
        assert {n: r and r.size for n, r in at_least.items()} == {
            0: 2, 2: 2, 3: 5, 5: 5, 6: 9, 9: 9, 10: None
        }  # fmt: skip

    _on(url, empty, store, read)


def test_the_head_grows_by_count_and_says_the_size_before(url: str) -> None:
    async def grow(session: AsyncSession) -> None:
        assert await repo.size(session) == 0
        assert await repo.grow(session, 3) == 0
        assert await repo.grow(session, 2) == 3
        await repo.lock_sequencer(session)  # takes the lock, changes nothing
        assert await repo.size(session) == 5

    async def committed(session: AsyncSession) -> None:
        await repo.lock_sequencer(session)
        assert await repo.size(session) == 5
        head = (await session.execute(select(AuditHeadRow.id, AuditHeadRow.size))).all()
        assert [tuple(r) for r in head] == [(1, 5)]

    _on(url, grow, committed)


def test_entries_and_nodes_inserted_by_a_batch_are_read_back_in_index_order(url: str) -> None:
    nodes = [Node(0, i, _root(i)) for i in (2, 0, 1)] + [Node(1, 0, _root(40))]

    async def insert(session: AsyncSession) -> None:
        # stored out of order: reads must order by index, not by where the rows landed
        await repo.insert_batch(session, [_row(2), _row(0, participant=None), _row(1)], nodes)

    async def read(session: AsyncSession) -> None:
        await _whole_table_reads(session)
        got = await repo.entry_range(session, 0, 3)
        assert got == [(0, b'{"n":0}'), (1, b'{"n":1}'), (2, b'{"n":2}')]
        assert await repo.entry_range(session, 1, 2) == [(1, b'{"n":1}')]
        assert await repo.entry_range(session, 3, 9) == []
        rows = (await session.scalars(select(AuditEntryRow).order_by(AuditEntryRow.idx))).all()
        assert [(r.idx, r.participant, r.time) for r in rows] == [
            (0, None, NOW),
            (1, "p1", NOW + timedelta(minutes=1)),
            (2, "p0", NOW + timedelta(minutes=2)),
        ]
        ids = [NodeID(1, 0), NodeID(0, 2), NodeID(0, 0), NodeID(0, 2)]
        assert await repo.node_hashes(session, ids) == [_root(40), _root(2), _root(0), _root(2)]
        assert await repo.node_hashes(session, []) == []

    _on(url, insert, read)


def test_node_hashes_reads_many_nodes_in_chunks_and_names_the_first_missing(url: str) -> None:
    count = 250  # more than one chunk of 100, and a chunk not full

    async def insert(session: AsyncSession) -> None:
        nodes = [Node(0, i, i.to_bytes(32, "big")) for i in range(count)]
        await repo.insert_batch(session, [_row(0)], nodes)

    async def read(session: AsyncSession) -> None:
        ids = [NodeID(0, i) for i in reversed(range(count))]
        assert await repo.node_hashes(session, ids) == [n.index.to_bytes(32, "big") for n in ids]
        missing = [NodeID(0, 3), NodeID(1, 7), NodeID(0, count), NodeID(0, 4)]
        with pytest.raises(repo.TreeInconsistent) as caught:
            await repo.node_hashes(session, missing)
        assert str(caught.value) == "missing tree node NodeID(level=1, index=7)"

    _on(url, insert, read)


def test_counts_and_activity_group_the_window_in_sql(url: str) -> None:
    rows = [
        _row(0),
        _row(1, participant=None),  # a decision with no participant: "" in the activity
        _row(2, decision="deny"),
        _row(3, dataset=None),  # no dataset: counted, no activity
        _row(4, event="token-issued", decision=None, dataset="ds"),  # no access decision
        _row(5, decision="deny"),
    ]

    async def insert(session: AsyncSession) -> None:
        await repo.insert_batch(session, rows, [Node(0, i, _root(i)) for i in range(6)])

    async def read(session: AsyncSession) -> None:
        everything = repo.CountFilter()
        assert sorted(await repo.counts(session, everything), key=str) == sorted(
            [("access-decision", "permit", 3), ("access-decision", "deny", 2),
             ("token-issued", None, 1)], key=str,
        )  # fmt: skip
        assert sorted(await repo.activity(session, everything), key=str) == sorted(
            [("ds", "p0", "permit", 1), ("ds", "", "permit", 1), ("ds", "p0", "deny", 1),
             ("ds", "p1", "deny", 1)], key=str,
        )  # fmt: skip
        # [since, until): minutes 1 to 4, so entries 1, 2 and 3
        window = repo.CountFilter(NOW + timedelta(minutes=1), NOW + timedelta(minutes=4))
        assert sorted(await repo.counts(session, window), key=str) == sorted(
            [("access-decision", "permit", 2), ("access-decision", "deny", 1)], key=str
        )
        assert sorted(await repo.activity(session, window), key=str) == sorted(
            [("ds", "", "permit", 1), ("ds", "p0", "deny", 1)], key=str
        )
        # entry 2, a decision on a dataset, is at the window's end: not in it
        window = repo.CountFilter(NOW + timedelta(minutes=1), NOW + timedelta(minutes=2))
        assert await repo.counts(session, window) == [("access-decision", "permit", 1)]
        assert await repo.activity(session, window) == [("ds", "", "permit", 1)]

    _on(url, insert, read)


def test_entries_in_index_order_though_stored_in_another(url: str) -> None:
    async def insert(session: AsyncSession) -> None:
        order = [3, 0, 4, 1, 5, 2]
        await repo.insert_batch(session, [_row(i) for i in order], [Node(0, 0, _root(0))])

    async def read(session: AsyncSession) -> None:
        await _whole_table_reads(session)

        async def listed(**where: Any) -> list[int]:
            return [i for i, _, _ in await repo.entries(session, repo.EntryFilter(**where))]

        assert await listed() == [0, 1, 2, 3, 4, 5]
        assert await listed(newest_first=True) == [5, 4, 3, 2, 1, 0]
        assert await listed(after=1, limit=2) == [2, 3]
        assert await listed(before=4, newest_first=True, limit=2) == [3, 2]
        assert await listed(participant="p1") == [1, 3, 5]
        assert await listed(sort="time", limit=2) == [0, 1]  # a sorted page holds its limit
        assert await listed(sort="time", limit=2, newest_first=True) == [5, 4]

    _on(url, insert, read)


def test_a_cursor_among_the_missing_values_reads_the_rest_of_them_then_the_values(
    url: str,
) -> None:
    """Sorted by participant, NULL first: 0, 2, 4 (no participant), then p1's 1, 3, 5."""

    async def insert(session: AsyncSession) -> None:
        rows = [_row(i, participant=None if i % 2 == 0 else "p1") for i in (4, 1, 2, 5, 0, 3)]
        await repo.insert_batch(session, rows, [Node(0, 0, _root(0))])

    async def read(session: AsyncSession) -> None:
        async def listed(cursor: repo.SortKey | None, **where: Any) -> list[tuple[int, object]]:
            found = repo.EntryFilter(sort="participant", cursor=cursor, **where)
            return [(i, key) for i, _, key in await repo.entries(session, found)]

        assert await listed(None) == [(0, None), (2, None), (4, None), (1, "p1"), (3, "p1"),
                                      (5, "p1")]  # fmt: skip
        assert await listed((None, 2)) == [(4, None), (1, "p1"), (3, "p1"), (5, "p1")]
        assert await listed((None, 2), limit=2) == [(4, None), (1, "p1")]
        assert await listed(("p1", 3)) == [(5, "p1")]
        newest = {"newest_first": True}
        assert await listed(None, **newest) == [(5, "p1"), (3, "p1"), (1, "p1"), (4, None),
                                                (2, None), (0, None)]  # fmt: skip
        assert await listed((None, 2), **newest) == [(0, None)]
        assert await listed(("p1", 3), **newest) == [(1, "p1"), (4, None), (2, None), (0, None)]

    _on(url, insert, read)


def test_a_driver_error_in_sqlites_thread_is_storage_unavailable(tmp_path: Path) -> None:
    async def duplicate(session: AsyncSession) -> None:
        node = Node(0, 0, _root(0))
        with pytest.raises(StorageUnavailable) as caught:
            await repo.in_sqlite_thread(session, lambda tail: tail.insert_batch([], [node, node]))
        assert str(caught.value) == (
            "audit store: IntegrityError: UNIQUE constraint failed: audit_nodes.level, "
            "audit_nodes.idx"
        )
        assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)

    with database_url("sqlite", tmp_path) as url:
        _on(url, duplicate)


def test_sqlites_tail_names_a_missing_node_and_refuses_a_stale_key(tmp_path: Path) -> None:
    async def tail(session: AsyncSession) -> None:
        def work(tail: repo.SqliteTail) -> tuple[bool, ...]:
            tail.insert_batch([_row(0)], [Node(0, 0, _root(0))])
            assert tail.node_hashes([NodeID(0, 0)]) == [_root(0)]
            with pytest.raises(repo.TreeInconsistent) as caught:
                tail.node_hashes([NodeID(0, 0), NodeID(2, 1)])
            assert str(caught.value) == "missing tree node NodeID(level=2, index=1)"
            return (
                tail.add_checkpoint(1, _root(1), "n1", NOW, signer_key="a"),  # no identity yet
                tail.add_checkpoint(1, _root(1), "n1'", NOW, signer_key="a"),  # stored already
            )

        assert await repo.in_sqlite_thread(session, work) == (True, False)
        await repo.add_identity(session, ORIGIN, "a", NOW)
        stored = await repo.in_sqlite_thread(
            session,
            lambda tail: (
                tail.add_checkpoint(2, _root(2), "n2", NOW, signer_key="b"),
                tail.add_checkpoint(3, _root(3), "n3", NOW, signer_key="a"),
            ),
        )
        assert stored == (False, True)
        assert [r.size for r in await repo.all_checkpoints(session)] == [1, 3]

    with database_url("sqlite", tmp_path) as url:
        _on(url, tail)


def test_a_statement_is_compiled_again_when_another_held_its_id(tmp_path: Path) -> None:
    """The compiled-statement cache is keyed by ``id``: a statement freed and another made at
    its address must not be run as the first one's SQL."""
    grow = update(AuditHeadRow).where(AuditHeadRow.id == 1).values(size=AuditHeadRow.size + 1)
    stale = select(AuditHeadRow.size)

    async def run(session: AsyncSession) -> None:
        dialect = (await session.connection()).dialect
        compiled, _ = repo._compiled(stale, dialect)
        repo._COMPILED[(id(grow), dialect.name)] = repo._COMPILED[(id(stale), dialect.name)]
        got = await repo.in_sqlite_thread(session, lambda tail: tail.run(grow, {}))
        assert got == (1, None)
        assert await repo.size(session) == 1
        assert repo._compiled(stale, dialect)[0] is compiled  # kept while the statement lives

    with database_url("sqlite", tmp_path) as url:
        _on(url, run)


def test_sqlites_paths_bind_times_as_sqlalchemy_does_from_a_cold_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tail and ``execute_one`` put every value through its column type's processor,
    found afresh as in a process's first batch: a time in another zone is stored as the
    UTC text SQLAlchemy's own DATETIME writes (sortable), never the driver's own spelling."""
    monkeypatch.setattr(repo, "_PROCESSORS", {})
    monkeypatch.setattr(repo, "_COMPILED", {})
    checkpoints = repo._CHECKPOINTS
    moved = (
        update(checkpoints)
        .where(checkpoints.c.size == bindparam("checkpoint"))
        .values(signed_at=bindparam("at"))
    )

    async def write(session: AsyncSession) -> None:
        at = NOW.astimezone(AMSTERDAM)
        stored = await repo.in_sqlite_thread(
            session,
            lambda tail: (
                tail.insert_batch([_row(0, time=at)], [Node(0, 0, _root(0))]),
                tail.add_checkpoint(1, _root(1), "n1", at, signer_key="a"),
            ),
        )
        assert stored == (None, True)
        later = {"checkpoint": 1, "at": LATER.astimezone(AMSTERDAM)}
        assert await repo.execute_one(session, moved, later) == (1, None)

    async def read(session: AsyncSession) -> None:
        entry = (await session.execute(text("SELECT CAST(time AS TEXT) FROM audit_entries"))).all()
        signed = await session.execute(
            text("SELECT CAST(signed_at AS TEXT) FROM audit_checkpoints")
        )
        assert [r[0] for r in entry] == ["2026-11-27 12:00:00.000000"]
        assert [r[0] for r in signed.all()] == ["2026-11-27 13:00:00.000000"]

    with database_url("sqlite", tmp_path) as url:
        _on(url, write, read)
