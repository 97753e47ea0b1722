"""Every refusal of signed notes and checkpoints, by its stable code and its exact words.

The refusals reach the officer (``sluis audit verify``) and the audit API as they are, so
their sentences are part of the contract: the earlier tests matched codes loosely
(``match="bad-root-hash"`` also accepts ``XXbad-root-hashXX``), and mutation testing
(docs/testing.md) found each sentence undefended. The boundaries next to them too: the
largest note, the most signatures, the shortest signature line that parses.
"""

from __future__ import annotations

import pytest

from gateway.audit import (
    Checkpoint,
    CheckpointError,
    NoteError,
    Signer,
    open_note,
    sign_checkpoint,
    sign_note,
    verify_checkpoint,
)
from gateway.audit.encoding import decode_base64, encode_base64
from gateway.audit.keys import Verifier, _key_hash
from gateway.audit.note import MAX_NOTE_SIZE, MAX_SIGNATURES

ALICE = Signer("example.com/alice", bytes(range(32)))
BOB = Signer("example.com/bob", bytes(range(1, 33)))
LOG = Signer("example.com/sluis-audit", bytes(range(7, 39)))
ORIGIN = "example.com/sluis-audit"
ROOT = bytes(range(32))
ROOT_B64 = encode_base64(ROOT)
TEXT = "hello\n"
LINE_RULE = "must be non-empty, one line, no control chars"


def _refusal(error: type[Exception], call: object, *args: object) -> tuple[str, str]:
    with pytest.raises(error) as exc:
        call(*args)  # type: ignore[operator]
    return exc.value.code, exc.value.detail  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "code", "detail"),
    [
        (f"{ORIGIN}\n1\n{ROOT_B64}", "malformed", "a checkpoint ends in a newline"),
        (f"{ORIGIN}\n1\n", "malformed", "a checkpoint has at least three lines"),
        (f"\n1\n{ROOT_B64}\n", "bad-origin", f"the origin {LINE_RULE}"),
        (
            f"{ORIGIN}\n01\n{ROOT_B64}\n",
            "bad-size",
            "the tree size is decimal without leading zeros",
        ),
        (
            f"{ORIGIN}\n1\n{ROOT_B64[:-1]}\n",
            "bad-root-hash",
            "the root hash is not canonical base64",
        ),
        (
            f"{ORIGIN}\n1\n{encode_base64(ROOT[:31])}\n",
            "bad-root-hash",
            "the root hash must be 32 bytes",
        ),
        (f"{ORIGIN}\n1\n{ROOT_B64}\n\n", "bad-extension", f"the extension line {LINE_RULE}"),
    ],
)
def test_each_checkpoint_body_refusal(body: str, code: str, detail: str) -> None:
    assert _refusal(CheckpointError, Checkpoint.parse, body) == (code, detail)


@pytest.mark.parametrize(
    ("args", "code", "detail"),
    [
        (("", 1, ROOT), "bad-origin", f"the origin {LINE_RULE}"),
        ((ORIGIN, -1, ROOT), "bad-size", "tree size -1 out of range"),
        ((ORIGIN, 2**64, ROOT), "bad-size", f"tree size {2**64} out of range"),
        ((ORIGIN, 1, b""), "bad-root-hash", "the root hash is empty"),
        ((ORIGIN, 1, ROOT, ("a\x7fb", "")), "bad-extension", f"the extension line {LINE_RULE}"),
    ],
)
def test_each_checkpoint_construction_refusal(
    args: tuple[object, ...], code: str, detail: str
) -> None:
    assert _refusal(CheckpointError, Checkpoint, *args) == (code, detail)


def test_signing_and_origin_refusals() -> None:
    short = Checkpoint(ORIGIN, 1, b"bananas")
    assert _refusal(CheckpointError, sign_checkpoint, short, LOG) == (
        "bad-root-hash",
        "the root hash must be 32 bytes",
    )
    other = sign_checkpoint(Checkpoint("example.org/other", 1, ROOT), LOG)
    assert _refusal(CheckpointError, verify_checkpoint, other, [LOG.verifier()], ORIGIN) == (
        "wrong-origin",
        "checkpoint of 'example.org/other', not ours",
    )


def _lines(*signers: Signer) -> bytes:
    """The signature lines alone of a note signed by ``signers``."""
    return sign_note(TEXT, *signers).rsplit(b"\n\n", 1)[1]


@pytest.mark.parametrize(
    ("message", "code", "detail"),
    [
        (b"x" * (MAX_NOTE_SIZE + 1), "too-large", f"a note is at most {MAX_NOTE_SIZE} bytes"),
        (b"hel\xff\n\n" + _lines(ALICE), "invalid-utf8", "a note must be valid UTF-8"),
        (
            b"hel\to\n\n" + _lines(ALICE),
            "control-character",
            "a note must not hold control characters",
        ),
        (
            TEXT.encode() + _lines(ALICE),
            "malformed",
            "no blank line followed by newline-ended signatures",
        ),
        (TEXT.encode() + b"\n- x\n", "malformed", "a line after the blank line is not a signature"),
        (
            TEXT.encode() + "\n\u2014 a b c\n".encode(),
            "bad-signature-line",
            "bad key name or signature encoding",
        ),
        (
            TEXT.encode() + f"\n\u2014 {ALICE.name} {encode_base64(ALICE.key_id)}\n".encode(),
            "bad-signature-line",
            "signature too short",
        ),
        (
            TEXT.encode() + b"\n" + _lines(ALICE) * (MAX_SIGNATURES + 1),
            "too-many-signatures",
            f"at most {MAX_SIGNATURES} signatures",
        ),
        (sign_note(TEXT, BOB), "unverified", "no signature by a known key"),
        (
            sign_note(TEXT, BOB) + sign_note("other\n", ALICE).rsplit(b"\n\n", 1)[1],
            "invalid-signature",
            f"signature by {ALICE.name} does not verify",
        ),
    ],
)
def test_each_note_refusal(message: bytes, code: str, detail: str) -> None:
    assert _refusal(NoteError, open_note, message, [ALICE.verifier()]) == (code, detail)


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("no newline", "note text must end in a newline"),
        ("tab\there\n", "note text holds a control character"),
        ("\ud800\n", "note text is not valid Unicode"),
    ],
)
def test_each_unsignable_text(text: str, detail: str) -> None:
    assert _refusal(NoteError, sign_note, text, ALICE) == ("bad-text", detail)


def test_the_most_signatures_and_one_more() -> None:
    signers = [Signer(f"w{i}", bytes([i]) * 32) for i in range(MAX_SIGNATURES + 1)]
    most = sign_note(TEXT, *signers[:MAX_SIGNATURES])
    note = open_note(most, [signers[0].verifier()])
    assert len(note.unverified_signatures) == MAX_SIGNATURES - 1
    assert _refusal(NoteError, sign_note, TEXT, *signers) == (
        "too-many-signatures",
        f"at most {MAX_SIGNATURES} signatures",
    )


def test_the_largest_note_opens_and_one_byte_more_is_refused() -> None:
    lines = _lines(ALICE)
    text = "x" * (MAX_NOTE_SIZE - len(lines) - 2) + "\n"
    largest = sign_note(text, ALICE)
    assert len(largest) == MAX_NOTE_SIZE
    assert open_note(largest, [ALICE.verifier()]).text == text
    assert _refusal(NoteError, sign_note, "x" + text, ALICE) == (
        "too-large",
        f"a note is at most {MAX_NOTE_SIZE} bytes",
    )
    assert _refusal(NoteError, open_note, b"x" + largest, [ALICE.verifier()])[0] == "too-large"


def test_a_signature_line_without_a_signature_is_too_short() -> None:
    """The name ends at the first space; with none, the signature is empty."""
    message = TEXT.encode() + f"\n\u2014 {ALICE.name}\n".encode()
    refusal = _refusal(NoteError, open_note, message, [ALICE.verifier()])
    assert refusal == ("bad-signature-line", "signature too short")


def test_a_signature_line_of_a_key_id_and_one_byte_parses() -> None:
    """Five bytes (key ID and one signature byte) is the shortest line: kept as unknown."""
    stranger = f"\u2014 example.com/carol {encode_base64(b'abcd' + b'z')}\n".encode()
    note = open_note(sign_note(TEXT, ALICE) + stranger, [ALICE.verifier()])
    assert [(s.name, s.key_id, s.signature) for s in note.unverified_signatures] == [
        ("example.com/carol", b"abcd", b"z")
    ]


def test_two_verifiers_sharing_a_name_and_key_id_are_refused_by_name() -> None:
    class Colliding(type(ALICE.verifier())):  # type: ignore[misc]
        @property
        def key_id(self) -> bytes:
            return ALICE.key_id

    colliding = Colliding(ALICE.name, BOB.verifier().public_key)
    refusal = _refusal(NoteError, open_note, sign_note(TEXT, ALICE), [ALICE.verifier(), colliding])
    assert refusal == ("ambiguous-key", f"two keys named {ALICE.name} share a key ID")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("AA-A", "not standard base64"),  # base64url's alphabet
        (" AAA=", "not standard base64"),
        ("=", "bad base64 padding"),  # lenient decoding reads b""
        ("AAA==", "bad base64 padding"),  # lenient decoding reads two bytes
        ("AB==", "non-canonical base64"),  # stray bits in the last character
    ],
)
def test_each_base64_refusal_says_why(text: str, words: str) -> None:
    """The strict decoder's words reach the officer (a bundle's ``start.json``)."""
    with pytest.raises(ValueError, match=f"^{words}$") as exc:
        decode_base64(text)
    assert str(exc.value) == words


def test_each_signer_key_refusal_says_why() -> None:
    seed = bytes(range(32))
    good = Signer("example.com/alice", seed).private_key_string()
    _, _, name, key_id, key = good.split("+")
    assert _refusal(NoteError, Signer, "example.com/alice", seed[:31]) == (
        "bad-key-length",
        "Ed25519 seeds are 32 bytes",
    )
    assert _refusal(NoteError, Signer.from_key_string, f"PUBLIC+KEY+{name}+{key_id}+{key}") == (
        "bad-key",
        "a signer key starts with PRIVATE+KEY+",
    )
    assert _refusal(NoteError, Signer.from_key_string, f"PRIVATE+KEY+{name}+00000000+{key}") == (
        "key-id-mismatch",
        "key ID 00000000 does not match the key",
    )


def _vkey(typed_key: bytes, name: str = "example.com/alice") -> str:
    """A verifier key string with the right key ID for whatever ``typed_key`` is."""
    return f"{name}+{_key_hash(name, typed_key).hex()}+{encode_base64(typed_key)}"


@pytest.mark.parametrize(
    ("key", "code", "detail"),
    [
        ("example.com/alice+0a0b", "bad-key", "a key string is <name>+<8 hex digits>+<base64 key>"),
        ("a b+00000000+AA==", "bad-name", "invalid key name 'a b'"),
        ("example.com/alice+00000000+AA-A", "bad-key", "the key is not canonical base64"),
        ("example.com/alice+00000000+", "bad-key", "the key is empty"),
        (
            f"example.com/alice+00000000+{encode_base64(bytes([1]) + bytes(32))}",
            "key-id-mismatch",
            "key ID 00000000 does not match the key",
        ),
        (
            _vkey(bytes([2]) + bytes(range(32))),
            "unknown-algorithm",
            "signature type 0x02 unsupported",
        ),
        (_vkey(bytes([1]) + bytes(31)), "bad-key-length", "Ed25519 keys are 32 bytes"),
    ],
)
def test_each_verifier_key_refusal_says_why(key: str, code: str, detail: str) -> None:
    assert _refusal(NoteError, Verifier.from_key_string, key) == (code, detail)


def test_a_verifier_of_the_wrong_length_is_refused_by_its_words() -> None:
    assert _refusal(NoteError, Verifier, "example.com/alice", bytes(31)) == (
        "bad-key-length",
        "Ed25519 public keys are 32 bytes",
    )
