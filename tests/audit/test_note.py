"""Signed notes: C2SP and Go sumdb vectors, then the rules and attacks of our own."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.audit import NoteError, Signer, Verifier, open_note, sign_note
from gateway.audit.encoding import decode_base64, encode_base64
from gateway.audit.note import MAX_NOTE_SIZE, MAX_SIGNATURES

# Our stable code for each negative vector (the vectors give Go's error in prose).
EXPECTED_CODES = {
    "go-note-no-known-key": "unverified",
    "go-note-corrupt-sig": "invalid-signature",
    "go-note-bad-key-name-with-space": "malformed",
    "go-note-no-blank-line": "malformed",
    "go-note-trailing-junk": "malformed",
    "go-note-control-char": "control-character",
    "go-vkey-bad-algorithm": "unknown-algorithm",
    # Go accepts the non-canonical base64 and then finds the key too long; we refuse the
    # encoding first (see test_bad_length_key_when_canonically_encoded for the length).
    "go-vkey-bad-length": "bad-key",
}
SEED = bytes(range(32))
ALICE = Signer("example.com/alice", SEED)
BOB = Signer("example.com/bob", bytes(range(1, 33)))
TEXT = "hello\n\nworld\n"


def _vector(vectors: Any, vector_id: str) -> Any:
    return next(v for v in vectors["signed_note_vectors"] if v["id"] == vector_id)


def _verifiers(vector: Any) -> list[Verifier]:
    keys = vector["vkeys"] if "vkeys" in vector else [vector["vkey"]]
    return [Verifier.from_key_string(k) for k in keys]


def _code(message: bytes, verifiers: list[Verifier]) -> str:
    with pytest.raises(NoteError) as exc:
        open_note(message, verifiers)
    return exc.value.code


def test_c2sp_example_verifies(note_vectors: Any) -> None:
    vector = _vector(note_vectors, "c2sp-signed-note-example")
    note = open_note(vector["note"].encode(), _verifiers(vector))
    assert note.text == "This is an example message.\n"
    assert [s.name for s in note.signatures] == ["example.com/foo"]


def test_go_signing_is_reproduced_byte_exactly(note_vectors: Any) -> None:
    vector = _vector(note_vectors, "go-note-sign-peter")
    signer = Signer.from_key_string(vector["skey"])
    assert sign_note(vector["text"], signer) == vector["expect_signed_note"].encode()
    assert signer.private_key_string() == vector["skey"]
    assert signer.verifier().key_string() == vector["vkey"]
    assert Verifier.from_key_string(vector["vkey"]) == signer.verifier()


@pytest.mark.parametrize("vector_id", ["go-note-open-two-sigs", "go-note-open-peter-only-known"])
def test_go_notes_with_two_signatures(note_vectors: Any, vector_id: str) -> None:
    vector = _vector(note_vectors, vector_id)
    note = open_note(vector["note"].encode(), _verifiers(vector))
    assert [s.name for s in note.signatures] == vector["expect_verified"]
    assert [s.name for s in note.unverified_signatures] == vector.get("expect_unverified", [])


@pytest.mark.parametrize("vector_id", [k for k in EXPECTED_CODES if k.startswith("go-note")])
def test_go_negative_notes(note_vectors: Any, vector_id: str) -> None:
    vector = _vector(note_vectors, vector_id)
    assert vector["expect"].startswith("reject")
    assert _code(vector["note"].encode(), _verifiers(vector)) == EXPECTED_CODES[vector_id]


@pytest.mark.parametrize("vector_id", [k for k in EXPECTED_CODES if k.startswith("go-vkey")])
def test_go_negative_verifier_keys(note_vectors: Any, vector_id: str) -> None:
    vector = _vector(note_vectors, vector_id)
    with pytest.raises(NoteError) as exc:
        Verifier.from_key_string(vector["vkey"])
    assert exc.value.code == EXPECTED_CODES[vector_id]


def test_bad_length_key_when_canonically_encoded(note_vectors: Any) -> None:
    name, key_id, key = _vector(note_vectors, "go-vkey-bad-length")["vkey"].split("+", 2)
    canonical = encode_base64(base64.b64decode(key))
    with pytest.raises(NoteError, match="bad-key-length"):
        Verifier.from_key_string(f"{name}+{key_id}+{canonical}")


def test_round_trip_with_cosigners() -> None:
    message = sign_note(TEXT, ALICE, BOB)
    note = open_note(message, [BOB.verifier()])
    assert note.text == TEXT
    assert [s.name for s in note.signatures] == [BOB.name]
    assert [s.name for s in note.unverified_signatures] == [ALICE.name]


def test_a_known_key_signature_that_fails_rejects_the_note() -> None:
    forged = sign_note("other\n", ALICE).rsplit(b"\n\n", 1)[1]
    message = sign_note(TEXT, BOB) + forged
    assert _code(message, [ALICE.verifier(), BOB.verifier()]) == "invalid-signature"


def test_keys_sharing_only_a_name_or_only_an_id_are_ignored() -> None:
    impostor = Signer(ALICE.name, bytes(32))  # same name, different key and ID
    message = sign_note(TEXT, impostor)
    assert _code(message, [ALICE.verifier()]) == "unverified"
    note = open_note(sign_note(TEXT, impostor, ALICE), [ALICE.verifier()])
    assert [s.key_id for s in note.signatures] == [ALICE.key_id]


def test_duplicate_signatures_are_counted_once() -> None:
    message = sign_note(TEXT, ALICE, ALICE, BOB, BOB)
    note = open_note(message, [ALICE.verifier()])
    assert len(note.signatures) == 1
    assert len(note.unverified_signatures) == 1


def test_sixteen_signatures_are_accepted_and_too_many_refused() -> None:
    signers = [Signer(f"w{i}", bytes([i]) * 32) for i in range(MAX_SIGNATURES + 1)]
    note = open_note(sign_note(TEXT, *signers[:16]), [signers[15].verifier()])
    assert len(note.unverified_signatures) == 15
    with pytest.raises(NoteError, match="too-many-signatures"):
        sign_note(TEXT, *signers)
    lines = sign_note(TEXT, signers[0]).rsplit(b"\n\n", 1)[1] * (MAX_SIGNATURES + 1)
    assert _code(TEXT.encode() + b"\n" + lines, [signers[0].verifier()]) == "too-many-signatures"


@pytest.mark.parametrize(
    ("text", "code"),
    [("no newline", "bad-text"), ("tab\there\n", "bad-text"), ("\ud800\n", "bad-text")],
)
def test_unsignable_text(text: str, code: str) -> None:
    with pytest.raises(NoteError) as exc:
        sign_note(text, ALICE)
    assert exc.value.code == code


def test_oversized_text_is_refused() -> None:
    with pytest.raises(NoteError, match="too-large"):
        sign_note("x" * MAX_NOTE_SIZE + "\n", ALICE)
    assert _code(b"x" * (MAX_NOTE_SIZE + 1), [ALICE.verifier()]) == "too-large"


def _mangle(message: bytes, old: bytes, new: bytes) -> bytes:
    assert old in message
    return message.replace(old, new)


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        ("\u2014 ".encode(), b"- ", "malformed"),  # a hyphen is not the em dash
        ("\u2014 ".encode(), "\u2014\u00a0".encode(), "malformed"),
        (b"=\n", b"=", "malformed"),  # signatures must end in a newline
        (b"=\n", b"=\n\n", "malformed"),  # trailing blank line
        (b"example.com/alice ", b"example.com/alice  ", "bad-signature-line"),
        (b"example.com/alice ", b"", "bad-signature-line"),
        (b"=\n", b"\n", "bad-signature-line"),  # canonical base64 only
        (b"hello", b"hel\xffo", "invalid-utf8"),
        (b"hello", b"hel\ro", "control-character"),
    ],
)
def test_malformed_notes(old: bytes, new: bytes, code: str) -> None:
    message = _mangle(sign_note(TEXT, ALICE), old, new)
    assert _code(message, [ALICE.verifier()]) == code


def test_short_signature_is_malformed() -> None:
    line = f"\u2014 {ALICE.name} {encode_base64(ALICE.key_id)}\n".encode()
    assert _code(TEXT.encode() + b"\n" + line, [ALICE.verifier()]) == "bad-signature-line"


def test_wrong_length_signature_by_known_key_fails() -> None:
    line = f"\u2014 {ALICE.name} {encode_base64(ALICE.key_id + b'x' * 10)}\n".encode()
    assert _code(TEXT.encode() + b"\n" + line, [ALICE.verifier()]) == "invalid-signature"


class _Colliding(Verifier):
    """A different key whose ID collides with ALICE's, as a forged key ID could."""

    @property
    def key_id(self) -> bytes:
        return ALICE.key_id


def test_ambiguous_verifiers_are_refused() -> None:
    same_key_twice = [ALICE.verifier(), ALICE.verifier()]
    assert open_note(sign_note(TEXT, ALICE), same_key_twice).signatures
    colliding = _Colliding(ALICE.name, BOB.verifier().public_key)
    with pytest.raises(NoteError, match="ambiguous-key"):
        open_note(sign_note(TEXT, ALICE), [ALICE.verifier(), colliding])


ALICE_NAME, ALICE_ID, ALICE_KEY = ALICE.verifier().key_string().split("+", 2)


@pytest.mark.parametrize(
    ("key", "code"),
    [
        (f"{ALICE_NAME}+{ALICE_ID}", "bad-key"),
        (f"{ALICE_NAME}+{ALICE_ID.upper()}+{ALICE_KEY}", "bad-key"),
        (f"{ALICE_NAME}+0x{ALICE_ID[2:]}+{ALICE_KEY}", "bad-key"),
        (f"{ALICE_NAME}+{ALICE_ID[::-1]}+{ALICE_KEY}", "key-id-mismatch"),
        (f"{ALICE_NAME} +{ALICE_ID}+{ALICE_KEY}", "bad-name"),
        (f"+{ALICE_ID}+{ALICE_KEY}", "bad-name"),
        (f"{ALICE_NAME}+{ALICE_ID}+", "bad-key"),
        (f"{ALICE_NAME}+{ALICE_ID}+{ALICE_KEY}==", "bad-key"),  # over-padded
    ],
)
def test_bad_verifier_keys(key: str, code: str) -> None:
    with pytest.raises(NoteError) as exc:
        Verifier.from_key_string(key)
    assert exc.value.code == code


def _signer_key(typed_seed: bytes, key_id: str = ALICE_ID, prefix: str = "PRIVATE+KEY") -> str:
    return f"{prefix}+{ALICE_NAME}+{key_id}+{encode_base64(typed_seed)}"


def test_signer_key_string_round_trip() -> None:
    assert ALICE.private_key_string() == _signer_key(bytes([1]) + SEED)
    assert Signer.from_key_string(_signer_key(bytes([1]) + SEED)).verifier() == ALICE.verifier()


@pytest.mark.parametrize(
    ("key", "code"),
    [
        (_signer_key(bytes([1]) + SEED, key_id=ALICE_ID[::-1]), "key-id-mismatch"),
        (_signer_key(bytes([1]) + SEED, prefix="PUBLIC+KEY"), "bad-key"),
        (_signer_key(bytes([1]) + SEED, prefix="PRIVATE"), "bad-key"),
        (_signer_key(bytes([2]) + SEED), "unknown-algorithm"),
        (_signer_key(bytes([1]) + SEED[:31]), "bad-key-length"),
    ],
)
def test_bad_signer_keys(key: str, code: str) -> None:
    with pytest.raises(NoteError) as exc:
        Signer.from_key_string(key)
    assert exc.value.code == code


def test_signer_never_shows_its_seed() -> None:
    secret = encode_base64(bytes([1]) + SEED)
    assert secret not in repr(ALICE)
    assert ALICE.name in repr(ALICE)
    assert decode_base64(ALICE.private_key_string().rsplit("+", 1)[1])[1:] == SEED


def test_bad_signer_material() -> None:
    with pytest.raises(NoteError, match="bad-key-length"):
        Signer("n", b"short")
    with pytest.raises(NoteError, match="bad-name"):
        Signer("has+plus", bytes(32))


note_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], min_codepoint=0x20), max_size=200
).map(lambda s: s + "\n")


@given(text=note_text, bit=st.integers(min_value=0, max_value=511))
def test_round_trip_and_signature_bit_flips(text: str, bit: int) -> None:
    message = sign_note(text, ALICE)
    assert open_note(message, [ALICE.verifier()]).text == text
    body, sig_line = message.rsplit(b"\n\n", 1)
    raw = decode_base64(sig_line.decode().split(" ")[2].rstrip("\n"))
    flipped = bytearray(raw)
    flipped[4 + bit // 8] ^= 1 << (bit % 8)
    forged = body + f"\n\n\u2014 {ALICE.name} {encode_base64(bytes(flipped))}\n".encode()
    with pytest.raises(NoteError):
        open_note(forged, [ALICE.verifier()])
