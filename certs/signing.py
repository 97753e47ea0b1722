"""Certificates that sign things other than TLS handshakes, e.g. iSHARE client assertions.

An iSHARE client signs its assertion with the key of a certificate it sends in the JWS
``x5c`` header. The path rules, key strength and CRL requirement are those of
:func:`certs.verify`; the leaf profile differs: no SAN URI, but an extended key usage fit
for signing on the subject's behalf (:data:`SIGNING_EKUS`), and the party is named by a
namespaced party id (``EU.EORI.<CC><id>``) in the subject ``serialNumber`` (iSHARE) or
``organizationIdentifier``. A trust bundle as broad as eIDAS holds many CAs whose
certificates carry a ``serialNumber`` for other purposes (a person's national id, a device
number) or serve other purposes (TLS servers, code signing); neither may become a party.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs.errors import CertificateRejected
from certs.extensions import PARSE_ERRORS, find_extension
from certs.identity import ORGANIZATION_IDENTIFIER_OID, describe, is_eori
from certs.path import build_path
from certs.profile import check_common
from certs.revocation import check_revocation
from certs.trust import TrustStore

#: Extended key usages under which a key signs on behalf of its subject: RFC 9336 document
#: signing, Microsoft document signing (common on eIDAS seals), TLS client authentication
#: and S/MIME (iSHARE parties often sign with their client/seal certificate). Not
#: serverAuth, codeSigning, timeStamping, OCSPSigning, nor anyExtendedKeyUsage.
SIGNING_EKUS = frozenset(
    {
        x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36"),  # id-kp-documentSigning (RFC 9336)
        x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.12"),  # Microsoft document signing
        ExtendedKeyUsageOID.CLIENT_AUTH,
        ExtendedKeyUsageOID.EMAIL_PROTECTION,
    }
)


def verify_signing_chain(
    chain: Sequence[x509.Certificate],
    trust: TrustStore,
    crls: Sequence[x509.CertificateRevocationList],
    *,
    now: datetime,
) -> x509.Certificate:
    """The verified leaf of ``chain`` (leaf first); CertificateRejected on any failure."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not chain:
        raise CertificateRejected("no-certificate", "no signing certificate was presented")
    leaf = chain[0]
    try:
        check_common(leaf, now)
        _check_signing_leaf(leaf)
        path = build_path(leaf, trust.anchors, [*trust.intermediates, *chain[1:]], crls, now)
        check_revocation(leaf, path[1], crls, now, required=True)
    except PARSE_ERRORS as exc:
        raise CertificateRejected("malformed", f"unparseable certificate data: {exc}") from exc
    return leaf


def party_ids(cert: x509.Certificate) -> frozenset[str]:
    """Namespaced party ids (EU.EORI.*) in the subject serialNumber or organizationIdentifier.

    A bare value (``NL000000002``, ``12345``, a person's ``PNONL-...``) names no party.
    """
    values = set()
    for oid in (NameOID.SERIAL_NUMBER, ORGANIZATION_IDENTIFIER_OID):
        for attribute in cert.subject.get_attributes_for_oid(oid):
            if isinstance(attribute.value, str) and is_eori(attribute.value):
                values.add(attribute.value)
    return frozenset(values)


def _check_signing_leaf(cert: x509.Certificate) -> None:
    constraints = find_extension(cert, x509.BasicConstraints)
    if constraints is not None and constraints.ca:
        raise CertificateRejected("leaf-is-ca", f"{describe(cert)} is a CA certificate")
    usage = find_extension(cert, x509.KeyUsage)
    if usage is not None and not usage.digital_signature:
        raise CertificateRejected(
            "wrong-key-usage", f"{describe(cert)} may not make digital signatures"
        )
    purposes = find_extension(cert, x509.ExtendedKeyUsage)
    if purposes is None or not SIGNING_EKUS.intersection(purposes):
        raise CertificateRejected(
            "wrong-extended-key-usage",
            f"{describe(cert)} has no extended key usage for signing on its subject's behalf",
        )
