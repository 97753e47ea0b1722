"""Offline verification of an exported log with only the log's public key(s) (pure).

An export is two JSON-lines files::

    entries.jsonl       {"index": 0, "entry": {...}}          one per entry, index order
    checkpoints.jsonl   {"size": 7, "note": "<signed note>",   one per checkpoint, size order
                         "consistency": ["<base64>", ...]}     proof from the line before

:func:`verify_export` checks, and names the first failure as a :class:`VerificationError`:

1. every checkpoint's signature and origin: starting from the key(s) the officer trusts
   (a note verifies with any of them; unknown keys' lines are ignored) and following
   each key hand-over recorded in the log (:mod:`gateway.audit.handover`);
2. consistency between successive checkpoints (RFC 9162 proofs, so a log that rewrote
   history between two checkpoints is caught even without its entries);
3. that the entries, canonicalized again (RFC 8785), numbered 0, 1, 2, ... without gaps,
   rebuild the signed root of every checkpoint they reach, and reach the latest one.

A range export (entries from ``s > 0`` on, as the console downloads one) adds
``start.json``, the frontier the entries are rebuilt onto (:mod:`gateway.audit.bundle`).

Hashes are standard base64 with padding, as in checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.audit.bundle import ExportStart
from gateway.audit.checkpoint import Checkpoint, verify_checkpoint
from gateway.audit.compact import Frontier
from gateway.audit.encoding import decode_base64, encode_base64
from gateway.audit.errors import AuditError, VerificationError
from gateway.audit.handover import KeyChain, KeyEpoch, find_rotations
from gateway.audit.jcs import canonical, loads
from gateway.audit.keys import Verifier
from gateway.audit.merkle import leaf_hash, verify_consistency, verify_inclusion


@dataclass(frozen=True)
class ExportedEntry:
    """One entry line: its index and canonical bytes."""

    index: int
    data: bytes


@dataclass(frozen=True)
class ExportedCheckpoint:
    """One checkpoint line: the signed note and the consistency proof from the previous."""

    size: int
    note: bytes
    consistency: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class VerifyReport:
    """What verified: how many entries and checkpoints, and the latest signed tree."""

    entries: int
    checkpoints: int
    latest: Checkpoint
    epochs: tuple[KeyEpoch, ...] = ()  # the keys in force, by checkpoint size
    void_rotations: tuple[int, ...] = ()  # key-rotation entries never handed over

    @property
    def hand_overs(self) -> int:
        """How many key hand-overs verification followed."""
        return max(len(self.epochs) - 1, 0)


def entry_line(index: int, data: bytes) -> str:
    """The JSON line of one exported entry."""
    return canonical({"index": index, "entry": loads(data)}).decode()


def checkpoint_line(size: int, note: bytes, consistency: Sequence[bytes]) -> str:
    """The JSON line of one exported checkpoint."""
    record = {
        "size": size,
        "note": note.decode(),
        "consistency": [encode_base64(h) for h in consistency],
    }
    return canonical(record).decode()


def read_entries(lines: Iterable[str]) -> list[ExportedEntry]:
    """Parse entry lines (blank lines skipped); the entry is canonicalized again."""
    out = []
    for number, line in _numbered(lines):
        record = _record(line, number, "entry")
        index, entry = record.get("index"), record.get("entry")
        if not isinstance(index, int) or isinstance(index, bool) or not isinstance(entry, dict):
            raise VerificationError("bad-export", f"entry line {number}: needs index and entry")
        out.append(ExportedEntry(index, _canonical(entry, number)))
    return out


def read_checkpoints(lines: Iterable[str]) -> list[ExportedCheckpoint]:
    """Parse checkpoint lines (blank lines skipped)."""
    out = []
    for number, line in _numbered(lines):
        record = _record(line, number, "checkpoint")
        size, note, proof = record.get("size"), record.get("note"), record.get("consistency", [])
        if not isinstance(size, int) or not isinstance(note, str) or not isinstance(proof, list):
            raise VerificationError("bad-export", f"checkpoint line {number}: needs size, note")
        try:
            hashes = tuple(decode_base64(h) for h in proof)
        except (TypeError, ValueError) as exc:
            raise VerificationError("bad-export", f"checkpoint line {number}: bad hash") from exc
        out.append(ExportedCheckpoint(size, note.encode(), hashes))
    return out


def verify_export(
    entries: Sequence[ExportedEntry],
    checkpoints: Sequence[ExportedCheckpoint],
    verifiers: Sequence[Verifier],
    origin: str,
    start: ExportStart | None = None,
) -> VerifyReport:
    """Run the three checks of the module docstring; raise at the first failure.

    ``verifiers`` are the log's first key(s); hand-overs recorded in ``entries`` are
    followed from there (and only trusted because the rebuild ties them to signed roots).
    With ``start`` (a range export, :mod:`gateway.audit.bundle`) the entries begin at its
    index, rebuilt onto its frontier; ``verifiers`` are then the key(s) in force there.
    """
    chain = KeyChain(verifiers, find_rotations((e.index, e.data) for e in entries))
    signed = verify_checkpoints(checkpoints, chain, origin)
    rebuild(entries, signed, start)
    return VerifyReport(len(entries), len(signed), signed[-1], chain.epochs(), tuple(chain.void))


def verify_checkpoints(
    checkpoints: Sequence[ExportedCheckpoint],
    verifiers: Sequence[Verifier] | KeyChain,
    origin: str,
) -> list[Checkpoint]:
    """Signatures (following hand-overs), then consistency with the checkpoint before."""
    if not checkpoints:
        raise VerificationError("no-checkpoint", "the export holds no signed checkpoint")
    chain = verifiers if isinstance(verifiers, KeyChain) else KeyChain(verifiers)
    signed: list[Checkpoint] = []
    for number, exported in enumerate(checkpoints, start=1):
        try:
            checkpoint = verify_checkpoint(exported.note, chain.keys, origin)
        except AuditError as exc:
            raise VerificationError(
                "checkpoint-signature", f"checkpoint {number} does not verify: {exc.detail}"
            ) from exc
        if checkpoint.size != exported.size:
            raise VerificationError(
                "bad-export",
                f"checkpoint {number}: says size {exported.size}, signed {checkpoint.size}",
            )
        if signed:
            _check_consistent(signed[-1], checkpoint, exported.consistency, number)
        chain.advance(checkpoint, exported.note)
        signed.append(checkpoint)
    return signed


def rebuild(
    entries: Sequence[ExportedEntry],
    signed: Sequence[Checkpoint],
    start: ExportStart | None = None,
) -> None:
    """Re-hash the entries and compare with every signed root they reach (from ``start``'s
    frontier, for a range export; from the empty tree otherwise)."""
    roots = {cp.size: cp.root_hash for cp in signed}
    frontier = Frontier() if start is None else start.tree()
    _compare_root(frontier, roots)
    for position, exported in enumerate(entries, start=frontier.size):
        if exported.index != position:
            raise VerificationError(
                "index-gap", f"entry {position} of the export has index {exported.index}"
            )
        frontier, _ = frontier.append(leaf_hash(exported.data))
        _compare_root(frontier, roots)
    latest = signed[-1]
    if frontier.size < latest.size:
        raise VerificationError(
            "missing-entries",
            f"the latest checkpoint covers {latest.size} entries, the export "
            + (f"holds {len(entries)}" if start is None else f"ends at {frontier.size}"),
        )
    if start is not None and frontier.size != latest.size:
        raise VerificationError(
            "unsigned-range",
            f"a range export must end at a signed checkpoint: it ends at {frontier.size}, "
            f"the latest checkpoint covers {latest.size}",
        )


def verify_proof_bundle(bundle: Any, verifiers: Sequence[Verifier], origin: str) -> Checkpoint:
    """Check a ``sluis audit prove`` bundle: the entry is in the signed checkpoint.

    A bundle that is not one is refused by naming the field it lacks or gets wrong; the
    refusal never carries a Python exception's text (which showed this module's insides).
    """
    fields = _bundle_fields(bundle)
    try:
        checkpoint = verify_checkpoint(fields.note, verifiers, origin)
        leaf = leaf_hash(canonical(fields.entry))
    except AuditError as exc:
        raise VerificationError("bad-proof", exc.detail) from exc
    if fields.size != checkpoint.size:
        raise VerificationError("bad-proof", "the proof is not for the checkpoint's tree")
    if leaf != fields.leaf:
        raise VerificationError("bad-proof", "the entry does not hash to the leaf hash")
    try:
        verify_inclusion(leaf, fields.index, fields.size, fields.hashes, checkpoint.root_hash)
    except AuditError as exc:
        raise VerificationError("bad-proof", exc.detail) from exc
    return checkpoint


@dataclass(frozen=True)
class _Bundle:
    """A proof bundle's fields, each of its type."""

    note: bytes
    index: int
    size: int
    leaf: bytes
    hashes: tuple[bytes, ...]
    entry: dict[str, Any]


def _bundle_fields(bundle: Any) -> _Bundle:
    if not isinstance(bundle, dict):
        raise _not_a_bundle("not a JSON object")
    for name in ("checkpoint", "index", "tree_size", "leaf_hash", "hashes", "entry"):
        if name not in bundle:
            raise _not_a_bundle(f"no {name}")
    note, entry, hashes = bundle["checkpoint"], bundle["entry"], bundle["hashes"]
    if not isinstance(note, str):
        raise _not_a_bundle("checkpoint must be a string")
    if not isinstance(entry, dict):
        raise _not_a_bundle("entry must be a JSON object")
    if not isinstance(hashes, list):
        raise _not_a_bundle("hashes must be a list of canonical base64")
    return _Bundle(
        note.encode(),
        _count(bundle["index"], "index"),
        _count(bundle["tree_size"], "tree_size"),
        _hash(bundle["leaf_hash"], "leaf_hash must be canonical base64"),
        tuple(_hash(h, "hashes must be a list of canonical base64") for h in hashes),
        entry,
    )


def _count(value: Any, name: str) -> int:
    if type(value) is not int or value < 0:
        raise _not_a_bundle(f"{name} must be an integer >= 0")
    return value


def _hash(value: Any, why: str) -> bytes:
    if not isinstance(value, str):
        raise _not_a_bundle(why)
    try:
        return decode_base64(value)
    except ValueError as exc:
        raise _not_a_bundle(why) from exc


def _not_a_bundle(why: str) -> VerificationError:
    return VerificationError("bad-proof", f"not a proof bundle: {why}")


def _check_consistent(
    old: Checkpoint, new: Checkpoint, proof: Sequence[bytes], number: int
) -> None:
    if new.size < old.size:
        raise VerificationError(
            "checkpoint-order", f"checkpoint {number} is smaller ({new.size}) than the one before"
        )
    if old.size == 0:
        return  # every tree extends the empty one; its root is checked by the rebuild
    try:
        verify_consistency(old.size, new.size, proof, old.root_hash, new.root_hash)
    except AuditError as exc:
        raise VerificationError(
            "inconsistent",
            f"checkpoint {number} (size {new.size}) is not consistent with size {old.size}: "
            f"{exc.detail}",
        ) from exc


def _compare_root(frontier: Frontier, roots: dict[int, bytes]) -> None:
    want = roots.get(frontier.size)
    if want is not None and frontier.root() != want:
        raise VerificationError(
            "root-mismatch",
            f"the first {frontier.size} entries do not rebuild the signed root of that size",
        )


def _numbered(lines: Iterable[str]) -> Iterable[tuple[int, str]]:
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield number, line


def _record(line: str, number: int, what: str) -> dict[str, Any]:
    try:
        record = loads(line)
    except AuditError as exc:
        raise VerificationError("bad-export", f"{what} line {number}: {exc.detail}") from exc
    if not isinstance(record, dict):
        raise VerificationError("bad-export", f"{what} line {number}: not a JSON object")
    return record


def _canonical(entry: dict[str, Any], number: int) -> bytes:
    try:
        return canonical(entry)
    except AuditError as exc:
        raise VerificationError("bad-export", f"entry line {number}: {exc.detail}") from exc
