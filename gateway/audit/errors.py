"""The audit core's error family.

::

    AuditError            (code: str)   anything the Merkle/checkpoint core refuses
    ├── ProofError        a Merkle proof (or a request for one) is invalid
    ├── NoteError         a signed note or a note key is malformed, or does not verify
    ├── CheckpointError   a checkpoint body is malformed or names the wrong log
    ├── EntryError        an audit entry is refused (malformed, or carries a secret)
    └── VerificationError an exported log does not verify offline

Every error carries a stable, machine-readable ``code`` (kebab-case) and a human ``detail``.
The gateway maps codes to HTTP problem types in one place; nothing here knows about HTTP.
"""

from __future__ import annotations


class AuditError(Exception):
    """Base of every error raised by :mod:`gateway.audit`'s pure core."""

    code: str = "audit-error"

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class ProofError(AuditError):
    """An inclusion or consistency proof failed, or cannot be built.

    Stable codes: ``index-out-of-range``, ``size-out-of-range`` (a tree size beyond the
    leaves, or ``size1 > size2``), ``empty-tree`` (a consistency proof from size 0 proves
    nothing), ``wrong-proof-size``, ``bad-hash-length``, ``root-mismatch``,
    ``wrong-node-count`` (stored node hashes do not match a :class:`ProofNodes` plan),
    ``bad-frontier`` (a :class:`Frontier` rebuilt from inconsistent parts).
    """


class NoteError(AuditError):
    """A signed note, a signature line or a key string was refused.

    Stable codes: ``too-large``, ``invalid-utf8``, ``control-character``, ``malformed``
    (no blank-line separator, no final newline, a line that is not a signature),
    ``bad-signature-line``, ``too-many-signatures``, ``invalid-signature`` (a known key's
    signature does not verify), ``unverified`` (no signature by a known key),
    ``bad-text`` (text that cannot be signed), ``bad-name``, ``bad-key``,
    ``key-id-mismatch``, ``unknown-algorithm``, ``bad-key-length``, ``ambiguous-key``.
    """


class CheckpointError(AuditError):
    """A checkpoint body was refused.

    Stable codes: ``malformed`` (line structure), ``bad-origin``, ``bad-size``,
    ``bad-root-hash``, ``bad-extension``, ``wrong-origin`` (a valid checkpoint of another
    log). A checkpoint's signature failures are :class:`NoteError`.
    """


class EntryError(AuditError):
    """An audit entry was refused before it reached the log.

    Stable codes: ``secret-in-entry`` (a field looks like a raw token, key or secret),
    ``not-canonical`` (a value JSON canonicalization cannot carry: a float, an integer
    beyond 2**53, a non-string key, a lone surrogate), ``invalid-entry`` (fields fail
    validation).
    """


class VerificationError(AuditError):
    """Offline verification of an exported log failed; ``detail`` names the first failure.

    Stable codes: ``bad-export`` (a line is not a record), ``index-gap`` (entries are not
    0, 1, 2, ... in order), ``checkpoint-signature`` (a checkpoint does not verify),
    ``checkpoint-order`` (sizes do not grow), ``inconsistent`` (a consistency proof fails),
    ``root-mismatch`` (the entries do not rebuild a signed root), ``missing-entries``
    (fewer entries than the latest checkpoint covers), ``no-checkpoint``, ``bad-proof``,
    ``bad-rotation`` (a key-rotation entry names no valid key); against a checkpoint from
    elsewhere: ``bad-anchor``, ``anchor-signature``, ``no-cosignature`` (a named witness
    did not cosign), ``truncated`` (it is larger than the export), and ``inconsistent``.
    """
