"""Building the gateway's audit log from settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.audit.keys import Verifier
from gateway.audit.wiring import audit_origin, build_audit_log
from gateway.settings import Settings, SettingsError
from gateway.storage.db import Database


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SLUIS_"):
            monkeypatch.delenv(name)


def test_dev_settings_give_an_ed25519_log(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, insecure_dev_mode=True, public_url="https://gw.example")
    log = build_audit_log(Database("sqlite+aiosqlite://"), settings)
    assert log.origin == audit_origin(settings) == "gw.example/audit"
    key = log.signer.verifier().key_string()
    assert Verifier.from_key_string(key).name == "gw.example/audit"


def test_no_key_outside_dev_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError):
        build_audit_log(Database("sqlite+aiosqlite://"), Settings(home=tmp_path))
