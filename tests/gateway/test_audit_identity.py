"""The audit log keeps its identity (origin and key) across configuration changes.

Real gateways over mTLS on SQLite and PostgreSQL: a changed ``public_url`` keeps the log's
origin (the export still verifies with the first key), a different audit key or origin is
refused at start-up with the command to rotate properly, and ``sluis audit rotate-key``
hands the log over to a new key, which ``sluis audit verify`` follows from the first key.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi import FastAPI
from typer.testing import CliRunner

from gateway.app import create_app
from gateway.audit.keys import Verifier
from gateway.cli.main import app as cli
from gateway.client import mtls_context
from gateway.settings import Settings, SettingsError
from gateway.storage.db import Database
from tests.support.databases import database_url
from tests.support.pki import ClientCert, Pki, write_key
from tests.support.registry import register_participants
from tests.support.server import gateway_settings, running_gateway

MAKER = "EU.EORI.NL000000001"
UNIVERSITY = "NTRNL-40000001"
OFFICER = "NTRNL-40000005"
OLD_URL = "https://old.example:8443"
NEW_URL = "https://new.example"
ORIGIN = "old.example:8443/audit"


@dataclass
class Site:
    pki: Pki
    home: Path
    database: str
    certs: dict[str, ClientCert]

    def settings(self, **overrides: Any) -> Settings:
        return gateway_settings(self.pki, self.home, self.database, **overrides)


async def _register(url: str) -> None:
    db = Database(url)
    await db.upgrade()
    await register_participants(
        db,
        [
            (MAKER, "Machine Maker BV", ["provider", "operator"]),
            (UNIVERSITY, "Universiteit Oost", ["consumer"]),
            (OFFICER, "Security Office", ["officer"]),
        ],
    )
    await db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    pki = Pki(tmp_path / "pki")
    certs = {
        "maker": pki.client("Machine Maker BV", MAKER, ["provider", "operator"]),
        "officer": pki.client("Security Office", OFFICER, ["officer"]),
    }
    with database_url(request.param, tmp_path) as url:
        asyncio.run(_register(url))
        yield Site(pki, tmp_path, url, certs)


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("SLUIS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SLUIS_HOME", str(tmp_path))
    return CliRunner()


def client(site: Site, base: str, who: str) -> httpx.Client:
    cert = site.certs[who]
    context = mtls_context(site.pki.bundle, cert.cert_path, cert.key_path)
    return httpx.Client(base_url=base, verify=context, timeout=30)


def make_changes(site: Site, base: str, names: list[str]) -> None:
    """Admin changes (each an audit entry), then wait until a checkpoint covers them all."""
    with client(site, base, "maker") as admin:
        for name in names:
            changed = admin.patch(f"/v1/admin/participants/{UNIVERSITY}", json={"name": name})
            assert changed.status_code == 200, changed.text
    with client(site, base, "officer") as officer:
        for _ in range(200):  # the checkpointer signs about half a second after new entries
            entries = officer.get("/v1/audit/entries", params={"limit": 1000}).json()["entries"]
            size = int(officer.get("/v1/audit/checkpoint").text.split("\n")[1])
            if size >= len(entries):
                return
            time.sleep(0.05)
    raise AssertionError("no checkpoint covered the new entries")


async def start(app: FastAPI) -> None:
    """Run the app's start-up and shut-down (what uvicorn's lifespan does)."""
    async with app.router.lifespan_context(app):
        pass


def public_key(path: Path) -> bytes:
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def first_key(site: Site) -> str:
    return Verifier(ORIGIN, public_key(site.home / "audit-key.pem")).key_string()


def export_and_verify(runner: CliRunner, site: Site, *args: str) -> tuple[int, str]:
    out = site.home / "export"
    env = {"SLUIS_DATABASE_URL": site.database}
    exported = runner.invoke(cli, ["audit", "export", "--dir", str(out)], env=env)
    assert exported.exit_code == 0, exported.output
    verified = runner.invoke(cli, ["audit", "verify", str(out), *args])
    return verified.exit_code, verified.output.strip()


def test_a_new_public_url_keeps_the_logs_origin(runner: CliRunner, site: Site) -> None:
    with running_gateway(site.settings(public_url=OLD_URL)) as base:
        make_changes(site, base, ["Oost 1", "Oost 2"])
    with running_gateway(site.settings(public_url=NEW_URL)) as base:
        make_changes(site, base, ["Oost 3"])
        with client(site, base, "officer") as officer:
            assert officer.get("/v1/audit/checkpoint").text.startswith(f"{ORIGIN}\n")
    code, output = export_and_verify(runner, site, "--key", first_key(site))
    assert code == 0, output
    assert output.startswith("ok: ")


def test_another_audit_key_is_refused_at_start(site: Site) -> None:
    with running_gateway(site.settings(public_url=OLD_URL)) as base:
        make_changes(site, base, ["Oost 1"])
    other = write_key(site.home / "other-audit-key.pem", ed25519.Ed25519PrivateKey.generate())
    app = create_app(site.settings(public_url=OLD_URL, audit_key_file=other))
    with pytest.raises(SettingsError, match="sluis audit rotate-key"):
        asyncio.run(start(app))


def test_sluis_serve_refuses_with_one_line(runner: CliRunner, site: Site) -> None:
    with running_gateway(site.settings(public_url=OLD_URL)) as base:
        make_changes(site, base, ["Oost 1"])
    other = write_key(site.home / "other-audit-key.pem", ed25519.Ed25519PrivateKey.generate())
    settings = site.settings(public_url=OLD_URL, audit_key_file=other)
    names = ["database_url", "port", "tls_cert", "tls_key", "tls_client_ca", "tls_crl"]
    names += ["signing_key_file", "audit_key_file", "public_url"]
    env = {f"SLUIS_{name.upper()}": str(getattr(settings, name)) for name in names}
    result = runner.invoke(cli, ["serve"], env=env)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("sluis: error: the configured audit key")
    assert "sluis audit rotate-key" in lines[0]


def test_an_explicit_origin_that_differs_is_refused(site: Site) -> None:
    with running_gateway(site.settings(public_url=OLD_URL)) as base:
        make_changes(site, base, ["Oost 1"])
    app = create_app(site.settings(public_url=OLD_URL, audit_origin="elsewhere.example/log"))
    with pytest.raises(SettingsError, match=f"origin is '{ORIGIN}'"):
        asyncio.run(start(app))
    same = create_app(site.settings(public_url=NEW_URL, audit_origin=ORIGIN))
    asyncio.run(start(same))


def test_rotate_key_hands_the_log_over(runner: CliRunner, site: Site) -> None:
    with running_gateway(site.settings(public_url=OLD_URL)) as base:
        make_changes(site, base, ["Oost 1", "Oost 2"])
    new = write_key(site.home / "new-audit-key.pem", ed25519.Ed25519PrivateKey.generate())
    old_env = {
        "SLUIS_DATABASE_URL": site.database,
        "SLUIS_AUDIT_KEY_FILE": str(site.home / "audit-key.pem"),
        "SLUIS_PUBLIC_URL": NEW_URL,  # the origin stays the log's own
    }
    rotated = runner.invoke(cli, ["audit", "rotate-key", "--new-key", str(new)], env=old_env)
    assert rotated.exit_code == 0, rotated.output
    new_key = Verifier(ORIGIN, public_key(new)).key_string()
    assert f"new key: {new_key}" in rotated.output
    again = runner.invoke(cli, ["audit", "rotate-key", "--new-key", str(new)], env=old_env)
    assert again.exit_code == 1
    assert "sluis audit rotate-key" in again.output  # the old key is no longer the log's

    with pytest.raises(SettingsError, match="not the key this audit log is signed with"):
        asyncio.run(start(create_app(site.settings(public_url=OLD_URL))))
    with running_gateway(site.settings(public_url=OLD_URL, audit_key_file=new)) as base:
        make_changes(site, base, ["Oost 3"])

    code, output = export_and_verify(runner, site, "--key", first_key(site))
    assert code == 0, output
    assert f"1 key hand-over(s) followed, now signed by {new_key}" in output
    code, output = export_and_verify(runner, site, "--key", new_key)
    assert code == 1
    assert "checkpoint 1 does not verify" in output
    shown = runner.invoke(cli, ["audit", "key", "--first"], env=old_env)
    assert shown.output.strip() == first_key(site)
