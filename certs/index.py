"""The CA's ledger of issued certificates (``index.json``): a wire format, kept stable.

::

    {"format": 1, "crl_number": 3,
     "issued": [{"serial": "<hex>", "subject": "<RFC 4514>", "organization_id": "...",
                 "not_after": "<ISO 8601 UTC>", "status": "valid" | "revoked",
                 "revoked_at": "<ISO 8601 UTC>" | null, "reason": "<CRLReason>" | null}]}

New fields are appended with defaults; existing names never change meaning.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from cryptography import x509

from certs.crl import RevokedEntry
from certs.errors import PKIError

FORMAT = 1
Status = Literal["valid", "revoked"]


@dataclass(frozen=True)
class IssuedRecord:
    """One certificate the CA issued, and whether it is revoked."""

    serial_number: int
    subject: str
    organization_id: str
    not_after: datetime
    status: Status = "valid"
    revoked_at: datetime | None = None
    reason: str | None = None

    def revoked(self, at: datetime, reason: x509.ReasonFlags | None) -> IssuedRecord:
        """This record, marked revoked at ``at``."""
        return replace(
            self, status="revoked", revoked_at=at, reason=reason.value if reason else None
        )

    def revoked_entry(self) -> RevokedEntry:
        """The CRL entry for this (revoked) record."""
        if self.revoked_at is None:
            raise PKIError("index-corrupt", f"serial {self.serial_number:x} has no revoked_at")
        reason = x509.ReasonFlags(self.reason) if self.reason else None
        return RevokedEntry(self.serial_number, self.revoked_at, reason)


@dataclass(frozen=True)
class Index:
    """The whole ledger: issued certificates and the last CRL number used."""

    crl_number: int = 0
    issued: tuple[IssuedRecord, ...] = ()


def dump_index(index: Index) -> bytes:
    """Canonical JSON (sorted keys, two-space indent) of ``index``."""
    document = {
        "format": FORMAT,
        "crl_number": index.crl_number,
        "issued": [_dump_record(r) for r in index.issued],
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def load_index(data: bytes) -> Index:
    """Parse ``index.json``; PKIError ``index-corrupt`` on anything unexpected."""
    try:
        document = json.loads(data)
        if document["format"] != FORMAT:
            raise PKIError("index-corrupt", f"unsupported index format {document['format']!r}")
        records = tuple(_load_record(r) for r in document["issued"])
        return Index(crl_number=int(document["crl_number"]), issued=records)
    except (ValueError, KeyError, TypeError) as exc:
        raise PKIError("index-corrupt", f"index.json is unreadable: {exc}") from exc


def _dump_record(record: IssuedRecord) -> dict[str, Any]:
    return {
        "serial": f"{record.serial_number:x}",
        "subject": record.subject,
        "organization_id": record.organization_id,
        "not_after": record.not_after.isoformat(),
        "status": record.status,
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
        "reason": record.reason,
    }


def _load_record(raw: dict[str, Any]) -> IssuedRecord:
    status = raw["status"]
    if status not in ("valid", "revoked"):
        raise ValueError(f"unknown status {status!r}")
    revoked_at = raw.get("revoked_at")
    return IssuedRecord(
        serial_number=int(raw["serial"], 16),
        subject=str(raw["subject"]),
        organization_id=str(raw["organization_id"]),
        not_after=_utc(raw["not_after"]),
        status=status,
        revoked_at=_utc(revoked_at) if revoked_at else None,
        reason=raw.get("reason"),
    )


def _utc(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return value
