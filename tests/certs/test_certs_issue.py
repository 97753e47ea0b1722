"""Issuance: the profile of what we issue, and what we refuse to issue."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs import (
    PKIError,
    RevokedEntry,
    TrustStore,
    certificate_from_csr,
    create_crl,
    generate_key,
    issue_participant,
    issue_server,
    load_crls,
    public_key_from_csr,
)
from certs.issue import BACKDATE
from certs.keys import key_type_of
from tests.certs.pki_builders import NOW, ORG_ID, Pki


def _issue(pki: Pki, **overrides: object) -> x509.Certificate:
    arguments: dict[str, object] = {
        "organization_id": ORG_ID,
        "organization_name": "Acme",
        "roles": ["provider"],
        "public_key": generate_key(pki.key_type).public_key(),
        "issuer": pki.issuing,
        "issuer_key": pki.issuing_key,
        "now": NOW,
    }
    arguments.update(overrides)
    return issue_participant(**arguments)  # type: ignore[arg-type]  # test-side overrides


def test_participant_profile(pki: Pki) -> None:
    cert = _issue(pki, roles=["provider", "officer", "provider"])
    ext = cert.extensions
    assert ext.get_extension_for_class(x509.BasicConstraints).critical
    assert not ext.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = ext.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert not usage.value.key_cert_sign
    eku = ext.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    ski = ext.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    issuer_ski = pki.issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert aki.key_identifier == issuer_ski.value.digest
    assert ski.digest != aki.key_identifier
    units = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    assert units == ["officer", "provider"]
    assert cert.not_valid_before_utc == NOW - BACKDATE
    assert cert.not_valid_after_utc == NOW + timedelta(days=365)
    expected = None if pki.key_type == "ed25519" else hashes.SHA256
    algorithm = cert.signature_hash_algorithm
    assert (algorithm is None) if expected is None else isinstance(algorithm, expected)


def test_validity_is_capped_by_the_issuer(pki: Pki) -> None:
    cert = _issue(pki, days=100_000)
    assert cert.not_valid_after_utc == pki.issuing.not_valid_after_utc


def test_issuing_ca_is_pathlen_zero(pki: Pki) -> None:
    constraints = pki.issuing.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca
    assert constraints.path_length == 0
    assert TrustStore(anchors=(pki.root,)).anchors == (pki.root,)


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"roles": ["wizard"]}, "unknown-role"),
        ({"roles": []}, "unknown-role"),
        ({"organization_id": "ACME"}, "invalid-organization-identifier"),
        ({"organization_name": " "}, "invalid-organization-name"),
        ({"days": 0}, "invalid-validity"),
        ({"issuer_key": generate_key("ec-p256")}, "key-mismatch"),
        (
            {"public_key": ec.generate_private_key(ec.SECP256K1()).public_key()},
            "weak-key",
        ),
    ],
)
def test_refusals(ec_pki: Pki, overrides: dict[str, object], code: str) -> None:
    with pytest.raises(PKIError) as info:
        _issue(ec_pki, **overrides)
    assert info.value.code == code


def test_server_certificate(pki: Pki) -> None:
    cert = issue_server(
        dns_names=["gateway.example"],
        ip_addresses=["127.0.0.1", "::1"],
        public_key=generate_key(pki.key_type).public_key(),
        issuer=pki.issuing,
        issuer_key=pki.issuing_key,
        now=NOW,
    )
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["gateway.example"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    with pytest.raises(PKIError) as info:
        issue_server(
            dns_names=[],
            ip_addresses=["not-an-ip"],
            public_key=generate_key(pki.key_type).public_key(),
            issuer=pki.issuing,
            issuer_key=pki.issuing_key,
            now=NOW,
        )
    assert info.value.code == "invalid-ip-address"


def _csr(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> x509.CertificateSigningRequest:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "requested, ignored")])
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())


def test_csr_key_is_used_and_its_subject_ignored(ec_pki: Pki) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = certificate_from_csr(
        _csr(key),
        organization_id=ORG_ID,
        organization_name="Acme",
        roles=["consumer"],
        issuer=ec_pki.issuing,
        issuer_key=ec_pki.issuing_key,
        now=NOW,
    )
    assert cert.public_key() == key.public_key()
    assert "requested" not in cert.subject.rfc4514_string()


def test_csr_with_a_broken_signature_is_refused() -> None:
    der = bytearray(_csr(ec.generate_private_key(ec.SECP256R1())).public_bytes(Encoding.DER))
    der[-1] ^= 0x01  # the last byte belongs to the signature's s value
    with pytest.raises(PKIError) as info:
        public_key_from_csr(x509.load_der_x509_csr(bytes(der)))
    assert info.value.code == "bad-csr"


def test_csr_with_a_weak_key_is_refused() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 -- the attack under test
    with pytest.raises(PKIError) as info:
        public_key_from_csr(_csr(weak))
    assert info.value.code == "weak-key"


def test_crl_round_trip(pki: Pki) -> None:
    entries = [RevokedEntry(7, NOW, x509.ReasonFlags.key_compromise), RevokedEntry(9, NOW)]
    crl = create_crl(
        issuer=pki.issuing, issuer_key=pki.issuing_key, revoked=entries, now=NOW, crl_number=42
    )
    pem = crl.public_bytes(Encoding.PEM)
    (loaded,) = load_crls(pem)
    assert loaded.is_signature_valid(pki.issuing.public_key())
    assert loaded.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 42
    revoked = loaded.get_revoked_certificate_by_serial_number(7)
    assert revoked is not None
    reason = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.key_compromise
    assert loaded.next_update_utc == NOW + timedelta(days=7)
    assert load_crls(b"") == []
    with pytest.raises(PKIError):
        load_crls(b"garbage")


def test_key_types(pki: Pki) -> None:
    assert key_type_of(generate_key(pki.key_type)) == pki.key_type
    with pytest.raises(PKIError) as info:
        generate_key("rsa-4096")  # type: ignore[arg-type]  # the mistake under test
    assert info.value.code == "unknown-key-type"
