"""Handing the audit log over to a new checkpoint key (``sluis audit rotate-key``).

::

    1. append   {"event": "key-rotation", "target": "<new verifier key string>"}  (index r)
    2. sign     the checkpoint of the tree holding it (size r + 1 or more) with the OLD
                key, cosigned by the new one (which proves it is held), and store it
    3. switch   the identity's current key to the new one, in that same transaction

From then on only the new key signs: a process still holding the old key refuses to sign
(:meth:`AuditLog._check_key`) and refuses to start. ``sluis audit verify`` starts from the
first key and follows each hand-over (:mod:`gateway.audit.handover`). If step 2 or 3
fails, the entry stays without a cosigned checkpoint: no hand-over, the old key goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.audit import repository as repo
from gateway.audit.checkpoint import Checkpoint
from gateway.audit.entry import AuditEntry
from gateway.audit.handover import ROTATION_EVENT
from gateway.audit.identity import LogIdentity
from gateway.audit.keys import Signer, Verifier
from gateway.audit.log import AuditLog
from gateway.audit.note import sign_note
from gateway.settings import SettingsError
from gateway.storage.db import Database

_NO_BACKGROUND_SIGNING = 3600.0  # seconds: the hand-over checkpoint is signed right here


@dataclass(frozen=True)
class HandOver:
    """A completed rotation: the entry's index and the checkpoint signed by both keys."""

    index: int
    size: int
    old_key: Verifier
    new_key: Verifier


class RotationRefused(SettingsError):
    """The hand-over cannot be done (now); the log keeps its current key."""


async def rotate_key(
    db: Database, identity: LogIdentity, old: Signer, new: Signer, *, now: datetime
) -> HandOver:
    """Hand the log over from ``old`` (its current key) to ``new``; see the module docstring."""
    old_key, new_key = old.verifier(), new.verifier()
    if old_key.public_key != identity.key.public_key:
        raise RotationRefused("the configured audit key is not the log's current key")
    if new_key.public_key == old_key.public_key:
        raise RotationRefused("the new audit key is the current one: nothing to hand over")
    audit = AuditLog(db, old, identity.origin, checkpoint_delay=_NO_BACKGROUND_SIGNING)
    try:
        entry = AuditEntry(time=now, event=ROTATION_EVENT, target=new_key.key_string())
        receipt = await audit.append(entry)
    finally:
        await audit.close()
    checkpoint = Checkpoint(identity.origin, receipt.tree_size, receipt.root_hash)
    note = sign_note(checkpoint.to_text(), old, new).decode()
    async with db.session() as session:
        await repo.lock_sequencer(session)
        await _store_hand_over(session, checkpoint, note, now)
        if not await repo.hand_over(session, old_key.key_string(), new_key.key_string(), now):
            raise RotationRefused("the audit log was handed over meanwhile; nothing changed")
    return HandOver(receipt.index, receipt.tree_size, old_key, new_key)


async def _store_hand_over(
    session: AsyncSession, checkpoint: Checkpoint, note: str, now: datetime
) -> None:
    """Store the cosigned checkpoint (over an old-key-only one of the same tree, if any)."""
    latest = await repo.latest_checkpoint(session)
    if latest is not None and latest.size > checkpoint.size:
        raise RotationRefused(
            "the log grew and was signed past the rotation entry meanwhile: stop every "
            "gateway replica, then rotate again (the old key stays in force)"
        )
    await repo.add_checkpoint(session, checkpoint.size, checkpoint.root_hash, note, now)
    if not await repo.replace_note(session, checkpoint.size, checkpoint.root_hash, note):
        raise RotationRefused("the stored tree does not match the rotation's receipt")
