"""Issue 18: the signing-certificate profile (``certs.signing``), each refusal word for word.

A certificate that signs an iSHARE client assertion: the path, CRL and key rules of every
certificate, a leaf that is no CA, may make digital signatures and carries one of the
extended key usages for signing on its subject's behalf; its party is a namespaced EORI in
the subject ``serialNumber`` or ``organizationIdentifier``. Built here with EC keys, without
the assertion around it (the iSHARE tests in ``tests/gateway`` make RSA keys per module).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs import ORGANIZATION_IDENTIFIER_OID, CertificateRejected, TrustStore, generate_key
from certs.identity import describe
from certs.signing import SIGNING_EKUS, party_ids, verify_signing_chain
from tests.certs.pki_builders import NOW, Extensions, Pki, build_cert, key_usage, name

DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
MS_DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.12")


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki.create()


def _extensions(
    *,
    ekus: Sequence[x509.ObjectIdentifier] | None = (DOCUMENT_SIGNING,),
    ca: bool | None = False,
    digital_signature: bool | None = True,
) -> Extensions:
    out: Extensions = []
    if ca is not None:
        out.append((x509.BasicConstraints(ca=ca, path_length=None), True))
    if digital_signature is not None:
        out.append((key_usage(digital_signature=digital_signature), True))
    if ekus is not None:
        out.append((x509.ExtendedKeyUsage(list(ekus)), False))
    return out


def _leaf(
    pki: Pki,
    extensions: Extensions | None = None,
    subject: x509.Name | None = None,
    **validity: object,
) -> x509.Certificate:
    key = generate_key("ec-p256")
    return build_cert(
        subject=subject or name("Signer"),
        public_key=key.public_key(),
        issuer=pki.issuing,
        signing_key=pki.issuing_key,
        extensions=_extensions() if extensions is None else extensions,
        **validity,  # type: ignore[arg-type]
    )


def _verify(
    pki: Pki,
    chain: Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList] | None = None,
    trust: TrustStore | None = None,
) -> x509.Certificate:
    return verify_signing_chain(
        chain, trust or pki.trust(), [pki.crl()] if crls is None else crls, now=NOW
    )


def _refusal(pki: Pki, chain: Sequence[x509.Certificate], **kw: object) -> tuple[str, str]:
    with pytest.raises(CertificateRejected) as refused:
        _verify(pki, chain, **kw)  # type: ignore[arg-type]
    return refused.value.code, refused.value.detail


def test_the_signing_purposes_exactly() -> None:
    assert {
        DOCUMENT_SIGNING,
        MS_DOCUMENT_SIGNING,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        ExtendedKeyUsageOID.EMAIL_PROTECTION,
    } == SIGNING_EKUS


@pytest.mark.parametrize(
    "eku",
    [
        DOCUMENT_SIGNING,
        MS_DOCUMENT_SIGNING,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        ExtendedKeyUsageOID.EMAIL_PROTECTION,
    ],
)
def test_a_leaf_for_signing_passes(pki: Pki, eku: x509.ObjectIdentifier) -> None:
    leaf = _leaf(pki, _extensions(ekus=[ExtendedKeyUsageOID.SERVER_AUTH, eku]))
    assert _verify(pki, [leaf]) is leaf


def test_key_usage_and_basic_constraints_may_be_absent(pki: Pki) -> None:
    leaf = _leaf(pki, _extensions(ca=None, digital_signature=None))
    assert _verify(pki, [leaf]) is leaf


@pytest.mark.parametrize(
    "ekus",
    [
        None,
        [ExtendedKeyUsageOID.SERVER_AUTH],
        [ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.TIME_STAMPING],
        [ExtendedKeyUsageOID.OCSP_SIGNING],
        [ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE],
    ],
)
def test_a_leaf_without_a_signing_purpose_is_refused(
    pki: Pki, ekus: list[x509.ObjectIdentifier] | None
) -> None:
    leaf = _leaf(pki, _extensions(ekus=ekus))
    assert _refusal(pki, [leaf]) == (
        "wrong-extended-key-usage",
        f"{describe(leaf)} has no extended key usage for signing on its subject's behalf",
    )


def test_a_ca_certificate_is_no_signing_leaf(pki: Pki) -> None:
    leaf = _leaf(pki, _extensions(ca=True))
    assert _refusal(pki, [leaf]) == ("leaf-is-ca", f"{describe(leaf)} is a CA certificate")


def test_a_key_that_may_not_sign_is_refused(pki: Pki) -> None:
    leaf = _leaf(pki, _extensions(digital_signature=False))
    assert _refusal(pki, [leaf]) == (
        "wrong-key-usage",
        f"{describe(leaf)} may not make digital signatures",
    )


def test_the_common_checks_come_first(pki: Pki) -> None:
    """An expired CA leaf is refused as expired: the validity is checked before the profile."""
    leaf = _leaf(pki, _extensions(ca=True), not_after=NOW - timedelta(seconds=1))
    code, _ = _refusal(pki, [leaf])
    assert code == "expired"


def test_no_chain_and_a_naive_clock(pki: Pki) -> None:
    assert _refusal(pki, []) == ("no-certificate", "no signing certificate was presented")
    with pytest.raises(ValueError, match=r"^now must be timezone-aware$"):
        verify_signing_chain([_leaf(pki)], pki.trust(), [], now=NOW.replace(tzinfo=None))


def test_the_chain_supplies_intermediates(pki: Pki) -> None:
    leaf = _leaf(pki)
    only_root = TrustStore(anchors=(pki.root,), intermediates=())
    assert _verify(pki, [leaf, pki.issuing], trust=only_root) is leaf
    code, _ = _refusal(pki, [leaf], trust=only_root)
    assert code == "untrusted-issuer"


def test_a_signing_leaf_needs_a_crl_and_must_not_be_revoked(pki: Pki) -> None:
    leaf = _leaf(pki)
    assert _refusal(pki, [leaf], crls=[]) == (
        "crl-unavailable",
        f"no CRL from {describe(pki.issuing)} for {describe(leaf)}",
    )
    assert _refusal(pki, [leaf], crls=[pki.crl([leaf.serial_number])]) == (
        "revoked",
        f"{describe(leaf)} (serial {leaf.serial_number:x}) is revoked",
    )


def test_unparseable_certificate_data_is_malformed(pki: Pki) -> None:
    garbled = x509.UnrecognizedExtension(x509.oid.ExtensionOID.KEY_USAGE, b"\x04\x01")
    leaf = _leaf(pki, [(garbled, True)])
    code, detail = _refusal(pki, [leaf])
    assert code == "malformed"
    assert detail.startswith("unparseable certificate data: ")
    assert len(detail) > len("unparseable certificate data: ")


def _subject(*attributes: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "Signer")]
        + [x509.NameAttribute(oid, value) for oid, value in attributes]
    )


@pytest.mark.parametrize(
    ("attributes", "parties"),
    [
        ([(NameOID.SERIAL_NUMBER, "EU.EORI.NL000000002")], {"EU.EORI.NL000000002"}),
        ([(ORGANIZATION_IDENTIFIER_OID, "EU.EORI.NL000000003")], {"EU.EORI.NL000000003"}),
        (
            [
                (NameOID.SERIAL_NUMBER, "EU.EORI.NL000000002"),
                (ORGANIZATION_IDENTIFIER_OID, "EU.EORI.NL000000003"),
                (NameOID.SERIAL_NUMBER, "EU.EORI.DE000000004"),
            ],
            {"EU.EORI.NL000000002", "EU.EORI.NL000000003", "EU.EORI.DE000000004"},
        ),
        ([(NameOID.SERIAL_NUMBER, "NL000000002")], set()),
        ([(ORGANIZATION_IDENTIFIER_OID, "PNONL-123456789")], set()),
        ([(NameOID.ORGANIZATION_NAME, "EU.EORI.NL000000005")], set()),
        ([], set()),
    ],
)
def test_party_ids(
    pki: Pki, attributes: list[tuple[x509.ObjectIdentifier, str]], parties: set[str]
) -> None:
    leaf = _leaf(pki, subject=_subject(*attributes))
    assert party_ids(leaf) == frozenset(parties)
    assert isinstance(party_ids(leaf), frozenset)
