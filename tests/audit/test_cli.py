"""``sluis audit`` export, prove and offline verify, and what tampering does to verify."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gateway.audit.encoding import encode_base64
from gateway.audit.keys import Signer
from gateway.cli import audit_cmd
from gateway.cli.context import CliState
from tests.audit.logs import SIGNER, opened, sample
from tests.support.databases import database_url

KEY = SIGNER.verifier().key_string()
OTHER_KEY = Signer("other.example/log", bytes(32)).verifier().key_string()

cli = typer.Typer()
cli.add_typer(audit_cmd.app, name="audit")


@cli.callback()
def _root(ctx: typer.Context) -> None:
    ctx.obj = CliState()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as value:
        yield value


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("SLUIS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SLUIS_HOME", str(tmp_path / "home"))
    return CliRunner()


async def _fill(url: str, count: int = 21) -> None:
    async with opened(url, sign_batches=False) as log:
        for n in range(count):
            await log.append(sample(n))
            if n in {0, 4, 12, count - 1}:
                await log.checkpoint_now()


def _export(runner: CliRunner, url: str, directory: Path) -> None:
    asyncio.run(_fill(url))
    result = runner.invoke(
        cli, ["audit", "export", "--dir", str(directory)], env={"SLUIS_DATABASE_URL": url}
    )
    assert result.exit_code == 0, result.output


def _verify(runner: CliRunner, directory: Path, *keys: str) -> tuple[int, str]:
    args = ["audit", "verify", str(directory)]
    for key in keys or (KEY,):
        args += ["--key", key]
    result = runner.invoke(cli, args)
    return result.exit_code, result.output.strip()


def test_export_then_verify(runner: CliRunner, url: str, tmp_path: Path) -> None:
    out = tmp_path / "export"
    _export(runner, url, out)
    code, output = _verify(runner, out)
    assert code == 0, output
    # 4 checkpoints signed here, and maybe more by the background checkpointer meanwhile
    assert re.match(r"ok: 21 entries, [4-9] checkpoints; latest size 21", output), output
    lines = (out / "entries.jsonl").read_text().splitlines()
    assert [json.loads(line)["index"] for line in lines] == list(range(21))
    code, output = _verify(runner, out, KEY, OTHER_KEY)  # a note verifies with any known key
    assert code == 0, output


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines))


@pytest.fixture
def exported(runner: CliRunner, tmp_path: Path) -> Path:
    out = tmp_path / "export"
    with database_url("sqlite", tmp_path) as url:
        _export(runner, url, out)
    return out


def _tamper_entry(out: Path) -> None:
    lines = _lines(out / "entries.jsonl")
    lines[7] = lines[7].replace('"permit"', '"deny"')
    _write(out / "entries.jsonl", lines)


def _drop_entry(out: Path) -> None:
    lines = _lines(out / "entries.jsonl")
    del lines[3]
    _write(out / "entries.jsonl", lines)


def _truncate(out: Path) -> None:
    _write(out / "entries.jsonl", _lines(out / "entries.jsonl")[:-1])


def _tamper_signature(out: Path) -> None:
    lines = _lines(out / "checkpoints.jsonl")
    record = json.loads(lines[1])
    text, _, sig = record["note"].rpartition(" ")
    record["note"] = f"{text} {sig[:10]}{'B' if sig[10] == 'A' else 'A'}{sig[11:]}"
    lines[1] = json.dumps(record)
    _write(out / "checkpoints.jsonl", lines)


def _forge_consistency(out: Path) -> None:
    lines = _lines(out / "checkpoints.jsonl")
    record = json.loads(lines[2])
    record["consistency"][0] = encode_base64(bytes(32))
    lines[2] = json.dumps(record)
    _write(out / "checkpoints.jsonl", lines)


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (_tamper_entry, r"do not rebuild the signed root"),
        (_drop_entry, r"entry 3 of the export has index 4"),
        (_truncate, r"the latest checkpoint covers 21 entries, the export holds 20"),
        (_tamper_signature, r"checkpoint 2 does not verify"),
        # the background checkpointer may sign between the test's own checkpoints, so the
        # sizes of checkpoints 2 and 3 depend on the machine's load; the failure does not
        (_forge_consistency, r"checkpoint 3 \(size \d+\) is not consistent with size \d+"),
    ],
)
def test_tampering_fails_verify_with_one_line(
    runner: CliRunner, exported: Path, tamper: object, message: str
) -> None:
    assert callable(tamper)
    tamper(exported)
    code, output = _verify(runner, exported)
    assert code == 1
    assert len(output.splitlines()) == 1, output
    assert output.startswith("sluis: error: verification failed:")
    assert re.search(message, output), output


def test_verify_refuses_the_wrong_key(runner: CliRunner, exported: Path) -> None:
    code, output = _verify(runner, exported, OTHER_KEY)
    assert code == 1
    assert "checkpoint 1 does not verify: no signature by a known key" in output


def test_prove_prints_a_verifiable_bundle(runner: CliRunner, tmp_path: Path) -> None:
    with database_url("sqlite", tmp_path) as url:
        asyncio.run(_fill(url))
        env = {"SLUIS_DATABASE_URL": url}
        proved = runner.invoke(cli, ["audit", "prove", "9"], env=env)
        assert proved.exit_code == 0, proved.output
        missing = runner.invoke(cli, ["audit", "prove", "21"], env=env)
    assert missing.exit_code == 1
    assert "no signed checkpoint includes entry 21" in missing.output
    bundle = tmp_path / "proof.json"
    bundle.write_text(proved.output)
    checked = runner.invoke(cli, ["audit", "verify-proof", str(bundle), "--key", KEY])
    assert checked.exit_code == 0, checked.output
    assert "entry 9 is in the tree of 21" in checked.output
    data = json.loads(proved.output)
    data["entry"]["request_id"] = "req-forged"
    bundle.write_text(json.dumps(data))
    forged = runner.invoke(cli, ["audit", "verify-proof", str(bundle), "--key", KEY])
    assert forged.exit_code == 1
    assert "the entry does not hash to the leaf hash" in forged.output


@pytest.mark.parametrize("fmt", ["ocsf", "syslog"])
def test_siem_formats_carry_the_index(runner: CliRunner, tmp_path: Path, fmt: str) -> None:
    with database_url("sqlite", tmp_path) as url:
        asyncio.run(_fill(url, 5))
        result = runner.invoke(
            cli, ["audit", "export", "--format", fmt], env={"SLUIS_DATABASE_URL": url}
        )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 5
    if fmt == "ocsf":
        records = [json.loads(line) for line in lines]
        assert [r["metadata"]["sequence"] for r in records] == list(range(5))
        assert records[0]["status_id"] == 2  # sample 0 is a denial
        assert records[1]["class_uid"] == 6003
        assert records[1]["time"] == 1_795_780_800_000
    else:
        assert lines[0].startswith("<108>1 2026-11-27T12:00:00.000000Z - sluis - access-decision ")
        assert '[sluis@32473 index="3" event="access-decision"] {"actor"' in lines[3]


def test_unavailable_database_is_one_line(runner: CliRunner) -> None:
    result = runner.invoke(
        cli,
        ["audit", "export"],
        env={"SLUIS_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none"},
    )
    assert result.exit_code == 1
    assert result.output.startswith("sluis: error: database unavailable")


def test_export_says_what_it_wrote(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "export"
    with database_url("sqlite", tmp_path) as url:
        asyncio.run(_fill(url))
        result = runner.invoke(
            cli, ["audit", "export", "--dir", str(out)], env={"SLUIS_DATABASE_URL": url}
        )
    assert result.exit_code == 0, result.output
    assert re.search(
        rf"wrote 21 entries to {re.escape(str(out / 'entries.jsonl'))} and [4-9] checkpoints "
        rf"to {re.escape(str(out / 'checkpoints.jsonl'))}",
        result.output,
    ), result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "verification failed: not a proof bundle: not a JSON object"),
        ('{"index": 1}', "verification failed: not a proof bundle: no checkpoint"),
        ("{", "is not JSON: Expecting property name"),
        ('{"index": ' + "9" * 5000 + "}", "is not JSON: Exceeds the limit"),
    ],
)
def test_verify_proof_refuses_what_is_not_a_bundle_in_one_line(
    runner: CliRunner, tmp_path: Path, text: str, message: str
) -> None:
    bundle = tmp_path / "proof.json"
    bundle.write_text(text)
    result = runner.invoke(cli, ["audit", "verify-proof", str(bundle), "--key", KEY])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert result.output.startswith("sluis: error: ")
    assert message in result.output
    assert "Traceback" not in result.output
