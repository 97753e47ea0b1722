"""Habits of a good CLI (issue 16): --json on list and show, full ids, tables that wrap."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli.main import app
from gateway.settings import load_settings
from tests.support.server import signing_key

MAKER = "EU.EORI.NL000000001"
POLICY = """
uid: urn:sluis:policy:maker:sensors
type: Offer
target: urn:sluis:dataset:sensors
permissions:
  - action: read
    assignee: urn:sluis:participant:NTRNL-40000001
"""


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("SLUIS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SLUIS_HOME", str(tmp_path))
    monkeypatch.setenv("SLUIS_AUDIT_KEY_FILE", str(signing_key(tmp_path, "audit-key.pem")))
    return CliRunner()


def _ok(runner: CliRunner, *args: str, columns: int = 60) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.output


def test_list_and_show_commands_speak_json(runner: CliRunner, tmp_path: Path) -> None:
    _ok(runner, "participants", "add", MAKER, "--name", "Maker", "--role", "provider")
    _ok(runner, "clients", "add", MAKER, "--auth-method", "tls_client_auth",
        "--scope", "dataset:sensors")  # fmt: skip
    assert json.loads(_ok(runner, "participants", "list", "--json"))[0]["id"] == MAKER
    assert json.loads(_ok(runner, "participants", "show", MAKER, "--json"))["roles"] == ["provider"]
    assert json.loads(_ok(runner, "clients", "list", "--json"))[0]["scopes"] == ["dataset:sensors"]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.csv").write_text("machine\nX200\n")
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "sensors.yaml").write_text(
        "id: sensors\ntitle: Sensors\nprovider: EU.EORI.NL000000001\npolicy: policy.yaml\n"
        f"connector: {{type: files, root: {tmp_path / 'data'}, path: x.csv, format: csv}}\n"
    )
    _ok(runner, "datasets", "add", str(tmp_path / "sensors.yaml"))
    datasets = json.loads(_ok(runner, "datasets", "list", "--json"))
    policy_hash = datasets[0]["policy_hash"]
    assert len(policy_hash) == len("sha256:") + 64
    assert "…" not in _ok(runner, "datasets", "list")  # 60 columns: cells wrap, nothing cut
    assert policy_hash in _ok(runner, "datasets", "list", columns=250)  # the full hash


@pytest.mark.parametrize(
    "args",
    [
        ["participants", "list"],
        ["participants", "show", MAKER],
        ["clients", "list"],
        ["datasets", "list"],
        ["audit", "export"],
    ],
)
def test_a_read_only_command_creates_no_database(
    runner: CliRunner, tmp_path: Path, args: list[str]
) -> None:
    """From the wrong directory or home: say so, instead of an empty new database and table."""
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"sluis: error: no database at {tmp_path / 'sluis.db'}")
    assert not (tmp_path / "sluis.db").exists()


def test_the_default_home_is_per_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not ./.sluis of whatever directory a command runs in; SLUIS_HOME still overrides it."""
    for name in list(os.environ):
        if name.startswith("SLUIS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.chdir(tmp_path)
    assert load_settings().home == tmp_path / "user" / ".sluis"
    monkeypatch.setenv("SLUIS_HOME", str(tmp_path / "elsewhere"))
    assert load_settings().home == tmp_path / "elsewhere"


def _spec(tmp_path: Path, dataset: str, provider: str, connector: str) -> Path:
    (tmp_path / f"{dataset}.policy.yaml").write_text(
        POLICY.replace("dataset:sensors", f"dataset:{dataset}")
    )
    spec = tmp_path / f"{dataset}.yaml"
    spec.write_text(
        f"id: {dataset}\ntitle: T\nprovider: {provider}\npolicy: {dataset}.policy.yaml\n"
        f"connector: {connector}\n"
    )
    return spec


@pytest.mark.parametrize(
    ("provider", "connector", "message"),
    [
        (MAKER, "{type: filez, root: ROOT, path: x.csv, format: csv}", "no connector kind 'filez'"),
        (MAKER, "{type: http, base_url: 'https://example.org', path: /x}", "connector.columns"),
        (MAKER, "{type: files, root: ROOT, path: x.csv, format: csv, delimiter: ';'}",
         "connector.delimiter is not a files setting"),
        (MAKER, "{type: files, root: ROOT, path: nope.csv, format: csv}",
         "no such file under the root: 'nope.csv'"),
        (MAKER, "{type: files, root: ROOT, path: ../x.csv, format: csv}", "'..' is refused"),
        ("NTRNL-40000001", "{type: files, root: ROOT, path: x.csv, format: csv}",
         "NTRNL-40000001 does not have the provider role"),
    ],
)  # fmt: skip
def test_datasets_add_refuses_at_registration(
    runner: CliRunner, tmp_path: Path, provider: str, connector: str, message: str
) -> None:
    _ok(runner, "participants", "add", MAKER, "--name", "Maker", "--role", "provider")
    _ok(runner, "participants", "add", "NTRNL-40000001", "--name", "Uni", "--role", "consumer")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.csv").write_text("machine\nX200\n")
    connector = connector.replace("ROOT", str(tmp_path / "data"))
    result = runner.invoke(
        app, ["datasets", "add", str(_spec(tmp_path, "d1", provider, connector))]
    )
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1, result.output
    assert message in result.output
    assert json.loads(_ok(runner, "datasets", "list", "--json")) == []


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("temp_c,greater,80", "unknown operator 'greater'; use one of eq, ne, lt"),
        ("temp_c", "use column,op,value"),
    ],
)
def test_a_bad_where_is_one_line_before_anything_else(
    runner: CliRunner, tmp_path: Path, where: str, message: str
) -> None:
    result = runner.invoke(
        app,
        ["fetch", "d", "-o", str(tmp_path / "x.csv"), "--where", where, "--gateway",
         "https://127.0.0.1:1", "--ca", "x", "--cert", "x", "--key", "x", "--client-id", "x"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.output.startswith(f"sluis: error: where={where!r}: {message}")
    assert "validation error" not in result.output
    assert result.output.count("\n") == 1


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["datasets", "add", "FILE"], "is not UTF-8 text"),
        (["clients", "add", MAKER, "--auth-method", "private_key_jwt", "--jwks", "FILE"],
         "is not UTF-8 text"),
    ],
)  # fmt: skip
def test_a_file_that_is_not_utf8_is_one_line(
    runner: CliRunner, tmp_path: Path, command: list[str], message: str
) -> None:
    _ok(runner, "participants", "add", MAKER, "--name", "Maker", "--role", "provider")
    bad = tmp_path / "bad"
    bad.write_bytes(b"id: d\xff\n")
    result = runner.invoke(app, [str(bad) if part == "FILE" else part for part in command])
    assert result.exit_code == 1, result.output
    assert result.output == f"sluis: error: {bad}: {message}\n"
