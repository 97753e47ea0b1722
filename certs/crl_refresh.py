"""Re-signing one CA's CRL inside a published CRL bundle (pure).

The CRL job of a CA whose key lives in a Kubernetes Secret (cert-manager's client CA,
docs/deployment.md) has no CA directory and no index: it gets the revocations from the
gateway's audit log and the CRL bundle as published, and calls :func:`refresh_bundle`.

* The new CRL lists every serial the caller passes **and** every serial the previous CRL of
  this CA listed: a revocation is never dropped by a refresh (a CA cannot un-revoke).
* Its CRL number is above the previous one and never below the Unix time of ``now``, so it
  still increases after the published bundle was lost or emptied.
* CRLs of other issuers in the bundle are kept as they are, in their order, before the new one.
* A CRL that names this CA but is not signed by its key (an older CA of the same name, or a
  forgery) is dropped and counted: its entries are not carried over.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from certs.crl import RevokedEntry, create_crl, load_crls
from certs.keys import PrivateKey


@dataclass(frozen=True)
class RefreshedBundle:
    """The bundle to publish and what went into its new CRL."""

    pem: bytes
    crl_number: int
    revoked: tuple[RevokedEntry, ...]
    kept: int  # CRLs of other issuers, carried over unchanged
    dropped: int  # CRLs naming this CA that its key did not sign


def refresh_bundle(
    previous: bytes,
    *,
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    revoked: Sequence[RevokedEntry],
    now: datetime,
    days: int,
) -> RefreshedBundle:
    """``previous`` with this issuer's CRL re-signed; PKIError ``invalid-crl`` on a bad bundle.

    Also ``key-mismatch`` (the key is not the issuer's) and ``invalid-crl`` (``days`` < 1),
    from :func:`certs.crl.create_crl`.
    """
    ours, others, dropped = _split(load_crls(previous), issuer)
    number = max([int(now.timestamp()), *(_number(crl) + 1 for crl in ours)])
    entries = _union([*revoked, *(entry for crl in ours for entry in _entries(crl))])
    crl = create_crl(
        issuer=issuer,
        issuer_key=issuer_key,
        revoked=entries,
        now=now,
        crl_number=number,
        days=days,
    )
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [*others, crl])
    return RefreshedBundle(pem, number, entries, len(others), dropped)


def _split(
    crls: list[x509.CertificateRevocationList], issuer: x509.Certificate
) -> tuple[list[x509.CertificateRevocationList], list[x509.CertificateRevocationList], int]:
    """(this issuer's CRLs, other issuers' CRLs, how many named this issuer falsely)."""
    ours, others, dropped = [], [], 0
    for crl in crls:
        if crl.issuer != issuer.subject:
            others.append(crl)
        elif _signed_by(crl, issuer):
            ours.append(crl)
        else:
            dropped += 1
    return ours, others, dropped


def _signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    key = issuer.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        # An RSA CA never gets this far: its key is refused on reading (unsupported-key),
        # and any key we hold is a key-mismatch for it in create_crl.
        return False
    return crl.is_signature_valid(key)


def _number(crl: x509.CertificateRevocationList) -> int:
    try:
        return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    except x509.ExtensionNotFound:
        return 0


def _entries(crl: x509.CertificateRevocationList) -> list[RevokedEntry]:
    return [RevokedEntry(r.serial_number, r.revocation_date_utc, _reason(r)) for r in crl]


def _reason(revoked: x509.RevokedCertificate) -> x509.ReasonFlags | None:
    try:
        return revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return None


def _union(entries: Iterable[RevokedEntry]) -> tuple[RevokedEntry, ...]:
    """One entry per serial (its earliest revocation), by serial."""
    first: dict[int, RevokedEntry] = {}
    for entry in entries:
        known = first.get(entry.serial_number)
        if known is None or entry.revoked_at < known.revoked_at:
            first[entry.serial_number] = entry
    return tuple(first[serial] for serial in sorted(first))
