"""The certificates the gateway's audit log says were revoked: the CRL job's source of truth.

``sluis certs revoke`` commits an ``admin-change`` entry ``revoke certificate:<serial hex>``
(details ``organization_id=...``, ``reason=...``) with the revocation, both or neither
(:mod:`gateway.admin.service`). For a CA whose key the gateway holds in no CA directory (the
client CA cert-manager makes), those entries are the record: :func:`revoked_certificates`
reads them back in log order, and the CRL job signs them into the CA's CRL
(``sluis certs publish-crl``, docs/deployment.md).

Fail closed: an entry that says ``revoke`` of a ``certificate:`` but whose serial cannot be
read (it never happens with entries the gateway wrote) is an error, never skipped, so no CRL
is published without a revocation the log holds.
"""

from __future__ import annotations

from collections.abc import Iterable

from cryptography import x509

from certs import RevokedEntry
from gateway.audit import repository
from gateway.audit.entry import AuditEntry, decode_entry
from gateway.audit.errors import EntryError
from gateway.storage.db import Database

TARGET = "certificate:"
_PAGE = 1000


class RevocationLogError(Exception):
    """A revocation entry in the log that cannot be turned into a CRL entry."""

    code = "unreadable-revocation"

    def __init__(self, index: int, detail: str) -> None:
        super().__init__(f"audit entry {index}: {detail}")
        self.index = index
        self.detail = f"audit entry {index}: {detail}"


async def revoked_certificates(db: Database) -> list[RevokedEntry]:
    """Every certificate revocation in the log, in log order (StorageUnavailable on failure)."""
    found: list[RevokedEntry] = []
    after = -1
    while True:
        where = repository.EntryFilter(event="admin-change", after=after, limit=_PAGE)
        async with db.session() as session:
            page = [(index, data) for index, data, _ in await repository.entries(session, where)]
        found.extend(revocations_in(page))
        if len(page) < _PAGE:
            return found
        after = page[-1][0]


def revocations_in(rows: Iterable[tuple[int, bytes]]) -> list[RevokedEntry]:
    """The revocations among ``(index, canonical bytes)`` admin-change rows."""
    found = []
    for index, data in rows:
        try:
            entry = decode_entry(data)
        except EntryError as exc:
            raise RevocationLogError(index, exc.detail) from exc
        if entry.action == "revoke" and (entry.target or "").startswith(TARGET):
            found.append(_revoked(index, entry))
    return found


def _revoked(index: int, entry: AuditEntry) -> RevokedEntry:
    text = (entry.target or "").removeprefix(TARGET)
    altered = {*(entry.escaped or ()), *(entry.redacted or ())}
    if "target" in altered or not text:
        raise RevocationLogError(index, f"the serial in {entry.target!r} cannot be read")
    try:
        serial = int(text, 16)
    except ValueError:
        raise RevocationLogError(index, f"{text!r} is not a hexadecimal serial") from None
    return RevokedEntry(serial, entry.time, _reason(entry))


def _reason(entry: AuditEntry) -> x509.ReasonFlags | None:
    reasons = entry.decision.reasons if entry.decision is not None else ()
    for item in reasons:
        name, _, value = item.partition("=")
        if name == "reason" and value != "unspecified":
            try:
                return x509.ReasonFlags(value)
            except ValueError:
                return None  # the serial is revoked all the same; only the reason is unknown
    return None
