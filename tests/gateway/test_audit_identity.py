"""The audit log keeps its identity (origin and key) across configuration changes.

Real gateways over mTLS on SQLite and PostgreSQL: a changed ``public_url`` keeps the log's
origin (the export still verifies with the first key), a different audit key or origin is
refused at start-up with the command to rotate properly, and ``sluis audit rotate-key``
hands the log over to a new key, which ``sluis audit verify`` follows from the first key.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from typer.testing import CliRunner

from gateway.app import create_app
from gateway.audit.keys import Verifier
from gateway.cli.main import app as cli
from gateway.settings import SettingsError
from tests.support.audit_site import (
    NEW_URL,
    OLD_URL,
    ORIGIN,
    Site,
    client,
    first_key,
    make_changes,
    open_site,
    public_key,
    start,
)
from tests.support.pki import write_key
from tests.support.server import running_gateway


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    with open_site(request.param, tmp_path) as value:
        yield value


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("SLUIS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SLUIS_HOME", str(tmp_path))
    return CliRunner()


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
    current = runner.invoke(
        cli, ["audit", "key"], env={**old_env, "SLUIS_AUDIT_KEY_FILE": str(new)}
    )
    assert current.output.strip() == new_key
    stale = runner.invoke(cli, ["audit", "key"], env=old_env)
    assert stale.exit_code == 1
    assert "sluis audit rotate-key" in stale.output
