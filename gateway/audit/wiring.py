"""Building the audit log from settings: its Ed25519 signer and origin (the IO edge).

Checkpoints are signed with ``audit_key_file`` (Ed25519: signed notes have no ECDSA type),
a key of its own, apart from the token key.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.keys import Signer
from gateway.audit.log import AuditLog
from gateway.settings import Settings, load_audit_key
from gateway.storage.db import Database


def signer_from_key(key: Ed25519PrivateKey, name: str) -> Signer:
    """A note :class:`Signer` named ``name`` (e.g. ``sluis.example/audit``) over ``key``."""
    return Signer(name, key.private_bytes_raw())


def audit_origin(settings: Settings) -> str:
    """The log's origin line: the gateway's host (and port) from ``public_url``, + ``/audit``."""
    return f"{urlsplit(settings.public_url).netloc}/audit"


def audit_signer(settings: Settings) -> Signer:
    """The checkpoint signer from ``audit_key_file`` (SettingsError if missing or not Ed25519)."""
    return signer_from_key(load_audit_key(settings), audit_origin(settings))


def build_audit_log(db: Database, settings: Settings) -> AuditLog:
    """The gateway's :class:`AuditLog` (call ``await log.start()``, and ``close()`` at exit)."""
    return AuditLog(db, audit_signer(settings), audit_origin(settings))
