"""`sluis certs` through typer's CliRunner: outputs, exit codes, one-line failures."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from certs import CADirectory, load_pem_chain
from gateway.cli.certs_cmd import app

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated SLUIS_HOME with no passphrase set; cwd is tmp_path."""
    monkeypatch.setenv("SLUIS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SLUIS_CA_PASSPHRASE", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


def _ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _fails(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sluis: error: ")
    return lines[0]


def _issue(out: Path, org_id: str = "EU.EORI.NL000000001") -> str:
    return _ok("issue", "--org-id", org_id, "--org-name", "Acme", "--role", "consumer",
               "--role", "provider", "--out", str(out))  # fmt: skip


def test_init_issue_list_show_revoke(home: Path, tmp_path: Path) -> None:
    _ok("init", "--key-type", "ed25519", "--server-name", "gw.example", "--server-ip", "10.0.0.1")
    assert (home / "pki" / "trust-bundle.pem").exists()
    output = _issue(tmp_path / "out")
    serial = output.split("serial: ")[1].split()[0]
    assert "thumbprint (x5t#S256): " in output
    pem = tmp_path / "out" / "eu-eori-nl000000001.pem"
    assert pem.exists()
    assert serial == f"{load_pem_chain(pem.read_bytes())[0].serial_number:x}"
    shown = _ok("show", str(pem))
    assert "unverified" in shown
    assert "organization_id: EU.EORI.NL000000001" in shown
    assert "roles: consumer, provider" in shown
    assert serial[:8] in _ok("list")
    _ok("revoke", serial, "--reason", "keyCompromise")
    assert "already revoked" in _fails("revoke", "--cert", str(pem))
    (record,) = CADirectory(home / "pki").list_issued()
    assert record.reason == "keyCompromise"
    assert "CRL re-signed" in _ok("crl", "--days", "3")


def test_revoke_by_certificate_file(home: Path, tmp_path: Path) -> None:
    _ok("init", "--dir", str(tmp_path / "ca"))
    _ok("issue", "--org-id", "NTRNL-12345678", "--org-name", "Beta", "--role", "officer",
        "--out", str(tmp_path), "--dir", str(tmp_path / "ca"))  # fmt: skip
    _ok("revoke", "--cert", str(tmp_path / "ntrnl-12345678.pem"), "--dir", str(tmp_path / "ca"))
    (record,) = CADirectory(tmp_path / "ca").list_issued()
    assert record.status == "revoked"
    assert not (home / "pki").exists()


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["issue", "--org-id", "ACME", "--org-name", "A", "--role", "consumer"], "organisation"),
        (["issue", "--org-id", "NTRNL-1", "--org-name", "A", "--role", "king"], "roles"),
        (["revoke", "not-hex"], "hexadecimal"),
        (["revoke", "abc", "--reason", "boredom"], "--reason"),
        (["revoke"], "exactly one"),
        (["revoke", "abcdef"], "not issued"),
        (["init", "--key-type", "rsa"], "--key-type"),
        (["show", "missing.pem"], "cannot read"),
        (["list", "--dir", "nowhere"], "sluis certs init"),
    ],
)
@pytest.mark.usefixtures("home")
def test_bad_input_is_one_line_and_non_zero(args: list[str], reason: str) -> None:
    _ok("init")
    assert reason in _fails(*args)


@pytest.mark.usefixtures("home")
def test_init_twice_fails() -> None:
    _ok("init")
    assert "already exists" in _fails("init")


def test_show_refuses_a_non_participant_certificate(home: Path) -> None:
    _ok("init")
    assert "organizationIdentifier" in _fails("show", str(home / "pki" / "server.pem"))


@pytest.mark.usefixtures("home")
def test_issue_with_csr(tmp_path: Path) -> None:
    _ok("init")
    csr = tmp_path / "req.csr"
    csr.write_bytes(b"garbage")
    assert "signing request" in _fails(
        "issue", "--org-id", "NTRNL-1", "--org-name", "A", "--role", "consumer", "--csr", str(csr)
    )


@pytest.mark.usefixtures("home")
def test_no_key_material_in_output(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init"])
    output = result.output + _issue(tmp_path)
    assert "PRIVATE KEY" not in output
