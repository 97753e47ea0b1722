"""Issue 18: the log's identity, reconciled with the settings at every start.

``reconcile`` is pure: each contradiction's sentence exactly, and which stored key counts
(the current one, not the first). ``establish`` and ``read_identity`` on SQLite: what a new
log stores, what a second start keeps, and the adopted log's refusal with its size.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from gateway.audit.identity import (
    ROTATE_HINT,
    Configured,
    LogIdentity,
    _session,
    establish,
    read_identity,
    reconcile,
)
from gateway.audit.keys import Verifier
from gateway.settings import SettingsError
from gateway.storage import StorageUnavailable
from gateway.storage.db import Database
from gateway.storage.models import AuditIdentityRow
from tests.audit.logs import NOW, ORIGIN, SIGNER
from tests.audit.test_handover import NEW, _grow

OLD_KEY = SIGNER.verifier().public_key
NEW_KEY = NEW.verifier().public_key
STORED = LogIdentity(ORIGIN, SIGNER.verifier(), SIGNER.verifier(), NOW)


def _refusal(stored: LogIdentity, configured: Configured) -> str:
    with pytest.raises(SettingsError) as caught:
        reconcile(stored, configured)
    return str(caught.value)


def _wrong_key(configured_key: bytes, signed_with: Verifier) -> str:
    mine = Verifier(ORIGIN, configured_key).key_id.hex()
    return (
        f"the configured audit key (key ID {mine}) is not the key this audit log is signed "
        f"with ({signed_with.key_string()}): {ROTATE_HINT}"
    )


def test_what_agrees_with_the_stored_identity_passes() -> None:
    reconcile(STORED, Configured(ORIGIN, True, OLD_KEY))
    reconcile(STORED, Configured(ORIGIN, False, OLD_KEY))
    # A derived origin (a new public_url) never moves the log's.
    reconcile(STORED, Configured("new-host.example/audit", False, OLD_KEY))


def test_an_explicit_origin_that_differs_is_refused() -> None:
    assert _refusal(STORED, Configured("other.example/audit", True, OLD_KEY)) == (
        "audit_origin is 'other.example/audit' but this audit log's origin is "
        "'sluis.example/audit', fixed when the log was created: set it to that or unset it"
    )
    # The origin is named first, whatever the key.
    assert _refusal(STORED, Configured("other.example/audit", True, NEW_KEY)).startswith(
        "audit_origin is 'other.example/audit'"
    )


def test_another_key_is_refused_with_its_key_id_under_the_log_s_origin() -> None:
    assert _refusal(STORED, Configured(ORIGIN, False, NEW_KEY)) == _wrong_key(
        NEW_KEY, SIGNER.verifier()
    )
    # The key ID is the one the key would have in this log (its origin), not under the
    # origin a new public_url derives.
    moved = Configured("new-host.example/audit", False, NEW_KEY)
    assert _refusal(STORED, moved) == _wrong_key(NEW_KEY, SIGNER.verifier())


def test_the_current_key_counts_not_the_first() -> None:
    handed_over = LogIdentity(ORIGIN, SIGNER.verifier(), NEW.verifier(), NOW)
    reconcile(handed_over, Configured(ORIGIN, True, NEW_KEY))
    assert _refusal(handed_over, Configured(ORIGIN, True, OLD_KEY)) == _wrong_key(
        OLD_KEY, NEW.verifier()
    )


def _db(tmp_path: Path) -> Database:
    return Database(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")


def test_a_new_log_stores_the_configured_identity_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        db = _db(tmp_path)
        await db.upgrade()
        assert await read_identity(db) is None
        configured = Configured("fresh.example/audit", False, OLD_KEY)
        identity = await establish(db, configured, now=NOW)
        expected = Verifier("fresh.example/audit", OLD_KEY)
        assert identity.origin == "fresh.example/audit"
        assert identity.first_key == identity.key == expected
        assert identity.created_at.replace(tzinfo=NOW.tzinfo) == NOW
        assert await read_identity(db) == identity
        # A second start, later and from another public_url, keeps what was stored.
        moved = replace(configured, origin="moved.example/audit")
        again = await establish(db, moved, now=NOW + timedelta(days=1))
        assert again == identity
        with pytest.raises(SettingsError) as caught:
            await establish(db, Configured("fresh.example/audit", True, NEW_KEY), now=NOW)
        assert str(caught.value).startswith("the configured audit key (key ID ")
        assert await read_identity(db) == identity
        await db.dispose()

    asyncio.run(scenario())


def test_an_adopted_log_names_its_newest_checkpoint(tmp_path: Path) -> None:
    async def scenario() -> None:
        db = _db(tmp_path)
        await db.upgrade()
        await _grow(db, SIGNER, 3)
        await _grow(db, SIGNER, 2)  # the newest checkpoint: 5 entries
        other = Configured(ORIGIN, False, NEW_KEY)
        with pytest.raises(SettingsError) as caught:
            await establish(db, other, now=NOW)
        assert str(caught.value) == (
            "the configured audit key did not sign this audit log's newest checkpoint "
            f"(of size 5): {ROTATE_HINT}"
        )
        assert await read_identity(db) is None  # nothing stored on a refusal
        identity = await establish(db, Configured("x.example/audit", False, OLD_KEY), now=NOW)
        assert (identity.origin, identity.key) == (ORIGIN, SIGNER.verifier())
        await db.dispose()

    asyncio.run(scenario())


def test_an_integrity_error_in_the_identity_s_transaction_is_storage_unavailable(
    tmp_path: Path,
) -> None:
    """An integrity error while the identity is read or stored fails closed, as
    StorageUnavailable naming the audit store and the database's own words."""

    async def scenario() -> None:
        db = _db(tmp_path)
        await db.upgrade()
        with pytest.raises(StorageUnavailable) as caught:
            async with _session(db) as session:
                await session.execute(insert(AuditIdentityRow).values(id=1))
        assert isinstance(caught.value.__cause__, IntegrityError)
        assert str(caught.value).startswith(
            "audit store: (sqlite3.IntegrityError) NOT NULL constraint failed: audit_identity."
        )
        assert await read_identity(db) is None  # rolled back
        await db.dispose()

    asyncio.run(scenario())
