"""The tamper-evident audit log's pure core: Merkle proofs, signed notes, checkpoints.

No IO and no clock: data in, values out. Modules::

    merkle       RFC 9162 hashing, list-based proofs, proof verification
    compact      Frontier (O(log n) appends) and ProofNodes (proofs from stored nodes)
    keys         Ed25519 note keys and their key strings
    note         C2SP signed notes
    checkpoint   C2SP tlog checkpoints
    errors       AuditError and its family
"""

from __future__ import annotations

from gateway.audit.checkpoint import Checkpoint, sign_checkpoint, verify_checkpoint
from gateway.audit.compact import (
    Frontier,
    Node,
    NodeID,
    ProofNodes,
    consistency_proof_nodes,
    frontier_ids,
    inclusion_proof_nodes,
)
from gateway.audit.errors import AuditError, CheckpointError, NoteError, ProofError
from gateway.audit.keys import Signer, Verifier
from gateway.audit.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from gateway.audit.note import Note, Signature, open_note, sign_note

__all__ = [
    "AuditError",
    "Checkpoint",
    "CheckpointError",
    "Frontier",
    "Node",
    "NodeID",
    "Note",
    "NoteError",
    "ProofError",
    "ProofNodes",
    "Signature",
    "Signer",
    "Verifier",
    "consistency_proof",
    "consistency_proof_nodes",
    "frontier_ids",
    "inclusion_proof",
    "inclusion_proof_nodes",
    "leaf_hash",
    "node_hash",
    "open_note",
    "root_hash",
    "sign_checkpoint",
    "sign_note",
    "verify_checkpoint",
    "verify_consistency",
    "verify_inclusion",
]
