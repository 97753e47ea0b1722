"""Certificate revocation lists: building one (pure) and loading a PEM bundle of them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from certs.errors import PKIError
from certs.extensions import authority_key_id, is_key_of
from certs.keys import PrivateKey, signing_hash

_PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)


@dataclass(frozen=True)
class RevokedEntry:
    """One revoked certificate as the CRL lists it."""

    serial_number: int
    revoked_at: datetime
    reason: x509.ReasonFlags | None = None


def create_crl(
    *,
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    revoked: Sequence[RevokedEntry],
    now: datetime,
    crl_number: int,
    days: int = 7,
) -> x509.CertificateRevocationList:
    """A CRL signed by ``issuer``: thisUpdate ``now``, nextUpdate ``now + days``.

    ``crl_number`` must increase with every CRL the issuer publishes (the caller keeps it).
    """
    if days < 1 or crl_number < 0:
        raise PKIError("invalid-crl", "a CRL needs days >= 1 and a non-negative CRL number")
    if not is_key_of(issuer, issuer_key.public_key()):
        raise PKIError("key-mismatch", "the issuer key does not belong to the issuer certificate")
    builder = x509.CertificateRevocationListBuilder().issuer_name(issuer.subject)
    builder = builder.last_update(now).next_update(now + timedelta(days=days))
    builder = builder.add_extension(x509.CRLNumber(crl_number), critical=False)
    builder = builder.add_extension(authority_key_id(issuer), critical=False)
    for entry in revoked:
        builder = builder.add_revoked_certificate(_revoked(entry))
    return builder.sign(issuer_key, signing_hash(issuer_key))


def _revoked(entry: RevokedEntry) -> x509.RevokedCertificate:
    builder = x509.RevokedCertificateBuilder().serial_number(entry.serial_number)
    builder = builder.revocation_date(entry.revoked_at)
    if entry.reason is not None:
        builder = builder.add_extension(x509.CRLReason(entry.reason), critical=False)
    return builder.build()


def load_crls(data: bytes) -> list[x509.CertificateRevocationList]:
    """Every CRL in a PEM bundle (possibly none); PKIError ``invalid-crl`` on a bad block."""
    blocks = _PEM_CRL.findall(data)
    if not blocks and data.strip():
        raise PKIError("invalid-crl", "no PEM 'X509 CRL' block in a non-empty CRL bundle")
    try:
        return [x509.load_pem_x509_crl(block) for block in blocks]
    except ValueError as exc:
        raise PKIError("invalid-crl", f"unreadable CRL in bundle: {exc}") from exc
