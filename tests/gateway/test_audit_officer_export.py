"""An officer exports the log over the API with their certificate and holds it live.

Real gateway over mTLS, SQLite and PostgreSQL: ``sluis audit export --gateway`` pages the
officer API (through a key hand-over), ``sluis audit verify --against-checkpoint URL``
fetches the live checkpoint and catches a truncated export; a non-officer is refused.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from typer.testing import CliRunner

from gateway.cli.main import app as cli
from tests.support.audit_site import OLD_URL, Site, first_key, make_changes, open_site
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
    monkeypatch.setenv("SLUIS_HOME", str(tmp_path / "cli-home"))
    return CliRunner()


def _tls(site: Site, who: str, key_option: str) -> list[str]:
    cert = site.certs[who]
    files = [cert.cert_path, key_option, cert.key_path, "--cacert", site.pki.bundle]
    return ["--cert", *map(str, files)]


def _truncate(directory: Path) -> int:
    """Keep what the first checkpoint covers: drop every later entry and checkpoint."""
    checkpoints = directory / "checkpoints.jsonl"
    first = checkpoints.read_text().splitlines()[0]
    checkpoints.write_text(first + "\n")
    keep = int(json.loads(first)["size"])
    entries = directory / "entries.jsonl"
    entries.write_text("\n".join(entries.read_text().splitlines()[:keep]) + "\n")
    return keep


def test_export_over_the_api_verifies_and_is_held_live(runner: CliRunner, site: Site) -> None:
    with running_gateway(site.settings(public_url=OLD_URL)) as base:
        make_changes(site, base, ["Oost 1", "Oost 2"])
    new = write_key(site.home / "new-audit-key.pem", ed25519.Ed25519PrivateKey.generate())
    env = {"SLUIS_DATABASE_URL": site.database}
    env["SLUIS_AUDIT_KEY_FILE"] = str(site.home / "audit-key.pem")
    rotated = runner.invoke(cli, ["audit", "rotate-key", "--new-key", str(new)], env=env)
    assert rotated.exit_code == 0, rotated.output

    with running_gateway(site.settings(public_url=OLD_URL, audit_key_file=new)) as base:
        make_changes(site, base, ["Oost 3", "Oost 4"])
        out = site.home / "api-export"
        export = ["audit", "export", "--gateway", base, "--dir", str(out)]
        exported = runner.invoke(cli, [*export, *_tls(site, "officer", "--key")])
        assert exported.exit_code == 0, exported.output

        verify = ["audit", "verify", str(out), "--key", first_key(site)]
        live = ["--against-checkpoint", base, *_tls(site, "officer", "--cert-key")]
        verified = runner.invoke(cli, [*verify, *live])
        assert verified.exit_code == 0, verified.output
        assert "1 key hand-over(s) followed" in verified.output

        kept = _truncate(out)  # up to the hand-over: still signed by the first key
        alone = runner.invoke(cli, verify)
        assert alone.exit_code == 0, alone.output  # on its own, it cannot tell
        truncated = runner.invoke(cli, [*verify, *live])
        assert truncated.exit_code == 1
        assert f"truncated: export ends at {kept} but checkpoint {base} of size" in (
            truncated.output
        )
        at_least = f"{base}/v1/audit/checkpoint?at_least={kept + 1}"
        live[1] = at_least  # the first checkpoint past the truncated export
        truncated = runner.invoke(cli, [*verify, *live])
        assert re.search(
            rf"checkpoint {re.escape(at_least)} of size \d+ > {kept}", truncated.output
        )

        refused = runner.invoke(cli, [*export, *_tls(site, "maker", "--key")])
        assert refused.exit_code == 1
        lines = refused.output.strip().splitlines()
        assert len(lines) == 1, refused.output
        assert "403" in lines[0]
        assert "role-required" in lines[0]
