"""Hypothesis properties: tampering never verifies; identities round-trip through issuance."""

from __future__ import annotations

import string

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning
from hypothesis import given, settings
from hypothesis import strategies as st

from certs import (
    CertificateRejected,
    PKIError,
    identity_of,
    issue_participant,
    participant_uri,
    validate_organization_id,
    verify,
)
from tests.certs.pki_builders import NOW, Pki

PKIS = {kind: Pki.create(kind) for kind in ("ec-p256", "ed25519")}
LEAVES = {kind: pki.leaf() for kind, pki in PKIS.items()}
EORI = st.from_regex(r"EU\.EORI\.[A-Z]{2}[A-Z0-9]{1,15}", fullmatch=True)
ETSI = st.from_regex(r"(VAT|NTR|PSD|LEI)[A-Z]{2}-[A-Za-z0-9][A-Za-z0-9.\-]{0,20}", fullmatch=True)


def test_untampered_leaves_verify() -> None:
    for kind, pki in PKIS.items():
        assert pki.verify([LEAVES[kind]]).serial_number == LEAVES[kind].serial_number


def _verifies(pki: Pki, der: bytes) -> bool:
    try:
        tampered = x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion, CryptographyDeprecationWarning):
        return False  # refused at parse time (pytest turns the warning into an error)
    try:
        verify([tampered], pki.trust(), [pki.crl()], now=NOW)
    except CertificateRejected:
        return False
    return True


@pytest.mark.parametrize("kind", sorted(PKIS))
def test_no_single_bit_flip_in_the_leaf_verifies(kind: str) -> None:
    """Exhaustive: every bit of the leaf's DER, flipped one at a time."""
    der = LEAVES[kind].public_bytes(Encoding.DER)
    accepted = []
    for index in range(len(der) * 8):
        flipped = bytearray(der)
        flipped[index // 8] ^= 1 << (index % 8)
        if _verifies(PKIS[kind], bytes(flipped)):
            accepted.append(index)
    assert accepted == []


@pytest.mark.parametrize("kind", sorted(PKIS))
def test_a_subject_string_retagged_as_bit_string_is_malformed(kind: str) -> None:
    """Found by the property below: cryptography raises TypeError (not ValueError) for a
    Name attribute whose string is tagged BIT STRING under any OID but x500UniqueIdentifier;
    it escaped the verifier (a 500 where a forwarded certificate is read) instead of a
    refusal."""
    der = LEAVES[kind].public_bytes(Encoding.DER)
    name = LEAVES[kind].subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    encoded = str(name).encode()
    tags = [tag for tag in (0x0C, 0x13) if bytes([tag, len(encoded)]) + encoded in der]
    assert tags, "the common name's UTF8String or PrintableString"
    retagged = der.replace(
        bytes([tags[0], len(encoded)]) + encoded, bytes([0x03, len(encoded)]) + encoded, 1
    )
    with pytest.raises(CertificateRejected) as refused:
        verify([x509.load_der_x509_certificate(retagged)], PKIS[kind].trust(), [], now=NOW)
    assert refused.value.code == "malformed"


@pytest.mark.parametrize("kind", sorted(PKIS))
def test_a_subject_attribute_turned_into_a_country_name_is_refused(kind: str) -> None:
    """The O attribute's OID changed to countryName's: cryptography warns that a country
    name has two letters (a UserWarning, an error under this suite's filters, as in any
    deployment that runs with -W error): a refusal, never an escaped warning."""
    der = LEAVES[kind].public_bytes(Encoding.DER)
    organization, country = bytes.fromhex("060355040a"), bytes.fromhex("0603550406")
    assert der.count(organization) == 1
    renamed = der.replace(organization, country)
    with pytest.raises(CertificateRejected) as refused:
        verify([x509.load_der_x509_certificate(renamed)], PKIS[kind].trust(), [], now=NOW)
    assert refused.value.code == "malformed"


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(sorted(PKIS)), data=st.binary(min_size=1, max_size=64), at=st.integers(0)
)
def test_overwriting_bytes_in_the_leaf_never_verifies(kind: str, data: bytes, at: int) -> None:
    der = bytearray(LEAVES[kind].public_bytes(Encoding.DER))
    start = at % len(der)
    patched = bytes(der[:start] + data + der[start + len(data) :])[: len(der)]
    if patched != bytes(der):
        assert not _verifies(PKIS[kind], patched)


@settings(max_examples=25, deadline=None)
@given(
    organization_id=st.one_of(EORI, ETSI),
    roles=st.sets(st.sampled_from(["provider", "consumer", "officer", "operator"]), min_size=1),
)
def test_identity_round_trips_through_issuance(organization_id: str, roles: set[str]) -> None:
    pki = PKIS["ed25519"]
    cert = issue_participant(
        organization_id=organization_id,
        organization_name="Round Trip BV",
        roles=roles,
        public_key=pki.root_key.public_key(),
        issuer=pki.issuing,
        issuer_key=pki.issuing_key,
        now=NOW,
    )
    identity = identity_of(cert)
    assert identity.organization_id == organization_id
    assert identity.roles == roles
    assert identity.participant_uri == participant_uri(organization_id)


@given(st.text(alphabet=string.printable, max_size=40))
def test_validation_accepts_only_the_two_forms(value: str) -> None:
    if value.startswith("EU.EORI.") or value[5:6] == "-":
        return  # may or may not be valid; the known-answer tests cover these shapes
    with pytest.raises(PKIError) as info:
        validate_organization_id(value)
    assert info.value.code == "invalid-organization-identifier"
