"""Known answers for organisation identifiers, participant URIs, thumbprints and identities."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from certs import (
    ORGANIZATION_IDENTIFIER_OID,
    ROLES,
    CertificateRejected,
    PKIError,
    identity_of,
    participant_uri,
    thumbprint_sha256,
    validate_organization_id,
)
from tests.certs.pki_builders import (
    ORG_ID,
    Pki,
    build_cert,
    leaf_extensions,
    name,
    participant_name,
)

VALID = [
    "EU.EORI.NL000000001",
    "EU.EORI.DE1",
    "EU.EORI.NL123456789012345",
    "NTRNL-12345678",
    "VATNL-NL123456789B01",
    "LEIXG-5493001KJTIIGC8Y1R12",
    "PSDBE-NBB-0123.456.789",
    "KV:NL-12345678",  # national scheme: two letters and a colon as the type
]
INVALID = [
    "",
    "EU.EORI.NL",
    "EU.EORI.NL1234567890123456",  # 16 characters after the country
    "EU.EORI.nl000000001",
    "eu.eori.NL000000001",
    "EU.EORI.NL000000001 ",
    " NTRNL-12345678",
    "NTRNL12345678",
    "XYZNL-12345",  # not an ETSI identity type
    "NTRNLD-12345",
    "NTRNL-",
    "NTRNL-123\n456",
    "NTRNL-12/34",
    "NTRNL-a b",
    "urn:sluis:participant:EU.EORI.NL000000001",
    "NTRNL-" + "1" * 65,
]


@pytest.mark.parametrize("value", VALID)
def test_valid_organization_identifiers(value: str) -> None:
    assert validate_organization_id(value) == value


@pytest.mark.parametrize("value", INVALID)
def test_invalid_organization_identifiers(value: str) -> None:
    with pytest.raises(PKIError) as info:
        validate_organization_id(value)
    assert info.value.code == "invalid-organization-identifier"
    assert "\n" not in info.value.detail


def test_participant_uri() -> None:
    assert participant_uri("EU.EORI.NL000000001") == "urn:sluis:participant:EU.EORI.NL000000001"
    with pytest.raises(PKIError):
        participant_uri("nonsense")


def test_organization_identifier_oid_and_roles() -> None:
    assert ORGANIZATION_IDENTIFIER_OID.dotted_string == "2.5.4.97"
    assert frozenset({"provider", "consumer", "officer", "operator"}) == ROLES


def test_thumbprint_known_answer() -> None:
    """A deterministic Ed25519 certificate: its RFC 8705 x5t#S256 never changes."""
    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("KAT"))
        .issuer_name(name("KAT"))
        .public_key(key.public_key())
        .serial_number(0x5155)
        .not_valid_before(datetime(2025, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2035, 1, 1, tzinfo=UTC))
        .sign(key, None)
    )
    # SHA-256 of the DER: d0bbba9cc1dca9f5a0bc88ee20d4ec478f0179ef0fab8bb63289281def606a94
    assert thumbprint_sha256(cert) == "0Lu6nMHcqfWgvIjuINTsR48Bee8Pq4u2MokoHe9gapQ"


def test_identity_of_keeps_only_known_roles(ec_pki: Pki) -> None:
    key = ec_pki.issuing_key.public_key()
    subject = x509.Name(
        [
            *participant_name(),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "wizard"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "officer"),
        ]
    )
    cert = build_cert(
        subject=subject,
        public_key=key,
        issuer=ec_pki.issuing,
        signing_key=ec_pki.issuing_key,
        extensions=leaf_extensions(key),
    )
    assert identity_of(cert).roles == frozenset({"consumer", "officer"})


def test_identity_needs_a_single_organization_name(ec_pki: Pki) -> None:
    key = ec_pki.issuing_key.public_key()
    subject = x509.Name([a for a in participant_name() if a.oid != NameOID.ORGANIZATION_NAME])
    cert = build_cert(
        subject=subject,
        public_key=key,
        issuer=ec_pki.issuing,
        signing_key=ec_pki.issuing_key,
        extensions=leaf_extensions(key),
    )
    with pytest.raises(CertificateRejected) as info:
        identity_of(cert)
    assert info.value.code == "missing-organization-name"


def test_two_participant_uris_are_refused(ec_pki: Pki) -> None:
    key = ec_pki.issuing_key.public_key()
    uris = [participant_uri(ORG_ID), participant_uri("EU.EORI.NL000000002")]
    san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in uris])
    extensions = [(e, c) for e, c in leaf_extensions(key) if not isinstance(e, type(san))]
    cert = build_cert(
        subject=participant_name(),
        public_key=key,
        issuer=ec_pki.issuing,
        signing_key=ec_pki.issuing_key,
        extensions=[*extensions, (san, False)],
    )
    with pytest.raises(CertificateRejected) as info:
        identity_of(cert)
    assert info.value.code == "missing-participant-uri"


def test_error_detail_is_one_printable_line(ec_pki: Pki) -> None:
    key = ec_pki.issuing_key.public_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evil\nInjected: yes\x1b[31m")])
    cert = build_cert(
        subject=subject,
        public_key=key,
        issuer=ec_pki.issuing,
        signing_key=ec_pki.issuing_key,
        extensions=leaf_extensions(key),
    )
    with pytest.raises(CertificateRejected) as info:
        identity_of(cert)
    assert info.value.detail.isprintable()
