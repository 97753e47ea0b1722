"""verify(): happy paths for both key types and the leaf-profile rejections."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs import (
    CertificateRejected,
    TrustStore,
    load_pem_chain,
    participant_uri,
    thumbprint_sha256,
)
from tests.certs.pki_builders import (
    NOW,
    ORG_ID,
    ORG_NAME,
    Pki,
    build_cert,
    key_usage,
    leaf_extensions,
    participant_name,
)


def rejected(pki: Pki, chain: list[x509.Certificate], **kwargs: object) -> str:
    """The rejection code verify() raises for ``chain``."""
    with pytest.raises(CertificateRejected) as info:
        pki.verify(chain, **kwargs)  # type: ignore[arg-type]  # crls/trust/now passthrough
    return info.value.code


def test_happy_path_returns_the_identity(pki: Pki) -> None:
    leaf = pki.leaf(roles=["provider", "consumer"])
    identity = pki.verify([leaf])
    assert identity.organization_id == ORG_ID
    assert identity.organization_name == ORG_NAME
    assert identity.participant_uri == f"urn:sluis:participant:{ORG_ID}"
    assert identity.roles == frozenset({"provider", "consumer"})
    assert identity.thumbprint_sha256 == thumbprint_sha256(leaf)
    assert identity.serial_number == leaf.serial_number
    assert identity.issuer == "CN=Test Issuing CA"
    assert "2.5.4.97=EU.EORI.NL000000001" in identity.subject
    assert identity.not_after == leaf.not_valid_after_utc
    assert identity.not_after.utcoffset() == timedelta(0)


def test_client_may_offer_the_intermediate(pki: Pki) -> None:
    leaf = pki.leaf()
    only_root = TrustStore(anchors=(pki.root,))
    assert pki.verify([leaf, pki.issuing], trust=only_root).organization_id == ORG_ID
    assert rejected(pki, [leaf], trust=only_root) == "untrusted-issuer"


def test_validity_boundaries_are_inclusive(pki: Pki) -> None:
    leaf = pki.raw_leaf(not_before=NOW, not_after=NOW + timedelta(hours=1))
    pki.verify([leaf], now=NOW)
    pki.verify([leaf], now=NOW + timedelta(hours=1))


def test_empty_chain(pki: Pki) -> None:
    assert rejected(pki, []) == "no-certificate"


def test_expired(pki: Pki) -> None:
    leaf = pki.raw_leaf(not_before=NOW - timedelta(days=30), not_after=NOW - timedelta(seconds=1))
    assert rejected(pki, [leaf]) == "expired"


def test_not_yet_valid(pki: Pki) -> None:
    leaf = pki.raw_leaf(not_before=NOW + timedelta(seconds=1))
    assert rejected(pki, [leaf]) == "not-yet-valid"


Exts = list[tuple[x509.ExtensionType, bool]]


def _replace(exts: Exts, new: x509.ExtensionType, *, critical: bool) -> Exts:
    return [(e, c) for e, c in exts if type(e) is not type(new)] + [(new, critical)]


def _without(exts: Exts, kind: type[x509.ExtensionType]) -> Exts:
    return [(e, c) for e, c in exts if not isinstance(e, kind)]


def test_server_auth_only_is_not_a_client(pki: Pki) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    leaf = pki.raw_leaf(_replace(leaf_extensions(key), eku, critical=False))
    assert rejected(pki, [leaf]) == "wrong-extended-key-usage"
    leaf = pki.raw_leaf(_without(leaf_extensions(key), x509.ExtendedKeyUsage))
    assert rejected(pki, [leaf]) == "wrong-extended-key-usage"


def test_key_usage_needs_digital_signature(pki: Pki) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    no_sign = x509.KeyUsage(False, False, True, False, False, False, False, False, False)
    leaf = pki.raw_leaf(_replace(leaf_extensions(key), no_sign, critical=True))
    assert rejected(pki, [leaf]) == "wrong-key-usage"
    leaf = pki.raw_leaf(_without(leaf_extensions(key), x509.KeyUsage))
    assert rejected(pki, [leaf]) == "wrong-key-usage"


def test_a_ca_certificate_is_not_a_client(pki: Pki) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    ca_flag = x509.BasicConstraints(ca=True, path_length=None)
    leaf = pki.raw_leaf(_replace(leaf_extensions(key), ca_flag, critical=True))
    assert rejected(pki, [leaf]) == "leaf-is-ca"
    assert rejected(pki, [pki.issuing]) == "leaf-is-ca"


def test_missing_and_invalid_organization_identifier(pki: Pki) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG_NAME)])
    leaf = build_cert(
        subject=subject,
        public_key=key,
        issuer=pki.issuing,
        signing_key=pki.issuing_key,
        extensions=leaf_extensions(key),
    )
    assert rejected(pki, [leaf]) == "missing-organization-identifier"
    bogus = build_cert(
        subject=participant_name(org_id="ACME"),
        public_key=key,
        issuer=pki.issuing,
        signing_key=pki.issuing_key,
        extensions=leaf_extensions(key),
    )
    assert rejected(pki, [bogus]) == "invalid-organization-identifier"


def test_participant_uri_must_match_the_organization(pki: Pki) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    other = x509.SubjectAlternativeName(
        [x509.UniformResourceIdentifier(participant_uri("EU.EORI.NL999999999"))]
    )
    leaf = pki.raw_leaf(_replace(leaf_extensions(key), other, critical=False))
    assert rejected(pki, [leaf]) == "missing-participant-uri"
    leaf = pki.raw_leaf(_without(leaf_extensions(key), x509.SubjectAlternativeName))
    assert rejected(pki, [leaf]) == "missing-participant-uri"


def test_unknown_critical_extension(pki: Pki) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    odd = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")
    leaf = pki.raw_leaf([*leaf_extensions(key), (odd, True)])
    assert rejected(pki, [leaf]) == "unknown-critical-extension"
    harmless = pki.raw_leaf([*leaf_extensions(key), (odd, False)])
    assert pki.verify([harmless]).organization_id == ORG_ID


@pytest.mark.parametrize(
    "make_key",
    [
        # S505: the weak key is the attack under test
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key(),  # noqa: S505
        lambda: ec.generate_private_key(ec.SECP256K1()).public_key(),
    ],
    ids=["rsa-1024", "secp256k1"],
)
def test_weak_leaf_key(pki: Pki, make_key: Callable[[], CertificatePublicKeyTypes]) -> None:
    key = make_key()
    leaf = build_cert(
        subject=participant_name(),
        public_key=key,
        issuer=pki.issuing,
        signing_key=pki.issuing_key,
        extensions=leaf_extensions(key),
    )
    assert rejected(pki, [leaf]) == "weak-key"


def test_rsa_2048_leaf_from_an_ec_ca_is_fine(ec_pki: Pki) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    leaf = build_cert(
        subject=participant_name(),
        public_key=key,
        issuer=ec_pki.issuing,
        signing_key=ec_pki.issuing_key,
        extensions=leaf_extensions(key),
    )
    assert ec_pki.verify([leaf]).organization_id == ORG_ID


def test_unlisted_signature_algorithm_is_refused(ec_pki: Pki) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(participant_name())
        .issuer_name(ec_pki.issuing.subject)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
    )
    for extension, critical in leaf_extensions(key):
        builder = builder.add_extension(extension, critical=critical)
    leaf = builder.sign(ec_pki.issuing_key, hashes.SHA224())  # cryptography refuses SHA-1 now
    assert rejected(ec_pki, [leaf]) == "weak-signature"


def test_load_pem_chain_rejects_garbage() -> None:
    for data in (
        b"",
        b"not a certificate",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ):
        with pytest.raises(CertificateRejected) as info:
            load_pem_chain(data)
        assert info.value.code == "malformed"


def test_naive_now_is_a_programming_error(pki: Pki) -> None:
    with pytest.raises(ValueError, match="timezone"):
        pki.verify([pki.leaf()], now=NOW.replace(tzinfo=None))


def test_key_usage_helper_is_consistent() -> None:
    assert key_usage(digital_signature=True).digital_signature
