"""Dropping the newest entries with their checkpoints: caught against a checkpoint from elsewhere.

On SQLite and PostgreSQL: the truncated export verifies on its own (nothing in it says it
went further), but not against a checkpoint the officer saved earlier, nor against one
of a rewritten log; a witness-cosigned checkpoint is required when a witness is named.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gateway.audit.checkpoint import Checkpoint, sign_checkpoint
from gateway.audit.keys import Signer
from gateway.audit.note import Signature
from gateway.cli import audit_cmd
from gateway.cli.context import CliState
from tests.audit.logs import ORIGIN, SIGNER, opened, sample
from tests.support.databases import database_url

KEY = SIGNER.verifier().key_string()
WITNESS = Signer("witness.example/w1", bytes(range(2, 34)))

cli = typer.Typer()
cli.add_typer(audit_cmd.app, name="audit")


@cli.callback()
def _root(ctx: typer.Context) -> None:
    ctx.obj = CliState()


@pytest.fixture(params=["sqlite", "postgresql"])
def exported(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A verified export of 21 entries with checkpoints of 5, 13 and 21 entries."""
    for name in list(os.environ):
        if name.startswith("SLUIS_"):
            monkeypatch.delenv(name)
    with database_url(request.param, tmp_path) as url:
        asyncio.run(_fill(url))
        out = tmp_path / "export"
        result = CliRunner().invoke(
            cli, ["audit", "export", "--dir", str(out)], env={"SLUIS_DATABASE_URL": url}
        )
        assert result.exit_code == 0, result.output
        yield out


async def _fill(url: str) -> None:
    async with opened(url, checkpoint_delay=3600) as log:
        for n in range(21):
            await log.append(sample(n))
            if n in {4, 12, 20}:
                await log.checkpoint_now()


def _latest_note(export: Path) -> str:
    lines = (export / "checkpoints.jsonl").read_text().splitlines()
    return str(json.loads(lines[-1])["note"])


def _truncate(export: Path, size: int) -> None:
    """Drop every entry from ``size`` on, and the checkpoints that covered them."""
    entries = (export / "entries.jsonl").read_text().splitlines()[:size]
    (export / "entries.jsonl").write_text("\n".join(entries) + "\n")
    lines = (export / "checkpoints.jsonl").read_text().splitlines()
    kept = [line for line in lines if json.loads(line)["size"] <= size]
    (export / "checkpoints.jsonl").write_text("\n".join(kept) + "\n")


def _verify(export: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["audit", "verify", str(export), "--key", KEY, *args])
    return result.exit_code, result.output.strip()


def _cosigned(note: str, witness: Signer) -> str:
    body = note[: note.rindex("\n\n") + 1]
    return note + Signature(witness.name, witness.key_id, witness.sign(body.encode())).line()


def test_truncation_is_reported_against_a_saved_checkpoint(exported: Path) -> None:
    saved = exported.parent / "saved-checkpoint.txt"
    saved.write_text(_latest_note(exported))
    assert _verify(exported, "--against-checkpoint", str(saved))[0] == 0
    _truncate(exported, 13)
    code, output = _verify(exported)
    assert code == 0, output  # on its own, a truncated export still verifies
    code, output = _verify(exported, "--against-checkpoint", str(saved))
    assert code == 1
    assert output == (
        f"sluis: error: verification failed: truncated: export ends at 13 but checkpoint "
        f"{saved} of size 21 > 13 was signed"
    )


def test_a_checkpoint_of_another_history_is_inconsistent(exported: Path) -> None:
    other = sign_checkpoint(Checkpoint(ORIGIN, 5, bytes(32)), SIGNER)
    anchor = exported.parent / "other.txt"
    anchor.write_bytes(other)
    code, output = _verify(exported, "--against-checkpoint", str(anchor))
    assert code == 1
    assert "inconsistent: checkpoint" in output
    assert "of size 5 does not match" in output


def test_a_named_witness_must_have_cosigned(exported: Path) -> None:
    note = _latest_note(exported)
    plain, cosigned = exported.parent / "plain.txt", exported.parent / "cosigned.txt"
    plain.write_text(note)
    cosigned.write_text(_cosigned(note, WITNESS))
    witness = ["--witness", WITNESS.verifier().key_string()]
    code, output = _verify(exported, "--against-checkpoint", str(plain), *witness)
    assert code == 1
    assert f"not cosigned by witness {WITNESS.name}" in output
    code, output = _verify(exported, "--against-checkpoint", str(cosigned), *witness)
    assert code == 0, output
    stranger = Signer(ORIGIN, bytes(range(3, 35)))  # the log's name, not its key
    forged = exported.parent / "forged.txt"
    forged.write_bytes(sign_checkpoint(Checkpoint(ORIGIN, 21, bytes(32)), stranger))
    code, output = _verify(exported, "--against-checkpoint", str(forged))
    assert code == 1
    assert "does not verify with the log's key" in output
