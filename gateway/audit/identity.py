"""The audit log's identity: its origin and signing key, fixed when the log is created.

::

    created   the first start on an empty log stores the configured origin (``audit_origin``,
              else ``<host of public_url>/audit``) and the configured key, named by the origin
    adopted   a log written before identities existed takes the origin of its newest
              checkpoint, which the configured key must have signed
    checked   every start after that (:func:`reconcile`, pure): the configured key must be
              the log's current key, and an explicit ``audit_origin`` must be its origin
    handed    ``sluis audit rotate-key`` makes a new key current (gateway.audit.rotation)
    over

The origin never changes for the life of the log: a new ``public_url`` does not move it
(checkpoints keep their origin line, so an export verifies across the change). A
contradiction is a :class:`~gateway.settings.SettingsError` naming the fix, raised before
the gateway listens; nothing is written then.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.audit import repository as repo
from gateway.audit.checkpoint import Checkpoint, verify_checkpoint
from gateway.audit.errors import AuditError
from gateway.audit.keys import Verifier
from gateway.settings import SettingsError
from gateway.storage import StorageUnavailable
from gateway.storage.db import Database
from gateway.storage.models import AuditIdentityRow

ROTATE_HINT = (
    "configure that key, or hand the log over to a new key with "
    "`sluis audit rotate-key --new-key FILE` (run with the current key configured)"
)


@dataclass(frozen=True)
class LogIdentity:
    """What the log is: its origin line, the key it began with, the key that signs now."""

    origin: str
    first_key: Verifier
    key: Verifier
    created_at: datetime


@dataclass(frozen=True)
class Configured:
    """What the settings say: an origin (explicit, or derived from public_url) and a key."""

    origin: str
    origin_fixed: bool  # set as audit_origin, not derived from public_url
    public_key: bytes


def reconcile(stored: LogIdentity, configured: Configured) -> None:
    """Refuse (SettingsError) a configuration that contradicts the stored identity."""
    if configured.origin_fixed and configured.origin != stored.origin:
        raise SettingsError(
            f"audit_origin is {configured.origin!r} but this audit log's origin is "
            f"{stored.origin!r}, fixed when the log was created: set it to that or unset it"
        )
    if configured.public_key != stored.key.public_key:
        mine = Verifier(stored.origin, configured.public_key).key_id.hex()
        raise SettingsError(
            f"the configured audit key (key ID {mine}) is not the key this audit log is "
            f"signed with ({stored.key.key_string()}): {ROTATE_HINT}"
        )


async def read_identity(db: Database) -> LogIdentity | None:
    """The stored identity, or None for a log that has none yet."""
    async with _session(db) as session:
        row = await repo.identity(session)
    return None if row is None else _identity(row)


async def establish(db: Database, configured: Configured, *, now: datetime) -> LogIdentity:
    """The log's identity, stored now if the log has none; SettingsError on a contradiction."""
    async with _session(db) as session:
        await repo.lock_sequencer(session)  # no append slips in while an old log is adopted
        if await repo.identity(session) is None:
            origin = await _adopted_origin(session, configured)
            key = Verifier(origin, configured.public_key).key_string()
            await repo.add_identity(session, origin, key, now)
        row = await repo.identity(session)
        if row is None:  # pragma: no cover - inserted just above, in this transaction
            raise StorageUnavailable("audit identity not stored")
        identity = _identity(row)
    reconcile(identity, configured)
    return identity


async def _adopted_origin(session: AsyncSession, configured: Configured) -> str:
    """A new log takes the configured origin; an existing one its newest checkpoint's."""
    latest = await repo.latest_checkpoint(session)
    if latest is None:
        return configured.origin
    note = latest.note.encode()
    try:
        origin = Checkpoint.parse(note[: note.rindex(b"\n\n") + 1].decode()).origin
        verify_checkpoint(note, [Verifier(origin, configured.public_key)], origin)
    except (AuditError, ValueError) as exc:
        raise SettingsError(
            f"the configured audit key did not sign this audit log's newest checkpoint "
            f"(of size {latest.size}): {ROTATE_HINT}"
        ) from exc
    return origin


def _identity(row: AuditIdentityRow) -> LogIdentity:
    return LogIdentity(
        row.origin,
        Verifier.from_key_string(row.first_key),
        Verifier.from_key_string(row.key),
        row.created_at,
    )


@asynccontextmanager
async def _session(db: Database) -> AsyncIterator[AsyncSession]:
    """A transaction whose integrity errors become StorageUnavailable (fail closed)."""
    try:
        async with db.session() as session:
            yield session
    except IntegrityError as exc:
        raise StorageUnavailable(f"audit store: {exc}") from exc
