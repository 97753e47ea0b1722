"""The ``sluis`` command line: participants, db, serve; one-line errors and exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from certs.store import CADirectory
from gateway.cli.main import app
from gateway.settings import ensure_dev_signing_key
from tests.support.server import signing_key

SLUIS = str(Path(sys.executable).with_name("sluis"))


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("SLUIS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SLUIS_HOME", str(tmp_path))
    # Admin changes are audited: the CLI signs with the gateway's audit key.
    monkeypatch.setenv("SLUIS_AUDIT_KEY_FILE", str(signing_key(tmp_path, "audit-key.pem")))
    return CliRunner()


def test_participants_round_trip(runner: CliRunner) -> None:
    added = runner.invoke(
        app,
        ["participants", "add", "EU.EORI.NL000000001", "--name", "Maker", "--role", "provider"],
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["participants", "list"])
    assert "EU.EORI.NL000000001" in listed.output
    suspended = runner.invoke(app, ["participants", "suspend", "EU.EORI.NL000000001"])
    assert "suspended" in suspended.output
    roles = runner.invoke(
        app, ["participants", "set-roles", "EU.EORI.NL000000001", "--role", "consumer"]
    )
    assert roles.exit_code == 0
    shown = runner.invoke(app, ["participants", "show", "EU.EORI.NL000000001"])
    assert "consumer" in shown.output
    assert "provider" not in shown.output
    grouped = runner.invoke(
        app, ["participants", "set-groups", "EU.EORI.NL000000001", "--group", "urn:group:makers"]
    )
    assert "urn:group:makers" in grouped.output
    bad = runner.invoke(
        app, ["participants", "set-groups", "EU.EORI.NL000000001", "--group", "not an iri"]
    )
    assert bad.exit_code == 1
    assert bad.output.startswith("sluis: error: groups.0")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["participants", "add", "nonsense", "--name", "x", "--role", "consumer"], "id:"),
        (["participants", "add", "NTRNL-12345678", "--name", "x", "--role", "king"], "roles"),
        (["participants", "show", "NTRNL-12345678"], "no participant NTRNL-12345678"),
        (["participants", "suspend", "NTRNL-12345678"], "no participant NTRNL-12345678"),
    ],
)
def test_participant_errors_are_one_line(runner: CliRunner, args: list[str], message: str) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0  # read-only commands make none
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("sluis: error: ")
    assert message in lines[0]


def test_duplicate_participant(runner: CliRunner) -> None:
    args = ["participants", "add", "NTRNL-12345678", "--name", "x", "--role", "consumer"]
    assert runner.invoke(app, args).exit_code == 0
    again = runner.invoke(app, args)
    assert again.exit_code == 1
    assert "already exists" in again.output


def test_db_upgrade_and_bad_config(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert (tmp_path / "sluis.db").exists()
    config = tmp_path / "bad.yaml"
    config.write_text("port: many\n")
    result = runner.invoke(app, ["--config", str(config), "db", "upgrade"])
    assert result.exit_code == 1
    assert result.output.startswith("sluis: error: invalid setting port")


def test_unreachable_database_is_one_line(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUIS_DATABASE_URL", "postgresql+asyncpg://nobody@127.0.0.1:1/none")
    result = runner.invoke(app, ["participants", "list"])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0
    assert result.output.startswith("sluis: error: database unavailable (migration failed")


def _serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SLUIS, "serve", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_serve_names_every_missing_setting_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUIS_")}
    env["SLUIS_HOME"] = str(tmp_path)
    done = _serve(env)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    for variable in ("SIGNING_KEY_FILE", "AUDIT_KEY_FILE", "TLS_CERT", "TLS_KEY", "TLS_CLIENT_CA"):
        assert f"SLUIS_{variable} " in done.stderr
    assert "SLUIS_TLS_CRL (CRL)" in done.stderr
    assert "sluis init" in done.stderr


def test_serve_refuses_a_generated_dev_key_outside_dev_mode(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUIS_")}
    env["SLUIS_HOME"] = str(tmp_path)
    pki = tmp_path / "pki"
    CADirectory.init(pki, name="t", key_type="ec-p256", now=datetime.now(UTC))
    env |= {
        "SLUIS_TLS_CERT": str(pki / "server.pem"),
        "SLUIS_TLS_KEY": str(pki / "server.key"),
        "SLUIS_TLS_CLIENT_CA": str(pki / "trust-bundle.pem"),
        "SLUIS_TLS_CRL": str(pki / "crl.pem"),
        "SLUIS_AUDIT_KEY_FILE": str(signing_key(tmp_path, "audit-key.pem")),
        "SLUIS_SIGNING_KEY_FILE": str(ensure_dev_signing_key(tmp_path / "dev")),
    }
    dev_key = _serve(env)
    assert dev_key.returncode == 1
    assert "generated dev key" in dev_key.stderr


def test_serve_in_dev_mode_still_needs_tls_material(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUIS_")}
    env["SLUIS_HOME"] = str(tmp_path)
    done = _serve(env, "--insecure-dev")
    assert done.returncode == 1
    assert "SLUIS_TLS_CLIENT_CA (client CA bundle)" in done.stderr
    assert "SIGNING_KEY" not in done.stderr  # dev mode makes its own keys


def test_clients_round_trip(runner: CliRunner, tmp_path: Path) -> None:
    pid = "NTRNL-12345678"
    assert (
        runner.invoke(
            app, ["participants", "add", pid, "--name", "x", "--role", "consumer"]
        ).exit_code
        == 0
    )
    added = runner.invoke(
        app, ["clients", "add", pid, "--auth-method", "tls_client_auth", "--scope", "dataset:a"]
    )
    assert added.exit_code == 0, added.output
    assert "dataset:a" in runner.invoke(app, ["clients", "list"]).output
    disabled = runner.invoke(app, ["clients", "disable", pid])
    assert "disabled" in disabled.output
    keyless = runner.invoke(
        app, ["clients", "set-keys", pid, "--jwks", str(tmp_path / "none.json")]
    )
    assert keyless.exit_code == 1
    assert keyless.output.startswith("sluis: error: cannot read")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["clients", "add", "NTRNL-12345678", "--auth-method", "secret"], "auth_method"),
        (["clients", "add", "NTRNL-12345678", "--auth-method", "private_key_jwt"], "jwks"),
        (["clients", "add", "NTRNL-12345678", "--auth-method", "tls_client_auth"], "register it"),
        (["clients", "disable", "NTRNL-12345678"], "no client NTRNL-12345678"),
    ],
)
def test_client_errors_are_one_line(runner: CliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert message in result.output
