"""Who may do what, held in memory: the hot path reads no database in the steady state.

The :class:`Registry` of one :class:`~gateway.storage.db.Database` holds a :class:`Snapshot`
of the participants, OAuth clients, active datasets, active agreements and revoked tokens
(compiled policies are cached per version by the dataset service: a version never changes).

How a change reaches every replica::

    a transaction that writes one of those tables     (any session, any process: the ORM
      -> increments registry_version in that same      events below see the write)
         transaction
      -> this process: its registries reload at the   (in-process signal, keyed by the
         next lookup                                    database URL)
      -> other processes: each polls registry_version  (every POLL_SECONDS; one tiny SELECT)
         and reloads when it moved

Fail closed: a snapshot is served only while the registry confirmed it against the database
within ``BOUND_SECONDS``. When it cannot (the database is down), the lookup raises
``StorageUnavailable`` (503) instead of answering from permissions that may have changed.
So a suspension, revocation or policy change applies everywhere within ``BOUND_SECONDS``
(typically within one poll), or the replica refuses.

A lookup that would refuse (no such participant, dataset, active agreement or active client)
first asks the database for its version (:meth:`Registry.refresh`): what another process
granted a moment ago is seen at once, and only refusals pay that one small SELECT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, UOWTransaction

from gateway.agreements.schemas import Agreement
from gateway.datasets.schemas import Dataset
from gateway.participants.schemas import Participant
from gateway.storage import StorageUnavailable
from gateway.storage.db import Database
from gateway.storage.models import (
    AgreementRow,
    DatasetRow,
    OAuthClientRow,
    ParticipantRow,
    PolicyVersionRow,
    RegistryVersionRow,
    RevokedTokenRow,
)

log = logging.getLogger("sluis.registry")

POLL_SECONDS = 0.25
"""How often a running gateway asks whether another process changed the registry."""
BOUND_SECONDS = 1.0
"""The longest a snapshot is served without being confirmed current (then: 503)."""

_TRACKED = (ParticipantRow, OAuthClientRow, DatasetRow, PolicyVersionRow, AgreementRow,
            RevokedTokenRow)  # fmt: skip
_TRACKED_TABLES = frozenset(model.__tablename__ for model in _TRACKED)
_CHANGED = "sluis.registry.changed"  # Session.info flags
_BUMPED = "sluis.registry.bumped"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The registry at one version. Agreements carry ``use_count=0``: uses change on every
    request and are read from the usage state where a decision needs them."""

    version: int
    participants: Mapping[str, Participant]
    clients: Mapping[str, str]  # client_id -> status
    datasets: Mapping[str, Dataset]  # active ones only
    agreements: Mapping[tuple[str, str], Agreement]  # (consumer, dataset) -> the active one
    revoked: frozenset[str]  # jti of revoked tokens still accepted but for the revocation


class Registry:
    """The in-memory registry of one database (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        *,
        poll: float = POLL_SECONDS,
        bound: float = BOUND_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.poll, self.bound, self._clock = poll, bound, clock
        self._key = _key_of(db)
        self._snapshot: Snapshot | None = None
        self._seen = -1  # the in-process signal's generation the snapshot reflects
        self._confirmed = float("-inf")  # when the snapshot was last known current
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one load at a time, in the gateway's event loop
        self._asking = asyncio.Lock()  # one version question at a time (``refresh``)

    async def current(self) -> Snapshot:
        """The snapshot to decide on; ``StorageUnavailable`` if it cannot be confirmed current."""
        snapshot = self._snapshot
        if snapshot is None or _generation(self._key) != self._seen:
            return await self._reload()
        if self._clock() - self._confirmed > self.bound:
            return await self.refresh()
        return snapshot

    def invalidate(self) -> None:
        """Forget the snapshot: the next lookup reloads it (a change this process made)."""
        self._snapshot = None

    async def refresh(self) -> Snapshot:
        """Ask the database for its version now; reload when it moved.

        One question at a time: a lookup that waited for another's is served by it when
        that question began after this lookup asked (it saw every commit this one would);
        otherwise it asks again. Lookups that find the snapshot unconfirmed together (the
        poll running late under load) make one or two SELECTs, not one each.
        """
        asked = self._clock()
        async with self._asking:
            snapshot = self._snapshot
            if (
                snapshot is not None
                and self._confirmed > asked
                and _generation(self._key) == self._seen
            ):
                return snapshot
            generation = _generation(self._key)
            started = self._clock()
            async with self.db.session() as session:
                version = await _version(session)
            snapshot = self._snapshot
            if snapshot is None or snapshot.version != version or generation != self._seen:
                return await self._reload()
            self._confirmed = max(self._confirmed, started)
            return snapshot

    async def start(self) -> None:
        """Load now and poll for other processes' changes until :meth:`close`."""
        await self._reload()
        self._task = asyncio.create_task(self._poll(), name="sluis-registry-poll")

    async def close(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.poll)
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - lookups refuse once the bound has passed
                if not failing:  # said once, not four times a second
                    log.warning(
                        "registry refresh failed, refusing after %.1f s: %r", self.bound, exc
                    )
                failing = True
            else:
                if failing:
                    log.warning("registry refresh works again")
                failing = False

    async def _reload(self) -> Snapshot:
        """Load the registry, once for all the lookups waiting: a load begun after a lookup
        asked serves it (after a change, 32 requests do not make 32 loads)."""
        asked = self._clock()
        async with self._lock:
            if self._snapshot is not None and self._confirmed >= asked:
                return self._snapshot
            generation, started = _generation(self._key), self._clock()
            async with self.db.session() as session:
                snapshot = await _load(session)
            self._snapshot, self._seen, self._confirmed = snapshot, generation, started
            return snapshot


_registries: weakref.WeakKeyDictionary[Database, Registry] = weakref.WeakKeyDictionary()


def registry_of(db: Database) -> Registry:
    """The one registry of ``db`` (made on first use; the app's lifespan starts its poll)."""
    found = _registries.get(db)
    if found is None:
        found = _registries[db] = Registry(db)
    return found


_VERSION = select(RegistryVersionRow.version).where(RegistryVersionRow.id == 1)  # built once


async def _version(session: AsyncSession) -> int:
    found = await session.scalar(_VERSION)  # every poll of every replica
    if found is None:  # the row is the migration's: without it nothing is known to be current
        raise StorageUnavailable("the registry version row is missing (run the migrations)")
    return int(found)


async def _load(session: AsyncSession) -> Snapshot:
    version = await _version(session)  # first: a change committed meanwhile moves it again
    participants = {
        row.id: Participant.model_validate(row, from_attributes=True)
        for row in await session.scalars(select(ParticipantRow))
    }
    clients = {row.client_id: row.status for row in await session.scalars(select(OAuthClientRow))}
    datasets = {
        row.id: Dataset.model_validate(row, from_attributes=True)
        for row in await session.scalars(select(DatasetRow).where(DatasetRow.status == "active"))
    }
    agreements: dict[tuple[str, str], Agreement] = {}
    for row in await session.scalars(select(AgreementRow).where(AgreementRow.state == "active")):
        agreement = Agreement.model_validate(
            {**_columns(row), "use_count": 0}, from_attributes=False
        )
        agreements[(row.consumer_id, row.dataset_id)] = agreement
    # Every row: the table holds a revocation until its token can no longer be accepted
    # (exp + leeway, gateway/auth/windows.py); a time filter here would use another clock.
    revoked = frozenset(await session.scalars(select(RevokedTokenRow.jti)))
    return Snapshot(version, participants, clients, datasets, agreements, revoked)


def _columns(row: AgreementRow) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in AgreementRow.__table__.columns}


# --- the change signal: every write to a tracked table increments registry_version -------

_generations: dict[str, int] = {}
_generations_lock = threading.Lock()  # gateways and tests may run loops in several threads


def _key_of(db: Database) -> str:
    return db.engine.url.render_as_string(hide_password=True)


def tracks(table: str) -> bool:
    """Whether a write to ``table`` changes what the registry holds (its version moves)."""
    return table in _TRACKED_TABLES


def _generation(key: str) -> int:
    return _generations.get(key, 0)


def _signal(key: str) -> None:
    with _generations_lock:
        _generations[key] = _generations.get(key, 0) + 1


@event.listens_for(Session, "do_orm_execute")
def _statement_seen(state: ORMExecuteState) -> None:
    """An INSERT, UPDATE or DELETE statement on a tracked table marks the transaction."""
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in _TRACKED_TABLES:
        state.session.info[_CHANGED] = True


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _flush: UOWTransaction) -> None:
    """A tracked row added, changed or deleted through the unit of work marks the transaction."""
    if _touches(session):
        session.info[_CHANGED] = True


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    """Increment the version in the changing transaction itself: both commit, or neither."""
    if not (session.info.pop(_CHANGED, False) or _touches(session)):
        return
    try:
        with session.begin_nested():  # a savepoint: a schema older than 0012 has no counter
            session.execute(
                update(RegistryVersionRow)
                .where(RegistryVersionRow.id == 1)
                .values(version=RegistryVersionRow.version + 1)
            )
    except DBAPIError as exc:
        if not _no_such_table(exc):
            raise
        return  # no registry can load from that schema either (it needs the row): none stale
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    session.info[_BUMPED] = engine.url.render_as_string(hide_password=True)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    key = session.info.pop(_BUMPED, None)
    if key is not None:
        _signal(key)


@event.listens_for(Session, "after_transaction_end")
def _transaction_ended(session: Session, transaction: SessionTransaction) -> None:
    """The outermost transaction ended (committed or rolled back): the marks go with it. A
    savepoint rolled back keeps them: a spurious increment costs a reload, a lost one a bound."""
    if transaction.parent is None:
        session.info.pop(_CHANGED, None)
        session.info.pop(_BUMPED, None)


def _no_such_table(exc: DBAPIError) -> bool:
    """SQLite's "no such table" or PostgreSQL's undefined_table (42P01)."""
    orig = exc.orig
    cause = getattr(orig, "__cause__", None)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(cause, "sqlstate", None)
    return sqlstate == "42P01" or "no such table" in str(orig)


def _touches(session: Session) -> bool:
    return any(
        isinstance(obj, _TRACKED)
        for objects in (session.new, session.dirty, session.deleted)
        for obj in objects
    )
