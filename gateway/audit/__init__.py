"""The tamper-evident audit log: a pure core (this package's exports) and its IO edge.

The core has no IO and no clock: data in, values out. Modules::

    merkle       RFC 9162 hashing, list-based proofs, proof verification
    compact      Frontier (O(log n) appends) and ProofNodes (proofs from stored nodes)
    keys         Ed25519 note keys and their key strings
    note         C2SP signed notes
    checkpoint   C2SP tlog checkpoints
    errors       AuditError and its family
    jcs          RFC 8785 canonical JSON (the subset entries use)
    entry        AuditEntry, its canonical encoding, hash_token, the secret check
    records      Receipt, SignedCheckpoint, proofs, AuditRecord
    verify       offline verification of an export (``sluis audit verify``)
    handover     following key hand-overs while verifying
    anchor       holding an export against a checkpoint from elsewhere (truncation)
    export       JSON lines, OCSF and syslog records

The IO edge, imported by name and never from here (it pulls in SQLAlchemy)::

    repository   all SQL
    log          AuditReader / AuditLog: group commit, checkpointer, proofs
    identity     the log's origin and key, fixed at creation; start-up holds settings to it
    rotation     handing the log over to a new key (``sluis audit rotate-key``)
    wiring       open_audit_log(db, settings, key, now): the started log, as its identity
    endpoints    the /v1/audit router;  schemas: its response bodies
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
from gateway.audit.errors import (
    AuditError,
    CheckpointError,
    EntryError,
    NoteError,
    ProofError,
    VerificationError,
)
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
    "EntryError",
    "Frontier",
    "Node",
    "NodeID",
    "Note",
    "NoteError",
    "ProofError",
    "ProofNodes",
    "Signature",
    "Signer",
    "VerificationError",
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
