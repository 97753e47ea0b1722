"""Revocation checking against CRLs we were handed (no fetching: the caller supplies them)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtensionOID

from certs.errors import CertificateRejected
from certs.extensions import find_extension
from certs.identity import describe

UNDERSTOOD_CRL_EXTENSIONS = frozenset(
    {ExtensionOID.CRL_NUMBER, ExtensionOID.AUTHORITY_KEY_IDENTIFIER}
)
"""CRL extensions we process. A critical other (e.g. a scoped issuingDistributionPoint or a
delta CRL indicator) makes the CRL unusable: we cannot tell what it covers."""

SIGNING_KEYS = (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)


def check_revocation(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    crls: Sequence[x509.CertificateRevocationList],
    now: datetime,
    *,
    required: bool,
) -> None:
    """Raise unless ``cert`` is covered by a fresh CRL from ``issuer`` and not listed in it.

    With ``required=False`` a missing CRL is accepted (intermediates); a CRL that is
    present is still held to every rule.
    """
    named = [crl for crl in crls if crl.issuer == issuer.subject]
    if not named:
        if required:
            raise CertificateRejected(
                "crl-unavailable", f"no CRL from {describe(issuer)} for {describe(cert)}"
            )
        return
    authentic = [crl for crl in named if _is_authentic(crl, issuer)]
    if not authentic:
        raise CertificateRejected(
            "crl-invalid", f"no CRL for {describe(cert)} is validly signed by {describe(issuer)}"
        )
    for crl in authentic:
        if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
            raise CertificateRejected(
                "revoked", f"{describe(cert)} (serial {cert.serial_number:x}) is revoked"
            )
    newest = max(authentic, key=lambda crl: crl.last_update_utc)
    if newest.next_update_utc is None or newest.next_update_utc <= now:
        raise CertificateRejected(
            "crl-expired",
            f"the newest CRL from {describe(issuer)} was due at {newest.next_update_utc}",
        )


def _is_authentic(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    usage = find_extension(issuer, x509.KeyUsage)
    if usage is not None and not usage.crl_sign:
        return False
    if any(e.critical and e.oid not in UNDERSTOOD_CRL_EXTENSIONS for e in crl.extensions):
        return False
    key = issuer.public_key()
    if not isinstance(key, SIGNING_KEYS):
        return False
    try:
        return crl.is_signature_valid(key)
    except (TypeError, ValueError):  # signature algorithm not matching the key, malformed CRL
        return False
