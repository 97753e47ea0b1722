"""Who a participant certificate names: organisation identifier, participant URI, roles.

Pure functions over :class:`cryptography.x509.Certificate`; no IO, no clock.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from certs.errors import CertificateRejected, PKIError
from certs.extensions import PARSE_ERRORS

ORGANIZATION_IDENTIFIER_OID = x509.ObjectIdentifier("2.5.4.97")
"""X.520 ``organizationIdentifier``: the subject attribute holding a participant's id."""

ROLES = frozenset({"provider", "consumer", "officer", "operator"})
"""The roles a participant certificate can carry, one subject ``OU`` per role."""

PARTICIPANT_URI_PREFIX = "urn:sluis:participant:"

# iSHARE / EORI: EU.EORI.<ISO 3166 country><1..15 upper-case alphanumerics>.
_EORI = re.compile(r"EU\.EORI\.[A-Z]{2}[A-Z0-9]{1,15}")
# ETSI EN 319 412-1 §5.1.4: <VAT|NTR|PSD|LEI or "XX:" national scheme><country>-<id>.
_ETSI = re.compile(r"(?:VAT|NTR|PSD|LEI|[A-Z]{2}:)[A-Z]{2}-[A-Za-z0-9][A-Za-z0-9.\-]{0,63}")
ORGANIZATION_ID_PATTERN = f"^(?:{_EORI.pattern}|{_ETSI.pattern})$"
"""Both forms as one regular expression (the OpenAPI document's ``pattern``)."""
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")
_MAX_DESCRIBE = 200


def validate_organization_id(value: str) -> str:
    """Return ``value`` unchanged if it is an EORI or ETSI organisation identifier.

    Raises :class:`PKIError` ``invalid-organization-identifier`` otherwise.
    """
    if _EORI.fullmatch(value) or _ETSI.fullmatch(value):
        return value
    shown = _UNPRINTABLE.sub("?", value[:80])
    raise PKIError(
        "invalid-organization-identifier",
        f"{shown!r} is not an organisation identifier "
        "(expected EU.EORI.<CC><id> or an ETSI form such as NTRNL-12345678)",
    )


def is_eori(value: str) -> bool:
    """Whether ``value`` is an iSHARE/EORI party id (``EU.EORI.<CC><id>``), namespace included."""
    return _EORI.fullmatch(value) is not None


def participant_uri(organization_id: str) -> str:
    """The SAN URI that binds a certificate to ``organization_id``."""
    return PARTICIPANT_URI_PREFIX + validate_organization_id(organization_id)


def thumbprint_sha256(cert: x509.Certificate) -> str:
    """RFC 8705 ``x5t#S256``: base64url (no padding) of SHA-256 over the DER certificate."""
    digest = hashlib.sha256(cert.public_bytes(Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def describe(cert: x509.Certificate) -> str:
    """A one-line, printable rendering of the subject, safe for logs and error details."""
    text = _UNPRINTABLE.sub("?", cert.subject.rfc4514_string()) or "<empty subject>"
    if len(text) > _MAX_DESCRIBE:
        text = text[:_MAX_DESCRIBE] + "..."
    return f"'{text}'"


@dataclass(frozen=True, slots=True)
class CertificateIdentity:
    """The participant a (verified) certificate speaks for."""

    organization_id: str
    organization_name: str
    participant_uri: str
    roles: frozenset[str]
    thumbprint_sha256: str
    serial_number: int
    subject: str
    issuer: str
    not_after: datetime


def identity_of(cert: x509.Certificate) -> CertificateIdentity:
    """Read the :class:`CertificateIdentity` from a certificate, without verifying it.

    Raises :class:`CertificateRejected` (``missing-organization-identifier``,
    ``invalid-organization-identifier``, ``missing-organization-name``,
    ``missing-participant-uri``) when the subject or SAN does not name a participant, and
    ``malformed`` when the certificate does not parse.
    """
    try:
        return _identity_of(cert)
    except PARSE_ERRORS as exc:
        raise CertificateRejected("malformed", f"unparseable certificate data: {exc}") from exc


def _identity_of(cert: x509.Certificate) -> CertificateIdentity:
    organization_id = _organization_id(cert)
    organization_name = _single_attribute(cert, NameOID.ORGANIZATION_NAME)
    if not organization_name:
        raise CertificateRejected(
            "missing-organization-name", f"{describe(cert)} has no single subject O"
        )
    uri = _participant_uri(cert, organization_id)
    units = {
        str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    }
    return CertificateIdentity(
        organization_id=organization_id,
        organization_name=organization_name,
        participant_uri=uri,
        roles=frozenset(units & ROLES),
        thumbprint_sha256=thumbprint_sha256(cert),
        serial_number=cert.serial_number,
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_after=cert.not_valid_after_utc,
    )


def _single_attribute(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    values = cert.subject.get_attributes_for_oid(oid)
    if len(values) != 1:
        return None
    return str(values[0].value)


def _organization_id(cert: x509.Certificate) -> str:
    if not cert.subject.get_attributes_for_oid(ORGANIZATION_IDENTIFIER_OID):
        raise CertificateRejected(
            "missing-organization-identifier",
            f"{describe(cert)} has no subject organizationIdentifier (2.5.4.97)",
        )
    value = _single_attribute(cert, ORGANIZATION_IDENTIFIER_OID)
    try:
        return validate_organization_id(value or "")
    except PKIError as exc:
        raise CertificateRejected(
            "invalid-organization-identifier",
            f"{describe(cert)}: organizationIdentifier must be a single valid identifier",
        ) from exc


def _participant_uri(cert: x509.Certificate, organization_id: str) -> str:
    expected = PARTICIPANT_URI_PREFIX + organization_id
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        uris: list[str] = []
    else:
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    ours = [u for u in uris if u.startswith(PARTICIPANT_URI_PREFIX)]
    if ours != [expected]:
        raise CertificateRejected(
            "missing-participant-uri",
            f"{describe(cert)} must carry exactly one SAN URI, {expected!r}",
        )
    return expected
