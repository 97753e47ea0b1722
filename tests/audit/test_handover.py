"""The log's identity on a real database, key hand-overs, and what verify makes of them.

SQLite and PostgreSQL: a log from before identities is adopted only by the key that
signed it; after a hand-over the old key neither signs nor verifies; a rotation entry
whose checkpoint the new key never cosigned is no hand-over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select, update

from gateway.audit import rotation
from gateway.audit.checkpoint import Checkpoint, sign_checkpoint
from gateway.audit.entry import AuditEntry
from gateway.audit.errors import VerificationError
from gateway.audit.identity import Configured, establish
from gateway.audit.keys import Signer
from gateway.audit.log import AuditLog
from gateway.audit.rotation import HandOver, RotationRefused, rotate_key
from gateway.audit.verify import ExportedCheckpoint, ExportedEntry, verify_export
from gateway.settings import SettingsError
from gateway.storage import StorageUnavailable
from gateway.storage.db import Database
from gateway.storage.models import AuditCheckpointRow, AuditIdentityRow
from tests.audit.logs import NOW, ORIGIN, SIGNER, sample
from tests.support.databases import database_url

NEW = Signer(ORIGIN, bytes(range(1, 33)))
CONFIGURED = Configured(ORIGIN, False, SIGNER.verifier().public_key)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as value:
        yield value


async def _grow(db: Database, signer: Signer, count: int) -> None:
    audit = AuditLog(db, signer, ORIGIN, checkpoint_delay=3600)
    try:
        for n in range(count):
            await audit.append(sample(n))
        await audit.checkpoint_now()
    finally:
        await audit.close()


async def _export(db: Database) -> tuple[list[ExportedEntry], list[ExportedCheckpoint]]:
    audit = AuditLog(db, SIGNER, ORIGIN)
    size = await audit.size()
    entries = [ExportedEntry(r.index, r.data) for r in await audit.entry_range(0, size)]
    return entries, await audit.export_checkpoints()


async def _rotated(url: str) -> tuple[Database, list[ExportedEntry], list[ExportedCheckpoint]]:
    db = Database(url)
    await db.upgrade()
    identity = await establish(db, CONFIGURED, now=NOW)
    await _grow(db, SIGNER, 5)
    await rotate_key(db, identity, SIGNER, NEW, now=NOW)
    await _grow(db, NEW, 3)
    return db, *await _export(db)


def test_old_key_neither_signs_nor_verifies_after_the_hand_over(url: str) -> None:
    async def scenario() -> None:
        db, entries, checkpoints = await _rotated(url)
        report = verify_export(entries, checkpoints, [SIGNER.verifier()], ORIGIN)
        assert report.hand_overs == 1
        assert report.epochs[0].last == 6  # 5 entries, the rotation entry: size 6
        stale = AuditLog(db, SIGNER, ORIGIN, checkpoint_delay=3600)
        receipt = await stale.append(sample(99))
        handed = "^the audit log was handed over to another key; restart$"
        with pytest.raises(StorageUnavailable, match=handed):
            await stale.checkpoint_for(receipt)  # the exchange's receipt path
        with pytest.raises(StorageUnavailable, match=handed):
            await stale.checkpoint_now()  # the background checkpointer's
        await stale.close()
        await db.dispose()
        # A checkpoint the old key signed past the hand-over is worth nothing.
        last = checkpoints[-1]
        body = Checkpoint.parse(last.note.decode().split("\n\n")[0] + "\n")
        forged = replace(last, note=sign_checkpoint(body, SIGNER))
        with pytest.raises(VerificationError, match="does not verify"):
            verify_export(entries, [*checkpoints[:-1], forged], [SIGNER.verifier()], ORIGIN)

    asyncio.run(scenario())


def test_a_rotation_never_cosigned_is_no_hand_over(url: str) -> None:
    async def scenario() -> None:
        db = Database(url)
        await db.upgrade()
        await establish(db, CONFIGURED, now=NOW)
        audit = AuditLog(db, SIGNER, ORIGIN, checkpoint_delay=3600)
        target = NEW.verifier().key_string()
        await audit.append(AuditEntry(time=NOW, event="key-rotation", target=target))
        await audit.append(sample(1))
        await audit.checkpoint_now()  # the old key alone: the hand-over never completed
        await audit.close()
        entries, checkpoints = await _export(db)
        await db.dispose()
        report = verify_export(entries, checkpoints, [SIGNER.verifier()], ORIGIN)
        assert report.hand_overs == 0
        assert report.void_rotations == (0,)

    asyncio.run(scenario())


def test_a_log_from_before_identities_is_adopted_by_its_own_key_only(url: str) -> None:
    async def scenario() -> None:
        db = Database(url)
        await db.upgrade()
        await _grow(db, SIGNER, 3)  # no identity stored: as written before migration 0010
        other = Configured("elsewhere.example/audit", False, NEW.verifier().public_key)
        with pytest.raises(SettingsError, match="did not sign this audit log's newest"):
            await establish(db, other, now=NOW)
        moved = replace(CONFIGURED, origin="new-host.example/audit")
        identity = await establish(db, moved, now=NOW)
        assert identity.origin == ORIGIN  # the log's own origin, not the new public_url's
        assert identity.first_key == identity.key == SIGNER.verifier()
        await db.dispose()

    asyncio.run(scenario())


def test_rotation_refuses_a_key_that_is_not_current_or_not_new(url: str) -> None:
    async def scenario() -> None:
        db = Database(url)
        await db.upgrade()
        identity = await establish(db, CONFIGURED, now=NOW)
        with pytest.raises(RotationRefused) as same:
            await rotate_key(db, identity, SIGNER, SIGNER, now=NOW)
        assert str(same.value) == "the new audit key is the current one: nothing to hand over"
        with pytest.raises(RotationRefused) as stranger:
            await rotate_key(db, identity, NEW, SIGNER, now=NOW)
        assert str(stranger.value) == "the configured audit key is not the log's current key"
        size = await AuditLog(db, SIGNER, ORIGIN).size()
        await db.dispose()
        assert size == 0  # nothing was appended

    asyncio.run(scenario())


def test_a_hand_over_says_where_and_records_when(url: str) -> None:
    async def scenario() -> None:
        db = Database(url)
        await db.upgrade()
        identity = await establish(db, CONFIGURED, now=NOW)
        await _grow(db, SIGNER, 5)
        done = await rotate_key(db, identity, SIGNER, NEW, now=NOW)
        async with db.session() as session:
            row = (await session.execute(select(AuditIdentityRow))).scalar_one()
        await db.dispose()
        assert done == HandOver(5, 6, SIGNER.verifier(), NEW.verifier())
        assert (row.key, row.rotated_at) == (NEW.verifier().key_string(), NOW)

    asyncio.run(scenario())


def test_a_rotation_from_a_key_handed_over_meanwhile_changes_nothing(url: str) -> None:
    """Two officers rotate from the same identity: the second finds the key moved on."""

    async def scenario() -> None:
        db = Database(url)
        await db.upgrade()
        identity = await establish(db, CONFIGURED, now=NOW)
        await rotate_key(db, identity, SIGNER, NEW, now=NOW)
        third = Signer(ORIGIN, bytes(range(2, 34)))
        with pytest.raises(RotationRefused) as late:
            await rotate_key(db, identity, SIGNER, third, now=NOW)
        async with db.session() as session:
            key = (await session.execute(select(AuditIdentityRow.key))).scalar_one()
        await db.dispose()
        assert str(late.value) == "the audit log was handed over meanwhile; nothing changed"
        assert key == NEW.verifier().key_string()

    asyncio.run(scenario())


def test_a_rotation_overtaken_by_a_replica_signing_past_it_is_refused(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another replica appends and signs between the rotation entry and its hand-over."""

    class Overtaken(AuditLog):
        async def close(self) -> None:
            await super().close()
            await _grow(self.db, SIGNER, 1)  # the replica, still on the old key

    async def scenario() -> None:
        db = Database(url)
        await db.upgrade()
        identity = await establish(db, CONFIGURED, now=NOW)
        monkeypatch.setattr(rotation, "AuditLog", Overtaken)
        with pytest.raises(RotationRefused) as overtaken:
            await rotate_key(db, identity, SIGNER, NEW, now=NOW)
        async with db.session() as session:
            key = (await session.execute(select(AuditIdentityRow.key))).scalar_one()
        await db.dispose()
        assert str(overtaken.value) == (
            "the log grew and was signed past the rotation entry meanwhile: stop every "
            "gateway replica, then rotate again (the old key stays in force)"
        )
        assert key == SIGNER.verifier().key_string()

    asyncio.run(scenario())


def test_a_stored_tree_other_than_the_receipts_is_no_hand_over(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checkpoint stored for the rotation's tree holds another root (the database was
    changed under the log): nothing is cosigned, the old key stays."""

    class Rewritten(AuditLog):
        async def close(self) -> None:
            await super().close()
            async with self.db.session() as session:
                await session.execute(update(AuditCheckpointRow).values(root_hash=bytes(32)))

    async def scenario() -> None:
        db = Database(url)
        await db.upgrade()
        identity = await establish(db, CONFIGURED, now=NOW)
        monkeypatch.setattr(rotation, "AuditLog", Rewritten)
        with pytest.raises(RotationRefused) as rewritten:
            await rotate_key(db, identity, SIGNER, NEW, now=NOW)
        async with db.session() as session:
            key = (await session.execute(select(AuditIdentityRow.key))).scalar_one()
        await db.dispose()
        assert str(rewritten.value) == "the stored tree does not match the rotation's receipt"
        assert key == SIGNER.verifier().key_string()

    asyncio.run(scenario())
