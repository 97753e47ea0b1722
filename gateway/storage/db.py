"""The database handle: one async engine, sessions, readiness and migrations."""

from __future__ import annotations

import asyncio
import functools
import re
import threading
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
from sqlalchemy import Connection, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from gateway.storage import StorageUnavailable

MIGRATIONS = Path(__file__).parent / "migrations"
# Server connections are replaced after this long, before idle timeouts, firewalls or
# PgBouncer's server_lifetime drop them silently.
POOL_RECYCLE_SECONDS = 1800
# How long ``dispose`` waits for one SQLite driver thread to stop (a bound, not a pause:
# a closed connection's thread ends as soon as its queued calls have run).
WORKER_STOP_SECONDS = 10.0
# What a failing database raises. SQLAlchemy before 2.1 lets asyncpg's own errors from
# opening a connection (a database that does not exist) through unwrapped (make lowest).
DATABASE_ERRORS = (SQLAlchemyError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


class Database:
    """An async engine plus a session factory, created from a SQLAlchemy URL."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self._name = parsed.database or ""
        if self.dialect == "sqlite" and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # No pre-ping (it costs a BEGIN; ROLLBACK round trip per session): a connection the
        # server closed is noticed locally at checkout and replaced; one that dies mid-use
        # fails that transaction as StorageUnavailable and SQLAlchemy invalidates the pool.
        options: dict[str, Any] = {}
        #: SQLite: every driver connection (each runs on its own thread), for ``dispose``.
        self._drivers: weakref.WeakSet[aiosqlite.Connection] = weakref.WeakSet()
        if self.dialect != "sqlite":
            options["pool_recycle"] = POOL_RECYCLE_SECONDS
        elif parsed.database and not parsed.query:
            options["async_creator"] = functools.partial(self._open_sqlite, parsed.database)
        if self.dialect == "sqlite":  # rolled back on return only in a transaction: below
            options["pool_reset_on_return"] = None
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "reset", _rollback_if_in_transaction)
        else:
            replace_closed_connections(self.engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed on success, rolled back on error.

        Integrity errors (duplicates) propagate for the caller to explain; every other
        database or connection failure becomes :class:`StorageUnavailable`.
        """
        try:
            async with self.sessions() as session, session.begin():
                yield session
        except IntegrityError:
            raise
        except DATABASE_ERRORS as exc:
            raise StorageUnavailable(self._why(exc, type(exc).__name__)) from exc

    async def ping(self) -> None:
        """Raise :class:`StorageUnavailable` unless a trivial query succeeds."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except DATABASE_ERRORS as exc:
            raise StorageUnavailable(self._why(exc, type(exc).__name__)) from exc

    async def upgrade(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        try:
            async with self.engine.begin() as conn:
                await conn.run_sync(_upgrade)
        except DATABASE_ERRORS as exc:
            why = self._why(exc, f"migration failed: {type(exc).__name__}")
            raise StorageUnavailable(why) from exc

    def _why(self, exc: BaseException, default: str) -> str:
        """What the operator can act on: a PostgreSQL database that does not exist, by name."""
        seen: BaseException | None = exc
        while seen is not None:
            if getattr(seen, "sqlstate", None) == "3D000":  # invalid_catalog_name
                return (
                    f"PostgreSQL database {self._name!r} does not exist: create it "
                    f"(createdb {self._name}) or fix SLUIS_DATABASE_URL"
                )
            seen = seen.__cause__ or getattr(seen, "orig", None)
        return default

    async def dispose(self) -> None:
        """Close every pooled connection; on SQLite, wait until their drivers have stopped.

        A connection whose task was cancelled mid-statement is invalidated by SQLAlchemy:
        its driver is told to close, but nobody waits for the statement still running in
        aiosqlite's worker thread. Had the event loop closed first, that thread would answer
        into it ("Event loop is closed"). So ``dispose`` waits for every worker thread
        (bounded: a connection still checked out by a task that outlives this keeps its own).
        """
        await self.engine.dispose()
        for connection in list(self._drivers):
            worker = _worker_of(connection)
            if worker is None or not worker.is_alive():
                continue
            # Closed by dispose, or invalidated: either way done with. Told to stop (again:
            # an invalidated one's close may never have been queued), then waited for.
            stop = getattr(connection, "stop", None) or getattr(connection, "_stop_running", None)
            if callable(stop):
                stop()
            await asyncio.to_thread(worker.join, WORKER_STOP_SECONDS)

    async def _open_sqlite(self, path: str) -> aiosqlite.Connection:
        """What SQLAlchemy's aiosqlite dialect does to connect, with the worker thread noted
        before it starts: a connect cancelled half-way still leaves a thread to wait for."""
        connection = aiosqlite.connect(path)
        worker = _worker_of(connection)
        if worker is not None:
            worker.daemon = True  # as the dialect does: a leaked one must not block exit
            self._drivers.add(connection)
        return await connection


def _worker_of(connection: aiosqlite.Connection) -> threading.Thread | None:
    """The thread an aiosqlite connection runs on: the connection itself (0.20) or its
    ``_thread`` (0.21 on). Neither is public API; anything else is not waited for."""
    worker = getattr(connection, "_thread", connection)
    return worker if isinstance(worker, threading.Thread) else None


def _upgrade(connection: Connection) -> None:
    if _at_head(connection):
        return  # nothing to migrate: Alembic and Mako (about 7 MiB a process keeps) not imported
    # Imported here: Alembic is needed only for migrations and costs CLI start-up time.
    from alembic import command  # noqa: PLC0415
    from alembic.config import Config  # noqa: PLC0415

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


_REVISION = re.compile(r'^revision = "(\w+)"', re.MULTILINE)
_DOWN = re.compile(r'^down_revision = (?:None|"(\w+)")(?:\s*#.*)?$', re.MULTILINE)


def head_revision(versions: Path = MIGRATIONS / "versions") -> str | None:
    """The one head of the migration scripts, read from their text without Alembic; None when
    a script does not state a plain ``revision`` and ``down_revision`` (a merge, a branch, an
    unexpected layout): then Alembic decides."""
    revisions: set[str] = set()
    downs: set[str] = set()
    for script in versions.glob("*.py"):
        text = script.read_text(encoding="utf-8")
        if script.name == "__init__.py":
            continue
        revision, down = _REVISION.findall(text), _DOWN.findall(text)
        if len(revision) != 1 or len(down) != 1:
            return None
        revisions.add(revision[0])
        if down[0]:
            downs.add(down[0])
    heads = revisions - downs
    return heads.pop() if len(heads) == 1 and downs <= revisions else None


def _at_head(connection: Connection) -> bool:
    """True only when the database records exactly the one head revision (fail safe: anything
    else, including an unreadable version table, goes to Alembic)."""
    head = head_revision()
    if head is None or not inspect(connection).has_table("alembic_version"):
        return False
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return list(rows) == [head]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _rollback_if_in_transaction(dbapi_connection: Any, _record: Any, state: Any) -> None:
    """The pool's reset of a SQLite connection it takes back: a ROLLBACK only while SQLite
    says a transaction is open (``in_transaction``, read off the driver's connection, idle
    while pooled). The pool's own reset rolls back every connection, a committed one too: a
    hop to aiosqlite's thread and back for nothing, once per session."""
    if state.terminate_only or not state.asyncio_safe:  # being discarded, or no loop to use
        return
    raw = getattr(dbapi_connection.driver_connection, "_conn", None)  # aiosqlite private
    if raw is None or raw.in_transaction:
        dbapi_connection.rollback()


def replace_closed_connections(engine: AsyncEngine) -> None:
    """Make ``engine``'s pool drop connections the server has closed, at checkout."""
    event.listen(engine.sync_engine, "checkout", _discard_if_closed)


def _discard_if_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Refuse a pooled connection whose server already hung up (no round trip).

    PostgreSQL says goodbye before it closes a connection (``pg_terminate_backend``, restart,
    idle timeout); asyncpg then marks it closed. ``DisconnectionError`` makes the pool drop it
    and check out another, so the request never sees the dead one.
    """
    driver = getattr(dbapi_connection, "driver_connection", None)
    is_closed = getattr(driver, "is_closed", None)
    if is_closed is not None and is_closed():
        raise DisconnectionError("the server closed this pooled connection")
