"""A database URL an operator gets wrong is one line that says the fix (issue 16)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli.main import app
from tests.support.databases import postgres_database


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("SLUIS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SLUIS_HOME", str(tmp_path))
    return CliRunner()


def _one_line(runner: CliRunner, url: str) -> str:
    result = runner.invoke(app, ["participants", "list"], env={"SLUIS_DATABASE_URL": url})
    assert result.exit_code == 1, result.output
    assert result.output.strip().count("\n") == 0, result.output
    assert result.output.startswith("sluis: error: ")
    return result.output


@pytest.mark.parametrize(
    ("url", "fix"),
    [
        ("postgres://u@db/sluis", "write postgres:// as postgresql+asyncpg://"),
        ("postgresql://u@db/sluis", "write postgresql:// as postgresql+asyncpg://"),
        ("sqlite:///var/sluis.db", "write sqlite:// as sqlite+aiosqlite://"),
        ("mysql://u@db/sluis", "use postgresql+asyncpg://... or sqlite+aiosqlite:///..."),
    ],
)
def test_a_database_url_with_another_driver_says_which_to_use(
    runner: CliRunner, url: str, fix: str
) -> None:
    assert fix in _one_line(runner, url)


def test_a_postgresql_database_that_does_not_exist_is_named(runner: CliRunner) -> None:
    with postgres_database() as url:  # the server is there (else this skips, saying so)
        missing = url + "_missing"
        name = missing.rsplit("/", 1)[1]
        line = _one_line(runner, missing)
    assert f"PostgreSQL database '{name}' does not exist: create it (createdb {name})" in line
