"""Building the gateway's audit log from settings."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.audit.identity import read_identity
from gateway.audit.keys import Verifier
from gateway.audit.wiring import audit_origin, configured_identity, open_audit_log
from gateway.settings import Settings, SettingsError, load_audit_key
from gateway.storage.db import Database

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
        await log.close()
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
