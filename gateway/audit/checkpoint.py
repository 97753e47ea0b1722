"""C2SP tlog checkpoints (https://c2sp.org/tlog-checkpoint): a log's signed tree head.

::

    <origin>              the log's identity, non-empty (e.g. example.com/sluis-audit)
    <tree size>           ASCII decimal, no leading zeros ("0" for the empty tree)
    <root hash>           canonical base64 of the RFC 9162 root, 32 bytes
    <extension line>...   optional, opaque, each non-empty

every line ending in a newline. The body is the text of a signed note
(:mod:`gateway.audit.note`). :func:`verify_checkpoint` reads nothing from the body
before a trusted key's signature has verified, then insists on the expected origin.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.audit.encoding import decode_base64, encode_base64
from gateway.audit.errors import CheckpointError
from gateway.audit.keys import Signer, Verifier
from gateway.audit.merkle import HASH_SIZE
from gateway.audit.note import open_note, sign_note

MAX_TREE_SIZE = 2**64 - 1
_SIZE = re.compile(r"0|[1-9][0-9]*")
_BAD_LINE_CHAR = re.compile(r"[\x00-\x1f]")
_MIN_LINES = 3


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: which log, how many leaves, which root; extension lines are opaque."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "bad-origin", "origin")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError("bad-size", f"tree size {self.size} out of range")
        if not self.root_hash:
            raise CheckpointError("bad-root-hash", "the root hash is empty")
        for line in self.extensions:
            _check_line(line, "bad-extension", "extension line")

    def to_text(self) -> str:
        """The checkpoint body, ending in a newline: the text a log signs."""
        lines = (self.origin, str(self.size), encode_base64(self.root_hash), *self.extensions)
        return "".join(f"{line}\n" for line in lines)

    @classmethod
    def parse(cls, text: str, *, hash_size: int | None = HASH_SIZE) -> Checkpoint:
        """Strictly parse a body. ``hash_size=None`` accepts any root length (format only)."""
        if not text.endswith("\n"):
            raise CheckpointError("malformed", "a checkpoint ends in a newline")
        lines = text[:-1].split("\n")
        if len(lines) < _MIN_LINES:
            raise CheckpointError("malformed", "a checkpoint has at least three lines")
        origin, size, root, *extensions = lines
        _check_line(origin, "bad-origin", "origin")
        root_hash = _parse_root(root, hash_size)
        return cls(origin, _parse_size(size), root_hash, tuple(extensions))


def sign_checkpoint(cp: Checkpoint, signer: Signer) -> bytes:
    """The checkpoint as a signed note. Only a 32-byte (SHA-256) root is signed."""
    if len(cp.root_hash) != HASH_SIZE:
        raise CheckpointError("bad-root-hash", f"the root hash must be {HASH_SIZE} bytes")
    return sign_note(cp.to_text(), signer)


def verify_checkpoint(note_bytes: bytes, verifiers: Iterable[Verifier], origin: str) -> Checkpoint:
    """Open a signed checkpoint with the log's key(s) and check that it is ``origin``'s.

    Signature failures raise :class:`NoteError`; a bad body or another log's checkpoint
    raises :class:`CheckpointError`. The key name need not equal the origin (a SHOULD).
    """
    checkpoint = Checkpoint.parse(open_note(note_bytes, verifiers).text)
    if checkpoint.origin != origin:
        raise CheckpointError("wrong-origin", f"checkpoint of {checkpoint.origin!r}, not ours")
    return checkpoint


def _check_line(line: str, code: str, what: str) -> None:
    if not line or _BAD_LINE_CHAR.search(line):
        raise CheckpointError(code, f"the {what} must be non-empty, one line, no control chars")


def _parse_size(line: str) -> int:
    if not _SIZE.fullmatch(line) or len(line) > len(str(MAX_TREE_SIZE)):
        raise CheckpointError("bad-size", "the tree size is decimal without leading zeros")
    return int(line)


def _parse_root(line: str, hash_size: int | None) -> bytes:
    try:
        root = decode_base64(line)
    except ValueError as exc:
        raise CheckpointError("bad-root-hash", "the root hash is not canonical base64") from exc
    if hash_size is not None and len(root) != hash_size:
        raise CheckpointError("bad-root-hash", f"the root hash must be {hash_size} bytes")
    return root
