"""Building the audit log from settings: its Ed25519 signer and origin (the IO edge).

Checkpoints are signed with ``audit_key_file`` (Ed25519: signed notes have no ECDSA type),
a key of its own, apart from the token key. :func:`open_audit_log` holds the settings
against the log's stored identity (gateway.audit.identity) before anything is signed.
"""

from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.identity import Configured, LogIdentity, establish
from gateway.audit.keys import Signer
from gateway.audit.log import AuditLog
from gateway.settings import Settings, load_audit_key
from gateway.storage.db import Database

log = logging.getLogger("sluis.audit")


def signer_from_key(key: Ed25519PrivateKey, name: str) -> Signer:
    """A note :class:`Signer` named ``name`` (e.g. ``sluis.example/audit``) over ``key``."""
    return Signer(name, key.private_bytes_raw())


def audit_origin(settings: Settings) -> str:
    """A new log's origin: ``audit_origin``, else ``<host[:port] of public_url>/audit``."""
    return settings.audit_origin or f"{urlsplit(settings.public_url).netloc}/audit"


def configured_identity(settings: Settings, key: Ed25519PrivateKey) -> Configured:
    """What the settings say the log is: its origin (explicit or derived) and key."""
    public = signer_from_key(key, "audit").verifier().public_key
    return Configured(audit_origin(settings), settings.audit_origin is not None, public)


async def log_identity(
    db: Database, settings: Settings, key: Ed25519PrivateKey, *, now: datetime
) -> LogIdentity:
    """The stored identity (stored now for a new log); SettingsError if the settings disagree."""
    configured = configured_identity(settings, key)
    identity = await establish(db, configured, now=now)
    if identity.origin != configured.origin:
        log.warning(
            "public_url changed; the audit log keeps its origin %r (fixed with the log)",
            identity.origin,
        )
    return identity


async def open_audit_log(
    db: Database, settings: Settings, key: Ed25519PrivateKey, *, now: datetime
) -> AuditLog:
    """The gateway's started :class:`AuditLog`, signing as the log's stored identity."""
    identity = await log_identity(db, settings, key, now=now)
    audit = AuditLog(db, signer_from_key(key, identity.origin), identity.origin)
    await audit.start()
    return audit


async def check_audit_identity(settings: Settings, *, now: datetime) -> LogIdentity:
    """Before listening: migrate (if auto_migrate) and hold the settings against the log."""
    key = load_audit_key(settings)
    db = Database(settings.effective_database_url)
    try:
        if settings.auto_migrate:
            await db.upgrade()
        return await log_identity(db, settings, key, now=now)
    finally:
        await db.dispose()
