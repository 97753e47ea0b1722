"""Values the audit log hands out: receipts, signed checkpoints, proofs, records (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.audit.checkpoint import Checkpoint
from gateway.audit.entry import AuditEntry, decode_entry
from gateway.audit.jcs import loads


@dataclass(frozen=True)
class Receipt:
    """Proof of acceptance: the committed entry's index, and the tree it first joined."""

    index: int
    leaf_hash: bytes
    tree_size: int
    root_hash: bytes


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint and the signed note it came from (what clients verify)."""

    checkpoint: Checkpoint
    note: bytes

    @property
    def size(self) -> int:
        """The number of entries the checkpoint covers."""
        return self.checkpoint.size


@dataclass(frozen=True)
class InclusionProof:
    """RFC 9162 audit path of entry ``index`` in the tree of ``tree_size`` entries."""

    index: int
    tree_size: int
    leaf_hash: bytes
    hashes: tuple[bytes, ...]


@dataclass(frozen=True)
class ConsistencyProof:
    """RFC 9162 proof that the tree of ``size2`` entries extends the one of ``size1``."""

    size1: int
    size2: int
    hashes: tuple[bytes, ...]


@dataclass(frozen=True)
class AuditRecord:
    """A stored entry: its index and its canonical bytes (the Merkle leaf data)."""

    index: int
    data: bytes

    @property
    def entry(self) -> AuditEntry:
        """The typed entry (for entries of a version this code knows)."""
        return decode_entry(self.data)

    def json(self) -> Any:
        """The entry as parsed JSON values, whatever its version."""
        return loads(self.data)
