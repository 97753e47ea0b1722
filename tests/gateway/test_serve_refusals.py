"""``sluis serve`` says what stops it before the start-up runs (issue 16)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from gateway import server
from gateway.app import create_app
from gateway.settings import SettingsError
from tests.support.pki import Pki
from tests.support.server import gateway_settings


def test_a_missing_crl_file_stops_the_start_naming_it(tmp_path: Path) -> None:
    """Started anyway, every certificate would be refused (crl-unavailable) one by one."""
    pki = Pki(tmp_path / "pki")
    missing = tmp_path / "nowhere" / "crl.pem"
    settings = gateway_settings(pki, tmp_path, f"sqlite+aiosqlite:///{tmp_path}/s.db",
                                tls_crl=missing)  # fmt: skip
    with pytest.raises(SettingsError, match=f"CRL file {missing} does not exist"):
        create_app(settings)


def test_a_busy_port_is_said_before_the_start_up(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        pki = Pki(tmp_path / "pki")
        settings = gateway_settings(
            pki, tmp_path, f"sqlite+aiosqlite:///{tmp_path}/s.db", port=port
        )
        with pytest.raises(SettingsError, match=f"127.0.0.1:{port} is in use by another process"):
            server.serve(settings)
    assert not (tmp_path / "s.db").exists()  # refused before anything was opened
