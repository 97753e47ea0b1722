"""Holding a verified export against a checkpoint from elsewhere: truncation (pure).

An export verifies on its own even when its newest entries were dropped together with
their checkpoints: nothing in it says it once went further. The defence is a checkpoint
the export must reach, obtained apart from it: one the officer saved earlier, one
fetched live from the gateway, or one a witness cosigned. :func:`check_against`:

1. verifies that checkpoint with the log key in force at its size (following the
   export's hand-overs) and, if witnesses are named, with each witness's cosignature;
2. size ``M`` beyond the export's ``N`` entries: ``truncated`` (re-export; if the export
   still ends before ``M``, entries the log signed are gone);
3. otherwise the first ``M`` entries must rebuild its root: else ``inconsistent``.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.audit.checkpoint import Checkpoint, verify_checkpoint
from gateway.audit.compact import Frontier
from gateway.audit.errors import AuditError, VerificationError
from gateway.audit.handover import KeyEpoch
from gateway.audit.keys import Verifier
from gateway.audit.merkle import leaf_hash
from gateway.audit.note import open_note
from gateway.audit.verify import ExportedEntry


def check_against(
    entries: Sequence[ExportedEntry],
    epochs: Sequence[KeyEpoch],
    anchor: bytes,
    origin: str,
    *,
    label: str,
    witnesses: Sequence[Verifier] = (),
) -> Checkpoint:
    """The anchor checkpoint, once it holds (see the module docstring); else raise."""
    checkpoint = _verified(anchor, epochs, origin, label, len(entries))
    for witness in witnesses:
        try:
            open_note(anchor, [witness])
        except AuditError as exc:
            raise VerificationError(
                "no-cosignature", f"checkpoint {label} is not cosigned by witness {witness.name}"
            ) from exc
    if checkpoint.size > len(entries):
        raise VerificationError(
            "truncated",
            f"truncated: export ends at {len(entries)} but checkpoint {label} of size "
            f"{checkpoint.size} > {len(entries)} was signed",
        )
    frontier = Frontier()
    for exported in entries[: checkpoint.size]:
        frontier, _ = frontier.append(leaf_hash(exported.data))
    if frontier.root() != checkpoint.root_hash:
        raise VerificationError(
            "inconsistent",
            f"inconsistent: checkpoint {label} of size {checkpoint.size} does not match the "
            f"export's first {checkpoint.size} entries (the log was rewritten)",
        )
    return checkpoint


def _verified(
    anchor: bytes, epochs: Sequence[KeyEpoch], origin: str, label: str, exported: int
) -> Checkpoint:
    """Verify with the keys of the epoch(s) covering the size the body claims."""
    try:
        claimed = Checkpoint.parse(_body(anchor)).size
    except (AuditError, ValueError, UnicodeDecodeError) as exc:
        raise VerificationError("bad-anchor", f"{label} is not a signed checkpoint") from exc
    keys = [key for epoch in epochs if epoch.covers(claimed) for key in epoch.keys]
    try:
        return verify_checkpoint(anchor, keys, origin)
    except AuditError as exc:
        hint = " (a key hand-over missing from the export?)" if claimed > exported else ""
        raise VerificationError(
            "anchor-signature",
            f"checkpoint {label} does not verify with the log's key{hint}: {exc.detail}",
        ) from exc


def _body(note: bytes) -> str:
    return note[: note.rindex(b"\n\n") + 1].decode()
