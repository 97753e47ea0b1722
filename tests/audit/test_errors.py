"""The audit error family: what a refusal reads as (the CLI's one line is this text)."""

from __future__ import annotations

import pytest

from gateway.audit.errors import (
    AuditError,
    CheckpointError,
    EntryError,
    NoteError,
    ProofError,
    VerificationError,
)


@pytest.mark.parametrize(
    "kind", [ProofError, NoteError, CheckpointError, EntryError, VerificationError]
)
def test_an_error_reads_as_its_code_then_its_detail(kind: type[AuditError]) -> None:
    error = kind("index-gap", "entry 7 follows entry 5")
    assert str(error) == "index-gap: entry 7 follows entry 5"
    assert (error.code, error.detail) == ("index-gap", "entry 7 follows entry 5")
    assert error.args == ("index-gap: entry 7 follows entry 5",)
    assert isinstance(error, AuditError)
