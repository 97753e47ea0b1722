"""The DSP outbox: every message to a peer is stored before it is sent.

The provider's callbacks to a consumer and the consumer side's own messages to a provider
(the verification, a completion, a termination: :mod:`gateway.dsp.consumer`) share it; a
row's ``process`` names its side (``dsp-negotiation:<providerPid>``,
``dsp-consumer-negotiation:<consumerPid>``, ...).

A state change and the message that announces it commit together: the caller adds an
:class:`Outgoing` to the state change's transaction (:meth:`Outgoing.put`), and sends it after
the commit (:meth:`Outbox.deliver`). A send is one round of :meth:`Callbacks.send` (retried
with backoff there). A round that fails leaves the message pending, tried again by the
background loop (:meth:`Outbox.run`) after ``retry_interval`` seconds, doubling per round up
to an hour, and again at every start of the gateway: a message a crash or a restart
interrupted still arrives (first the :attr:`Outbox.on_start` hooks run, which store what a
stop left unstored). A message is given up when the peer refuses it (a final 4xx)
or when it is older than ``give_up_after``; the give-up commits with an ``agreement-changed``
entry (``action`` ``dsp-callback-given-up``) and is logged.

Messages of one process go out in order: a message waits while an earlier one of its process
is pending. A TransferStartMessage is stored without its token (the database never holds a
bearer token): a re-send from storage asks :attr:`Outbox.reissue` for a new message, which
mints a new token bound to the same certificate and revokes the old one, with its entry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.admin.changes import commit
from gateway.audit.entry import Actor, AuditEntry, DecisionRecord
from gateway.audit.log import AuditLog
from gateway.dsp import outbox_repository as repository
from gateway.dsp.callbacks import Callbacks
from gateway.storage.db import Database
from gateway.storage.models import DspOutboxRow
from gateway.telemetry import current_trace_id

log = logging.getLogger("sluis.dsp")
LEASE: Final = timedelta(minutes=2)  # longer than one round of Callbacks.send
MAX_INTERVAL: Final = 3600.0
KEEP: Final = timedelta(days=7)  # delivered and given-up messages, for the operator to look at
BATCH: Final = 50
Reissue = Callable[[DspOutboxRow], Awaitable[dict[str, Any] | None]]
OnStart = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Outgoing:
    """A message to store with the state change it follows."""

    process: str  # dsp-negotiation:<providerPid>, dsp-consumer-transfer:<consumerPid>, ...
    dataset_id: str
    address: str
    path: str
    message: dict[str, Any]
    token_thumbprint: str | None = None  # a start message: its token is never stored

    async def put(self, session: AsyncSession, now: datetime) -> int:
        """Add it to ``session``'s transaction, leased to the caller, who sends it next with
        :meth:`Outbox.deliver` (the background loop leaves it alone until the lease ends, so
        it never sends a start message's stored copy while the request sends the full one);
        the row id."""
        return await repository.add(
            session,
            DspOutboxRow(
                process=self.process, dataset_id=self.dataset_id, address=self.address,
                path=self.path, message=self.message, token_thumbprint=self.token_thumbprint,
                status=repository.PENDING, attempts=0, next_attempt_at=now,
                lease_until=now + LEASE, created_at=now, updated_at=now,
            ),
        )  # fmt: skip


def _now() -> datetime:
    return datetime.now(UTC)


class Outbox:
    """Sends stored messages until they are delivered or given up."""

    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        callbacks: Callbacks,
        *,
        retry_interval: float,
        give_up_after: timedelta,
        poll: float = 5.0,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.db = db
        self.audit = audit
        self.callbacks = callbacks
        self.retry_interval = retry_interval
        self.give_up_after = give_up_after
        self.poll = poll
        self.clock = clock
        self.reissue: Reissue | None = None  # set by the TransferService
        self.on_start: list[OnStart] = []  # run once by the loop before its first pass
        self._task: asyncio.Task[None] | None = None

    async def deliver(self, row_id: int, message: dict[str, Any] | None = None) -> None:
        """Send row ``row_id``, just stored by :meth:`Outgoing.put` under the caller's lease
        (``message``: the full text when the row holds less, as a start message without its
        token). While an earlier message of its process is pending, the lease is released
        and the background loop sends it in turn."""
        async with self.db.session() as session:
            row = await session.get(DspOutboxRow, row_id)
            if row is None or row.status != repository.PENDING:
                return
            if await repository.earlier_pending(session, row):
                await repository.finish(session, row_id)
                return
        await self._send(row, message)

    async def deliver_due(self, *, restarted: bool = False) -> int:
        """One pass over the due messages (``restarted``: every pending one, whenever its
        next round was due); how many were delivered."""
        now = self.clock()
        async with self.db.session() as session:
            rows = await repository.due(session, now, BATCH, every=restarted)
        delivered, stuck = 0, set()
        for found in rows:
            if found.process in stuck:
                continue
            row = await self._claim(found.id)
            if row is not None and await self._send(row, None):
                delivered += 1
            else:
                stuck.add(found.process)
        return delivered

    async def _claim(self, row_id: int) -> DspOutboxRow | None:
        now = self.clock()
        async with self.db.session() as session:
            row = await session.get(DspOutboxRow, row_id)
            if row is None or await repository.earlier_pending(session, row):
                return None
            if not await repository.claim(session, row_id, now, now + LEASE):
                return None
        return row

    async def _send(self, row: DspOutboxRow, message: dict[str, Any] | None) -> bool:
        text = message if message is not None else await self._text(row)
        if text is None:
            await self._give_up(row, "the process moved on; the message is no longer due")
            return False
        outcome = await self.callbacks.send(row.address, row.path, text)
        now = self.clock()
        if outcome == "delivered":
            await self._finish(row, status="delivered", attempts=row.attempts + 1, updated_at=now)
            return True
        if outcome == "refused":
            await self._give_up(row, "the peer refused it")
        elif now - row.created_at > self.give_up_after:
            await self._give_up(row, f"not delivered within {self.give_up_after}")
        else:
            wait = min(self.retry_interval * 2**row.attempts, MAX_INTERVAL)
            log.warning("dsp callback %s%s: round %d failed, next in %.0f s",
                        row.address, row.path, row.attempts + 1, wait)  # fmt: skip
            await self._finish(row, attempts=row.attempts + 1, updated_at=now,
                               next_attempt_at=now + timedelta(seconds=wait))  # fmt: skip
        return False

    async def _text(self, row: DspOutboxRow) -> dict[str, Any] | None:
        if row.token_thumbprint is None:
            return row.message
        if self.reissue is None:  # fail closed: no token, no start message
            return None
        return await self.reissue(row)

    async def _finish(self, row: DspOutboxRow, **values: Any) -> None:
        async with self.db.session() as session:
            await repository.finish(session, row.id, **values)

    async def _give_up(self, row: DspOutboxRow, why: str) -> None:
        now = self.clock()
        log.error("dsp callback %s%s for %s given up after %d rounds: %s",
                  row.address, row.path, row.process, row.attempts + 1, why)  # fmt: skip
        entry = given_up_entry(row, why, now)

        async def change(session: AsyncSession) -> None:
            await repository.finish(session, row.id, status="given-up",
                                    attempts=row.attempts + 1, updated_at=now)  # fmt: skip

        await commit(self.audit, entry, change)

    # -- the background loop ----------------------------------------------------------------

    def start(self) -> None:
        """Run :meth:`run` as a task (the gateway's lifespan); a first pass at once."""
        self._task = asyncio.create_task(self.run(), name="dsp-outbox")

    async def run(self) -> None:
        """Deliver due messages every ``poll`` seconds until cancelled."""
        restarted, purged = True, datetime.min.replace(tzinfo=UTC)
        for hook in self.on_start:
            try:
                await hook()
            except Exception:  # logged; the messages it would store wait for the next start
                log.exception("dsp: a start-up hook of the outbox failed")
        while True:
            try:
                await self.deliver_due(restarted=restarted)
                restarted = False
                if self.clock() - purged > timedelta(hours=1):
                    purged = self.clock()
                    async with self.db.session() as session:
                        await repository.purge(session, purged - KEEP)
            except Exception:  # a database hiccup: logged, tried again at the next poll
                log.exception("dsp: the outbox pass failed")
            await asyncio.sleep(self.poll)

    async def aclose(self) -> None:
        """Stop the loop and close the sender (pending messages stay for the next start)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.callbacks.aclose()


def given_up_entry(row: DspOutboxRow, why: str, now: datetime) -> AuditEntry:
    """The entry a given-up message commits with (pure)."""
    return AuditEntry(
        time=now,
        event="agreement-changed",
        actor=Actor(),
        dataset=row.dataset_id,
        action="dsp-callback-given-up",
        target=row.process,
        decision=DecisionRecord(
            result="deny",
            reasons=(f"{row.message.get('@type', 'message')} to {row.path}", why[:200]),
        ),
        trace_id=current_trace_id(),
    )
