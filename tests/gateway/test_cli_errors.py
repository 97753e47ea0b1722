"""Client-side mistakes as one line naming the thing and the fix, worded the same by
``sluis fetch`` and ``sluis agreements`` (issue 16), against the real gateway over mTLS."""

from __future__ import annotations

import socket
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli.main import app
from tests.gateway.test_sdk import RESEARCH, UNIVERSITY, World, _cli_env
from tests.gateway.test_sdk import world as world  # noqa: PLC0414 - the module's gateway fixture
from tests.support.pki import Pki

MARKETING = "https://w3id.org/dpv#Marketing"
runner = CliRunner()


def _entries(world: World) -> int:
    with sqlite3.connect(world.database) as db:
        return int(db.execute("SELECT count(*) FROM audit_entries").fetchone()[0])


def _fetch(env: dict[str, str], out: Path) -> tuple[int, str]:
    done = runner.invoke(
        app, ["fetch", "sensors", "-o", str(out)], env={**env, "SLUIS_CLIENT_ID": UNIVERSITY}
    )
    return done.exit_code, done.output


def _agreements(env: dict[str, str]) -> tuple[int, str]:
    done = runner.invoke(app, ["agreements", "list"], env=env)
    return done.exit_code, done.output


def _both(env: dict[str, str], tmp_path: Path) -> str:
    """The one line both commands print; they must print the same."""
    fetched, listed = _fetch(env, tmp_path / "x.csv"), _agreements(env)
    assert fetched[0] == listed[0] == 1, (fetched, listed)
    assert fetched[1] == listed[1]
    assert fetched[1].startswith("sluis: error: ")
    assert len(fetched[1].strip().splitlines()) == 1
    return fetched[1]


def test_fetch_checks_the_output_path_before_asking(world: World, tmp_path: Path) -> None:
    env = _cli_env(world, "university")
    runner.invoke(app, ["agreements", "request", "sensors", "--purpose", RESEARCH], env=env)
    before = _entries(world)
    code, output = _fetch(env, Path("/nonexistent/dir/x.csv"))
    assert code == 1
    assert output.startswith("sluis: error: --out /nonexistent/dir/x.csv: the directory")
    code, output = _fetch(env, tmp_path)
    assert "is a directory" in output
    assert _entries(world) == before  # no decision, no use spent, nothing logged


def test_a_rejected_request_exits_non_zero(world: World) -> None:
    env = _cli_env(world, "university")
    asked = runner.invoke(
        app, ["agreements", "request", "sensors-agg", "--purpose", MARKETING], env=env
    )
    assert asked.exit_code == 1, asked.output
    assert "rejected" in asked.output
    assert "sluis: error: agreement " in asked.output


@pytest.mark.parametrize("variable", ["SLUIS_CLIENT_CERT", "SLUIS_CLIENT_KEY", "SLUIS_CA_BUNDLE"])
def test_a_missing_tls_file_is_named(world: World, tmp_path: Path, variable: str) -> None:
    env = {**_cli_env(world, "university"), variable: str(tmp_path / "nope.pem")}
    line = _both(env, tmp_path)
    assert f"{tmp_path / 'nope.pem'} does not exist" in line


def test_a_key_that_does_not_match_the_certificate(world: World, tmp_path: Path) -> None:
    env = {**_cli_env(world, "university"), "SLUIS_CLIENT_KEY": str(world.certs["maker"].key_path)}
    assert "does not belong to the certificate" in _both(env, tmp_path)


def test_an_http_url_is_not_a_token_error(world: World, tmp_path: Path) -> None:
    plain = world.url.replace("https://", "http://")
    line = _both({**_cli_env(world, "university"), "SLUIS_GATEWAY_URL": plain}, tmp_path)
    assert "give https://host:port" in line
    assert "token" not in line


def test_a_wrong_port_says_nothing_answers(world: World, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"https://127.0.0.1:{port}"
    line = _both({**_cli_env(world, "university"), "SLUIS_GATEWAY_URL": url}, tmp_path)
    assert f"nothing answers at {url}" in line


def test_an_expired_certificate_is_said_before_connecting(world: World, tmp_path: Path) -> None:
    old = world.pki.client(
        "Old Lab", "NTRNL-40000009", now=datetime.now(UTC) - timedelta(days=40), days=30
    )
    env = {
        **_cli_env(world, "university"),
        "SLUIS_CLIENT_CERT": str(old.cert_path),
        "SLUIS_CLIENT_KEY": str(old.key_path),
    }
    line = _both(env, tmp_path)
    assert f"certificate {old.cert_path} expired on" in line
    assert "disconnected" not in line.lower()


def test_a_certificate_from_an_unknown_ca_is_named_by_the_alert(
    world: World, tmp_path: Path
) -> None:
    foreign = Pki(tmp_path / "other-pki").client("TU Delft", UNIVERSITY)
    env = {
        **_cli_env(world, "university"),
        "SLUIS_CLIENT_CERT": str(foreign.cert_path),
        "SLUIS_CLIENT_KEY": str(foreign.key_path),
    }
    line = _both(env, tmp_path)
    assert f"the gateway at {world.url} refused the TLS handshake: your certificate is not " in line
    assert "issued by a CA it trusts" in line
    assert "may be" not in line  # the alert says which, no guessing
