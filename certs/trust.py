"""Loading trust material and presented chains from PEM."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from certs.errors import CertificateRejected, PKIError


@dataclass(frozen=True)
class TrustStore:
    """The roots we trust and the issuing CAs we know.

    ``anchors`` are self-signed roots; ``intermediates`` help build paths but are not
    trusted on their own: every path must end at an anchor.
    """

    anchors: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()

    @classmethod
    def from_pem(cls, data: bytes) -> TrustStore:
        """Split a PEM bundle: self-signed certificates become anchors, the rest intermediates.

        PKIError ``invalid-trust-bundle`` when it is unreadable or holds no self-signed root.
        """
        try:
            certs = x509.load_pem_x509_certificates(data)
        except (ValueError, x509.InvalidVersion) as exc:
            raise PKIError("invalid-trust-bundle", f"unreadable trust bundle: {exc}") from exc
        anchors = tuple(c for c in certs if is_self_signed(c))
        if not anchors:
            raise PKIError("invalid-trust-bundle", "the trust bundle holds no self-signed root")
        return cls(anchors, tuple(c for c in certs if c not in anchors))


def is_self_signed(cert: x509.Certificate) -> bool:
    """Whether ``cert`` names itself as issuer and its signature verifies under its own key."""
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def load_pem_chain(data: bytes) -> list[x509.Certificate]:
    """The certificates of a PEM chain, leaf first; CertificateRejected ``malformed`` if none."""
    try:
        return x509.load_pem_x509_certificates(data)
    except (ValueError, x509.InvalidVersion) as exc:
        raise CertificateRejected("malformed", "the certificate chain is not valid PEM") from exc
