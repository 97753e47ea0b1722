"""Building the gateway's audit log from settings."""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.audit.identity import read_identity
from gateway.audit.keys import Verifier
from gateway.audit.log import AuditReader
from gateway.audit.wiring import (
    audit_origin,
    check_audit_identity,
    configured_identity,
    log_identity,
    open_audit_log,
    signer_from_key,
)
from gateway.settings import Settings, SettingsError, load_audit_key
from gateway.storage import StorageUnavailable
from gateway.storage.db import Database
from tests.audit.logs import sample

NOW = datetime(2026, 12, 2, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SLUIS_"):
            monkeypatch.delenv(name)


def test_dev_settings_give_an_ed25519_log(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, insecure_dev_mode=True, public_url="https://gw.example")

    async def opened() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
        await db.upgrade()
        log = await open_audit_log(db, settings, load_audit_key(settings), now=NOW)
        receipt = await log.append(sample(0))  # written to the database it was given
        await log.close()
        assert await AuditReader(db).size() == receipt.index + 1 == 1
        identity = await read_identity(db)
        await db.dispose()
        assert log.origin == audit_origin(settings) == "gw.example/audit"
        key = log.signer.verifier().key_string()
        assert Verifier.from_key_string(key).name == "gw.example/audit"
        assert identity is not None
        assert identity.first_key.key_string() == key

    asyncio.run(opened())


def test_an_explicit_origin_names_a_new_log(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, insecure_dev_mode=True, audit_origin="sluis.example/log")
    configured = configured_identity(settings, load_audit_key(settings))
    assert configured.origin == "sluis.example/log"
    assert configured.origin_fixed


def test_no_key_outside_dev_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError):
        load_audit_key(Settings(home=tmp_path))


def test_a_derived_origin_is_not_fixed_and_the_key_is_the_settings_key(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, insecure_dev_mode=True, public_url="https://gw.example:8443")
    key = load_audit_key(settings)
    configured = configured_identity(settings, key)
    assert (configured.origin, configured.origin_fixed) == ("gw.example:8443/audit", False)
    assert configured.public_key == key.public_key().public_bytes_raw()
    signer = signer_from_key(key, "sluis.example/audit")
    assert signer.verifier().name == "sluis.example/audit"
    assert signer.verifier().public_key == configured.public_key


def test_a_changed_public_url_keeps_the_origin_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = Settings(home=tmp_path, insecure_dev_mode=True, public_url="https://old.example")
    moved = Settings(home=tmp_path, insecure_dev_mode=True, public_url="https://new.example")
    key = load_audit_key(first)

    async def run() -> tuple[str, str]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
        await db.upgrade()
        try:
            created = await log_identity(db, first, key, now=NOW)
            assert not caplog.records  # a new log takes the origin: nothing to say
            kept = await log_identity(db, moved, key, now=NOW)
        finally:
            await db.dispose()
        return created.origin, kept.origin

    with caplog.at_level(logging.WARNING, logger="sluis.audit"):
        assert asyncio.run(run()) == ("old.example/audit", "old.example/audit")
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        (
            "sluis.audit",
            "public_url changed; the audit log keeps its origin 'old.example/audit' "
            "(fixed with the log)",
        )
    ]


def test_the_identity_is_checked_before_listening_migrating_only_if_asked(
    tmp_path: Path,
) -> None:
    settings = Settings(home=tmp_path, insecure_dev_mode=True, public_url="https://gw.example")
    unmigrated = settings.model_copy(update={"auto_migrate": False})
    with pytest.raises(StorageUnavailable):  # no tables: not migrated
        asyncio.run(check_audit_identity(unmigrated, now=NOW))
    identity = asyncio.run(check_audit_identity(settings, now=NOW))
    assert identity.origin == "gw.example/audit"
    assert (
        identity.first_key.key_string()
        == signer_from_key(load_audit_key(settings), "gw.example/audit").verifier().key_string()
    )
    again = asyncio.run(check_audit_identity(unmigrated, now=NOW))  # migrated by now
    assert again.first_key == identity.first_key
