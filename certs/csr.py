"""Certificate signing requests: we take only the key from them, after proof of possession."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from certs.errors import PKIError
from certs.keys import PublicKey, require_strong


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    """Parse a PEM or DER CSR; PKIError ``bad-csr`` when it is neither."""
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_csr(data)
        return x509.load_der_x509_csr(data)
    except (ValueError, x509.InvalidVersion) as exc:
        raise PKIError("bad-csr", "the certificate signing request is not PEM or DER") from exc


def public_key_from_csr(csr: x509.CertificateSigningRequest) -> PublicKey:
    """The CSR's public key, once its self-signature (proof of possession) checks out.

    The subject and extensions requested are ignored: the CA decides them.
    PKIError ``bad-csr`` or ``weak-key``.
    """
    try:
        valid = csr.is_signature_valid
        key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise PKIError("bad-csr", "the certificate signing request cannot be checked") from exc
    if not valid:
        raise PKIError("bad-csr", "the certificate signing request's signature is invalid")
    require_strong(key)
    return key
