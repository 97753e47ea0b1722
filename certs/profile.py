"""Per-certificate rules of the Sluis client-certificate profile (RFC 5280 subset).

Each check raises :class:`~certs.errors.CertificateRejected` with a stable code.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, SignatureAlgorithmOID

from certs.errors import CertificateRejected
from certs.extensions import find_extension
from certs.identity import describe
from certs.keys import key_weakness

UNDERSTOOD_EXTENSIONS = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    }
)
"""Extensions we process; any other extension marked critical rejects the certificate."""

STRONG_SIGNATURES = frozenset(
    {
        SignatureAlgorithmOID.ECDSA_WITH_SHA256,
        SignatureAlgorithmOID.ECDSA_WITH_SHA384,
        SignatureAlgorithmOID.ECDSA_WITH_SHA512,
        SignatureAlgorithmOID.RSA_WITH_SHA256,
        SignatureAlgorithmOID.RSA_WITH_SHA384,
        SignatureAlgorithmOID.RSA_WITH_SHA512,
        SignatureAlgorithmOID.ED25519,
    }
)
"""Signature algorithms we accept on a certificate (no SHA-1, no MD5)."""


def check_common(cert: x509.Certificate, now: datetime) -> None:
    """Validity window, key strength and critical extensions: for every cert on a path."""
    if now < cert.not_valid_before_utc:
        raise CertificateRejected(
            "not-yet-valid", f"{describe(cert)} is valid from {cert.not_valid_before_utc}"
        )
    if now > cert.not_valid_after_utc:
        raise CertificateRejected(
            "expired", f"{describe(cert)} expired at {cert.not_valid_after_utc}"
        )
    weakness = key_weakness(cert.public_key())
    if weakness is not None:
        raise CertificateRejected("weak-key", f"{describe(cert)}: {weakness}")
    for extension in cert.extensions:
        if extension.critical and extension.oid not in UNDERSTOOD_EXTENSIONS:
            raise CertificateRejected(
                "unknown-critical-extension",
                f"{describe(cert)} has critical extension {extension.oid.dotted_string}",
            )


def check_signature_algorithm(cert: x509.Certificate) -> None:
    """Reject certificates signed with an algorithm outside :data:`STRONG_SIGNATURES`, and
    signature BIT STRINGs with unused bits (a re-encoding that would change the thumbprint
    of a still-valid certificate)."""
    der = cert.public_bytes(Encoding.DER)
    signature = cert.signature
    if not der.endswith(signature) or der[-len(signature) - 1] != 0:
        raise CertificateRejected(
            "malformed", f"{describe(cert)} has a non-canonical signature encoding"
        )
    if cert.signature_algorithm_oid not in STRONG_SIGNATURES:
        raise CertificateRejected(
            "weak-signature",
            f"{describe(cert)} is signed with {cert.signature_algorithm_oid.dotted_string}",
        )


def check_issuer(cert: x509.Certificate, intermediates_below: int) -> None:
    """An issuer must be a CA allowed to sign certificates, within its path length."""
    constraints = find_extension(cert, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        raise CertificateRejected("not-a-ca", f"{describe(cert)} is not a CA certificate")
    usage = find_extension(cert, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        raise CertificateRejected(
            "wrong-key-usage", f"{describe(cert)} lacks keyCertSign in its key usage"
        )
    if constraints.path_length is not None and intermediates_below > constraints.path_length:
        raise CertificateRejected(
            "path-too-long",
            f"{describe(cert)} allows {constraints.path_length} intermediate CA(s) below it, "
            f"the path has {intermediates_below}",
        )


def check_leaf(cert: x509.Certificate) -> None:
    """A client certificate: not a CA, digitalSignature, clientAuth."""
    constraints = find_extension(cert, x509.BasicConstraints)
    if constraints is not None and constraints.ca:
        raise CertificateRejected(
            "leaf-is-ca", f"{describe(cert)} is a CA certificate, not a client certificate"
        )
    usage = find_extension(cert, x509.KeyUsage)
    if usage is None or not usage.digital_signature or usage.key_cert_sign:
        raise CertificateRejected(
            "wrong-key-usage",
            f"{describe(cert)} needs key usage digitalSignature (and not keyCertSign)",
        )
    extended = find_extension(cert, x509.ExtendedKeyUsage)
    if extended is None or ExtendedKeyUsageOID.CLIENT_AUTH not in extended:
        raise CertificateRejected(
            "wrong-extended-key-usage", f"{describe(cert)} lacks extended key usage clientAuth"
        )
