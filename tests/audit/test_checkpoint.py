"""Checkpoints: transparency-dev and Go sumdb bodies, a signed vector, strict parsing."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.audit import (
    AuditError,
    Checkpoint,
    CheckpointError,
    NoteError,
    ProofError,
    Signer,
    Verifier,
    leaf_hash,
    sign_checkpoint,
    verify_checkpoint,
)
from gateway.audit.checkpoint import MAX_TREE_SIZE

ROOT = bytes(range(32))
ROOT_B64 = base64.b64encode(ROOT).decode()
URLSAFE_ROOT_B64 = base64.urlsafe_b64encode(bytes([0xFF]) * 32).decode()  # "-" and "_"
LOG = Signer("example.com/sluis-audit", bytes(range(7, 39)))
ORIGIN = "example.com/sluis-audit"


def test_marshal_vectors(note_vectors: Any) -> None:
    for case in note_vectors["checkpoint_marshal_vectors"]["cases"]:
        checkpoint = Checkpoint(case["origin"], case["size"], base64.b64decode(case["hash_b64"]))
        assert checkpoint.to_text() == case["want"]


def test_parse_vectors_as_format(note_vectors: Any) -> None:
    """The vectors' roots are not SHA-256 sized, so they test the format alone."""
    for case in note_vectors["checkpoint_marshal_vectors"]["parse_cases"]:
        if case["expect_valid"]:
            assert Checkpoint.parse(case["body"], hash_size=None).to_text() == case["body"]
        else:
            with pytest.raises(CheckpointError):
                Checkpoint.parse(case["body"], hash_size=None)


def test_parse_vectors_fail_our_hash_size(note_vectors: Any) -> None:
    for case in note_vectors["checkpoint_marshal_vectors"]["parse_cases"]:
        with pytest.raises(CheckpointError):
            Checkpoint.parse(case["body"])


def test_go_sumdb_tree_note(note_vectors: Any) -> None:
    vector = note_vectors["gosum_tree_note"]
    checkpoint = Checkpoint("go.sum database tree", vector["size"], leaf_hash(b"hello world"))
    assert checkpoint.to_text() == vector["want"]
    assert Checkpoint.parse(vector["want"]) == checkpoint


def test_signed_checkpoint_is_reproduced_and_verified(note_vectors: Any) -> None:
    vector = note_vectors["derived_signed_checkpoint"]
    origin = vector["checkpoint"].split("\n")[0]
    checkpoint = Checkpoint(origin, vector["tree_size"], bytes.fromhex(vector["root_hex"]))
    signed = sign_checkpoint(checkpoint, Signer.from_key_string(vector["skey"]))
    assert signed == vector["checkpoint"].encode()
    verifier = Verifier.from_key_string(vector["vkey"])
    assert verify_checkpoint(signed, [verifier], origin) == checkpoint
    with pytest.raises(CheckpointError, match="wrong-origin"):
        verify_checkpoint(signed, [verifier], "example.com/another-log")
    with pytest.raises(NoteError, match="unverified"):
        verify_checkpoint(signed, [LOG.verifier()], origin)
    with pytest.raises(NoteError, match="invalid-signature"):
        verify_checkpoint(signed.replace(b"\n8\n", b"\n9\n"), [verifier], origin)


def test_round_trip_with_extensions() -> None:
    checkpoint = Checkpoint(ORIGIN, 42, ROOT, ("ext one", "ext two"))
    signed = sign_checkpoint(checkpoint, LOG)
    assert verify_checkpoint(signed, [LOG.verifier()], ORIGIN) == checkpoint


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (f"{ORIGIN}\n0\n{ROOT_B64}\n", None),
        (f"{ORIGIN}\n18446744073709551615\n{ROOT_B64}\n", None),
        (f"{ORIGIN}\n18446744073709551616\n{ROOT_B64}\n", "bad-size"),
        (f"{ORIGIN}\n0123\n{ROOT_B64}\n", "bad-size"),
        (f"{ORIGIN}\n00\n{ROOT_B64}\n", "bad-size"),
        (f"{ORIGIN}\n+1\n{ROOT_B64}\n", "bad-size"),
        (f"{ORIGIN}\n-1\n{ROOT_B64}\n", "bad-size"),
        (f"{ORIGIN}\n 1\n{ROOT_B64}\n", "bad-size"),
        (f"{ORIGIN}\n1_000\n{ROOT_B64}\n", "bad-size"),
        (f"{ORIGIN}\n\u0661\u0662\n{ROOT_B64}\n", "bad-size"),  # Arabic-Indic digits
        (f"{ORIGIN}\n\n{ROOT_B64}\n", "bad-size"),
        (f"{ORIGIN}\n1\n{ROOT_B64.rstrip('=')}\n", "bad-root-hash"),
        (f"{ORIGIN}\n1\n{ROOT_B64[:-2]}9=\n", "bad-root-hash"),  # 8= with stray low bits
        (f"{ORIGIN}\n1\n {ROOT_B64}\n", "bad-root-hash"),
        (f"{ORIGIN}\n1\n{base64.b64encode(ROOT[:31]).decode()}\n", "bad-root-hash"),
        (f"{ORIGIN}\n1\n{URLSAFE_ROOT_B64}\n", "bad-root-hash"),
        (f"\n1\n{ROOT_B64}\n", "bad-origin"),
        (f"{ORIGIN}\r\n1\n{ROOT_B64}\n", "bad-origin"),
        (f"{ORIGIN}\n1\n{ROOT_B64}\n\n", "bad-extension"),
        (f"{ORIGIN}\n1\n{ROOT_B64}\n\nafter blank\n", "bad-extension"),
        (f"{ORIGIN}\n1\n{ROOT_B64}", "malformed"),
        (f"{ORIGIN}\n1\n", "malformed"),
        ("", "malformed"),
    ],
)
def test_strict_parsing(body: str, code: str | None) -> None:
    if code is None:
        assert Checkpoint.parse(body).to_text() == body
        return
    with pytest.raises(CheckpointError) as exc:
        Checkpoint.parse(body)
    assert exc.value.code == code


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("", 1, ROOT), "bad-origin"),
        (("two\nlines", 1, ROOT), "bad-origin"),
        ((ORIGIN, -1, ROOT), "bad-size"),
        ((ORIGIN, MAX_TREE_SIZE + 1, ROOT), "bad-size"),
        ((ORIGIN, 1, b""), "bad-root-hash"),
        ((ORIGIN, 1, ROOT, ("",)), "bad-extension"),
        ((ORIGIN, 1, ROOT, ("a\nb",)), "bad-extension"),
    ],
)
def test_invalid_checkpoints_cannot_be_built(args: tuple[Any, ...], code: str) -> None:
    with pytest.raises(CheckpointError) as exc:
        Checkpoint(*args)
    assert exc.value.code == code


def test_only_sha256_roots_are_signed() -> None:
    with pytest.raises(CheckpointError, match="bad-root-hash"):
        sign_checkpoint(Checkpoint(ORIGIN, 1, b"bananas"), LOG)


line = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], min_codepoint=0x20),
    min_size=1,
    max_size=40,
)


@given(
    origin=line,
    size=st.integers(min_value=0, max_value=MAX_TREE_SIZE),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(line, max_size=3).map(tuple),
)
def test_body_round_trip(origin: str, size: int, root: bytes, extensions: tuple[str, ...]) -> None:
    checkpoint = Checkpoint(origin, size, root, extensions)
    assert Checkpoint.parse(checkpoint.to_text()) == checkpoint


def test_error_family() -> None:
    for family in (ProofError, NoteError, CheckpointError):
        error = family("some-code", "the detail")
        assert isinstance(error, AuditError)
        assert (error.code, error.detail) == ("some-code", "the detail")
        assert str(error) == "some-code: the detail"
