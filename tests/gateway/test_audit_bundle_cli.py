"""``sluis audit export --format bundle`` and ranges, from the database and over the officer
API (a real gateway over mTLS, SQLite and PostgreSQL): the zip verifies with ``sluis audit
verify``, as the console's download does; a range beyond the log and a refused caller are
one-line errors.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli.main import app as cli
from tests.gateway.test_audit_officer_export import _tls
from tests.support.audit_site import OLD_URL, Site, first_key, make_changes, open_site
from tests.support.server import running_gateway


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
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


def _verified(runner: CliRunner, bundle: Path, site: Site) -> str:
    result = runner.invoke(cli, ["audit", "verify", str(bundle), "--key", first_key(site)])
    assert result.exit_code == 0, result.output
    return result.output


def test_bundles_and_ranges_from_the_database_and_the_api(runner: CliRunner, site: Site) -> None:
    with running_gateway(site.settings(public_url=OLD_URL)) as base:
        make_changes(site, base, ["Oost 1", "Oost 2", "Oost 3"])
        over_api = site.home / "api.zip"
        export = ["audit", "export", "--gateway", base, "--format", "bundle", "--start", "1"]
        done = runner.invoke(cli, [*export, "-o", str(over_api), *_tls(site, "officer", "--key")])
        assert done.exit_code == 0, done.output
        assert "ok: " in _verified(runner, over_api, site)
        refused = runner.invoke(cli, [*export, "-o", str(over_api), *_tls(site, "maker", "--key")])
        assert refused.exit_code == 1
        assert "403 urn:sluis:problem:role-required" in refused.output.strip()
        ranged = ["audit", "export", "--gateway", base, "--start", "1", "--end", "3"]
        lines = runner.invoke(cli, [*ranged, *_tls(site, "officer", "--key")])
        assert [json.loads(line)["index"] for line in lines.stdout.splitlines()] == [1, 2]

    env = {"SLUIS_DATABASE_URL": site.database}
    from_db = site.home / "db.zip"
    bundle = ["audit", "export", "--format", "bundle", "--start", "2", "--end", "3"]
    done = runner.invoke(cli, [*bundle, "-o", str(from_db)], env=env)
    assert done.exit_code == 0, done.output
    assert "ok: " in _verified(runner, from_db, site)
    ocsf = runner.invoke(cli, ["audit", "export", "-f", "ocsf", "--start", "3"], env=env)
    assert ocsf.exit_code == 0, ocsf.output
    assert json.loads(ocsf.stdout.splitlines()[0])["metadata"]["sequence"] == 3
    for args, message in [
        (bundle, "a bundle is a zip file: give --output FILE"),
        (["audit", "export", "--start", "99"], "the log holds"),
        ([*bundle, "--dir", str(site.home / "d")], "a range or bundle is one file"),
    ]:
        failed = runner.invoke(cli, args, env=env)
        assert failed.exit_code == 1, args
        assert message in failed.output, failed.output
