"""Small typed helpers over X.509 extensions, shared by issuance and verification."""

from __future__ import annotations

from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.utils import CryptographyDeprecationWarning

E = TypeVar("E", bound=x509.ExtensionType)

PARSE_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    CryptographyDeprecationWarning,  # non-RFC 5280 encodings, when warnings are errors
    # Likewise a Name attribute of the wrong length (a country name that is not two letters):
    # cryptography warns with a plain UserWarning (an error under -W error and in the tests).
    UserWarning,
    # cryptography 45.0 (the lowest allowed) raises KeyError for a Name attribute whose ASN.1
    # string tag it does not know (a flipped bit in the subject or issuer); later ValueError.
    KeyError,
    # A Name attribute whose string is tagged BIT STRING under any OID but
    # x500UniqueIdentifier: cryptography (50 here) raises TypeError from the attribute's
    # constructor while reading the subject (tests/certs/test_certs_properties.py).
    TypeError,
)
"""What cryptography raises when a lazily parsed certificate field turns out to be broken."""


def find_extension(cert: x509.Certificate, kind: type[E]) -> E | None:
    """The value of ``cert``'s extension of type ``kind``, or ``None`` when absent.

    Raises ``ValueError`` (from cryptography) when the extensions do not parse.
    """
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def authority_key_id(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    """An AKI pointing at ``issuer``: its SKI when it has one, else derived from its key."""
    ski = find_extension(issuer, x509.SubjectKeyIdentifier)
    if ski is None:
        ski = x509.SubjectKeyIdentifier.from_public_key(issuer.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def is_key_of(issuer: x509.Certificate, issuer_key_public: object) -> bool:
    """Whether ``issuer_key_public`` is the public key in ``issuer``."""
    return bool(issuer.public_key() == issuer_key_public)
