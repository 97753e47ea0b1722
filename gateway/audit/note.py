"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys.

::

    <text, ending in a newline; it may contain empty lines>
    <one empty line>
    — <key name> <base64(4-byte key ID || signature over the text)>
    — <another key name> <...>

The signed bytes are the UTF-8 text including its final newline, not the blank line. A
note is UTF-8 without control characters other than newline, at most
:data:`MAX_NOTE_SIZE` bytes and :data:`MAX_SIGNATURES` signatures (the spec asks
readers to accept at least 16). :func:`open_note` fails closed: a signature by a known
``(name, key ID)`` that does not verify rejects the whole note, signatures by unknown keys
are kept aside unverified, and a note with no verified signature is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.audit.encoding import decode_base64, encode_base64
from gateway.audit.errors import NoteError
from gateway.audit.keys import Signer, Verifier, check_name

MAX_NOTE_SIZE = 1 << 20
MAX_SIGNATURES = 100
_SIGNATURE_PREFIX = "\u2014 "
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")

_KeyRef = tuple[str, bytes]  # (key name, key ID)


@dataclass(frozen=True)
class Signature:
    """One signature line: the key's name and ID, and the signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        """The signature line, with its newline."""
        encoded = encode_base64(self.key_id + self.signature)
        return f"{_SIGNATURE_PREFIX}{self.name} {encoded}\n"


@dataclass(frozen=True)
class Note:
    """An opened note: its text, the signatures verified, and those by unknown keys."""

    text: str
    signatures: tuple[Signature, ...]
    unverified_signatures: tuple[Signature, ...] = ()


def sign_note(text: str, signer: Signer, *cosigners: Signer) -> bytes:
    """The signed note of ``text`` (which must end in a newline), signed by every signer."""
    body = _encode_text(text)
    signatures = [Signature(s.name, s.key_id, s.sign(body)) for s in (signer, *cosigners)]
    if len(signatures) > MAX_SIGNATURES:
        raise NoteError("too-many-signatures", f"at most {MAX_SIGNATURES} signatures")
    message = body + b"\n" + "".join(sig.line() for sig in signatures).encode()
    if len(message) > MAX_NOTE_SIZE:
        raise NoteError("too-large", f"a note is at most {MAX_NOTE_SIZE} bytes")
    return message


def open_note(message: bytes, verifiers: Iterable[Verifier]) -> Note:
    """Parse and verify a signed note against trusted ``verifiers`` (fail closed)."""
    text, lines = _split(_decode(message))
    known = _index(verifiers)
    signed = text.encode()
    verified: dict[_KeyRef, Signature] = {}
    unverified: dict[_KeyRef, Signature] = {}
    for sig in (_parse_line(line) for line in lines):
        ref = (sig.name, sig.key_id)
        verifier = known.get(ref)
        if verifier is None:
            unverified.setdefault(ref, sig)
        elif verifier.verify(signed, sig.signature):
            verified.setdefault(ref, sig)
        else:
            raise NoteError("invalid-signature", f"signature by {sig.name} does not verify")
    if not verified:
        raise NoteError("unverified", "no signature by a known key")
    return Note(text, tuple(verified.values()), tuple(unverified.values()))


def _encode_text(text: str) -> bytes:
    if not text.endswith("\n"):
        raise NoteError("bad-text", "note text must end in a newline")
    if _CONTROL.search(text):
        raise NoteError("bad-text", "note text holds a control character")
    try:
        return text.encode()
    except UnicodeEncodeError as exc:
        raise NoteError("bad-text", "note text is not valid Unicode") from exc


def _decode(message: bytes) -> str:
    if len(message) > MAX_NOTE_SIZE:
        raise NoteError("too-large", f"a note is at most {MAX_NOTE_SIZE} bytes")
    try:
        decoded = message.decode()
    except UnicodeDecodeError as exc:
        raise NoteError("invalid-utf8", "a note must be valid UTF-8") from exc
    if _CONTROL.search(decoded):
        raise NoteError("control-character", "a note must not hold control characters")
    return decoded


def _split(decoded: str) -> tuple[str, list[str]]:
    """Text (with its final newline) and signature lines, split at the last blank line."""
    split = decoded.rfind("\n\n")
    block = decoded[split + 2 :]
    if split < 0 or not block.endswith("\n"):
        raise NoteError("malformed", "no blank line followed by newline-ended signatures")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError("too-many-signatures", f"at most {MAX_SIGNATURES} signatures")
    return decoded[: split + 1], lines


def _parse_line(line: str) -> Signature:
    if not line.startswith(_SIGNATURE_PREFIX):
        raise NoteError("malformed", "a line after the blank line is not a signature")
    name, _, encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")
    try:
        check_name(name)
        raw = decode_base64(encoded)
    except (NoteError, ValueError) as exc:
        raise NoteError("bad-signature-line", "bad key name or signature encoding") from exc
    if len(raw) < 5:  # noqa: PLR2004 - a 4-byte key ID and at least one signature byte
        raise NoteError("bad-signature-line", "signature too short")
    return Signature(name, raw[:4], raw[4:])


def _index(verifiers: Iterable[Verifier]) -> dict[_KeyRef, Verifier]:
    known: dict[_KeyRef, Verifier] = {}
    for verifier in verifiers:
        ref = (verifier.name, verifier.key_id)
        if known.setdefault(ref, verifier) != verifier:
            raise NoteError("ambiguous-key", f"two keys named {verifier.name} share a key ID")
    return known
