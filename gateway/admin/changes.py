"""The one way a change of who may do what is committed: as the *effect* of its entry.

:func:`commit` runs the change on the audit log's own transaction (``AuditLog.append(entry,
effect=...)``): the change and its entry commit together, or neither does. Every such change
goes through here: the admin service (participants, clients, datasets, certificates),
agreements (:mod:`gateway.agreements.service`), token revocation and token-key rotation
(:mod:`gateway.oauth`). A change that raises (Conflict, NotFound, ...) writes no entry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.audit.entry import Actor, AuditEntry, DecisionRecord, encode_entry
from gateway.audit.errors import EntryError
from gateway.audit.log import AuditLog
from gateway.errors import BadRequest
from gateway.telemetry import current_trace_id

T = TypeVar("T")
Change = Callable[[AsyncSession], Awaitable[T]]
MAX_REASON = 500


async def commit(audit: AuditLog, entry: AuditEntry, change: Change[T]) -> T:
    """Commit ``change`` with ``entry``; its result.

    Raises BadRequest ``change-not-recordable`` (nothing changed) for an entry the log
    cannot hold (credential lookalikes are redacted by the encoder, not refused).
    """
    try:
        encode_entry(entry)
    except EntryError as exc:
        raise BadRequest("change-not-recordable", exc.detail) from exc
    results: list[T] = []

    async def effect(session: AsyncSession) -> None:
        # When another effect's failure rolls the batch back, the log runs it again: only
        # the last run committed, so only its result is handed back.
        results[:] = [await change(session)]

    await audit.append(entry, effect=effect)
    return results[0]


def change_entry(
    actor: Actor,
    action: str,
    target: str,
    now: datetime,
    reasons: tuple[str, ...],
    *,
    dataset: str | None = None,
    policy: tuple[str | None, str] | None = None,
    token_sha256: str | None = None,
) -> AuditEntry:
    """An ``admin-change`` entry: who, what, on what, and the new values."""
    policy_id, policy_hash = policy if policy is not None else (None, None)
    return AuditEntry(
        time=now,
        event="admin-change",
        actor=actor,
        dataset=dataset,
        action=action,
        target=target,
        token_sha256=token_sha256,
        decision=DecisionRecord(
            result="permit",
            policy_id=policy_id or None,
            policy_hash=policy_hash,
            reasons=tuple(r[:MAX_REASON] for r in reasons),
        ),
        trace_id=current_trace_id(),
    )
