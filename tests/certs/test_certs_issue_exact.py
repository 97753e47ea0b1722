"""Issuance and CRLs, exactly: each refusal's code and words, each boundary next to it, which
extensions are critical, the default validities, and how a refresh merges revocations.

The profile tests (test_certs_issue.py) check what a certificate holds; these pin what a
mutation test found unpinned: a refusal matched by code only, ``critical`` flags, defaults.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from certs import (
    PKIError,
    RevokedEntry,
    certificate_from_csr,
    create_crl,
    create_issuing_ca,
    create_root_ca,
    generate_key,
    issue_participant,
    issue_server,
    load_crls,
)
from certs.crl_refresh import refresh_bundle
from certs.extensions import authority_key_id
from certs.issue import BACKDATE
from tests.certs.pki_builders import NOW, ORG_ID, Pki, ca_extensions, name
from tests.certs.test_cert_manager_ca import _cert_manager_ca

MISMATCH = "the issuer key does not belong to the issuer certificate"


def _critical(cert: x509.Certificate) -> dict[type[x509.ExtensionType], bool]:
    return {type(ext.value): ext.critical for ext in cert.extensions}


def _refusal(call: object, /, **arguments: object) -> PKIError:
    with pytest.raises(PKIError) as info:
        call(**arguments)  # type: ignore[operator]  # each call site passes a function
    return info.value


def _participant(pki: Pki, **overrides: object) -> x509.Certificate:
    arguments: dict[str, object] = {
        "organization_id": ORG_ID,
        "organization_name": "Acme",
        "roles": ["consumer"],
        "public_key": generate_key("ec-p256").public_key(),
        "issuer": pki.issuing,
        "issuer_key": pki.issuing_key,
        "now": NOW,
    }
    arguments.update(overrides)
    return issue_participant(**arguments)  # type: ignore[arg-type]  # test-side overrides


def _server(pki: Pki, **overrides: object) -> x509.Certificate:
    arguments: dict[str, object] = {
        "dns_names": ["gateway.example"],
        "ip_addresses": [],
        "public_key": generate_key("ec-p256").public_key(),
        "issuer": pki.issuing,
        "issuer_key": pki.issuing_key,
        "now": NOW,
    }
    arguments.update(overrides)
    return issue_server(**arguments)  # type: ignore[arg-type]  # test-side overrides


# --- the CAs -----------------------------------------------------------------------------


def _hierarchy() -> tuple[x509.Certificate, x509.Certificate]:
    """A root and an issuing CA made at NOW with the default validities."""
    root_key, key = generate_key("ec-p256"), generate_key("ec-p256")
    root = create_root_ca(common_name="Root", key=root_key, now=NOW)
    issuing = create_issuing_ca(
        common_name="Issuing", key_public=key.public_key(), root=root, root_key=root_key, now=NOW
    )
    return root, issuing


def test_the_root_ca_profile_and_default_validity() -> None:
    root, _ = _hierarchy()
    assert root.not_valid_before_utc == NOW - BACKDATE
    assert root.not_valid_after_utc == NOW + timedelta(days=3650)
    constraints = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.value.ca
    assert constraints.value.path_length == 1
    assert _critical(root) == {
        x509.SubjectKeyIdentifier: False,
        x509.BasicConstraints: True,
        x509.KeyUsage: True,
        x509.AuthorityKeyIdentifier: False,
    }
    usage = root.extensions.get_extension_for_class(x509.KeyUsage).value
    assert (usage.key_cert_sign, usage.crl_sign, usage.digital_signature) == (True, True, False)


def test_the_issuing_ca_profile_and_default_validity() -> None:
    root, issuing = _hierarchy()
    assert issuing.not_valid_after_utc == NOW + timedelta(days=1825)
    assert issuing.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    assert _critical(issuing) == {
        x509.SubjectKeyIdentifier: False,
        x509.BasicConstraints: True,
        x509.KeyUsage: True,
        x509.AuthorityKeyIdentifier: False,
    }
    assert issuing.issuer == root.subject
    issuing.verify_directly_issued_by(root)


def test_the_issuing_ca_is_capped_by_its_root() -> None:
    root_key, key = generate_key("ec-p256"), generate_key("ec-p256")
    root = create_root_ca(common_name="Short Root", key=root_key, now=NOW, days=10)
    issuing = create_issuing_ca(
        common_name="Issuing", key_public=key.public_key(), root=root, root_key=root_key, now=NOW
    )
    assert issuing.not_valid_after_utc == root.not_valid_after_utc == NOW + timedelta(days=10)


def test_an_issuing_ca_with_a_weak_key_or_a_foreign_root_key_is_refused(ec_pki: Pki) -> None:
    weak = ec.generate_private_key(ec.SECP256K1()).public_key()
    refusal = _refusal(
        create_issuing_ca,
        common_name="Weak",
        key_public=weak,
        root=ec_pki.root,
        root_key=ec_pki.root_key,
        now=NOW,
    )
    assert refusal.code == "weak-key"
    assert refusal.detail == "elliptic curve secp256k1 is not P-256, P-384 or P-521"
    refusal = _refusal(
        create_issuing_ca,
        common_name="Foreign",
        key_public=generate_key("ec-p256").public_key(),
        root=ec_pki.root,
        root_key=generate_key("ec-p256"),
        now=NOW,
    )
    assert (refusal.code, refusal.detail) == ("key-mismatch", MISMATCH)


# --- participant and server certificates ------------------------------------------------


def test_participant_extensions_critical_or_not_and_default_validity(ec_pki: Pki) -> None:
    cert = _participant(ec_pki)
    assert cert.not_valid_after_utc == NOW + timedelta(days=365)
    assert _critical(cert) == {
        x509.SubjectKeyIdentifier: False,
        x509.BasicConstraints: True,
        x509.KeyUsage: True,
        x509.SubjectAlternativeName: False,
        x509.ExtendedKeyUsage: False,
        x509.AuthorityKeyIdentifier: False,
    }
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert (constraints.ca, constraints.path_length) == (False, None)


def test_participant_refusals_say_why(ec_pki: Pki) -> None:
    roles = "roles must be a non-empty subset of ['consumer', 'officer', 'operator', 'provider']"
    for bad in (["wizard"], [], ["consumer", "wizard"]):
        refusal = _refusal(_participant, pki=ec_pki, roles=bad)
        assert (refusal.code, refusal.detail) == ("unknown-role", roles)
    refusal = _refusal(_participant, pki=ec_pki, organization_name=" \t")
    assert refusal.code == "invalid-organization-name"
    assert refusal.detail == "organisation name must not be empty"
    refusal = _refusal(_participant, pki=ec_pki, organization_name="A" * 65)
    assert refusal.code == "invalid-name"
    assert refusal.detail == "Attribute's length must be >= 1 and <= 64, but it was 65"
    refusal = _refusal(_participant, pki=ec_pki, issuer_key=generate_key("ec-p256"))
    assert (refusal.code, refusal.detail) == ("key-mismatch", MISMATCH)


def test_validity_of_one_day_is_the_least(ec_pki: Pki) -> None:
    assert _participant(ec_pki, days=1).not_valid_after_utc == NOW + timedelta(days=1)
    for days in (0, -1):
        refusal = _refusal(_participant, pki=ec_pki, days=days)
        assert refusal.code == "invalid-validity"
        assert refusal.detail == "validity must be at least one day"


def test_a_csr_certificate_has_the_default_and_the_given_validity(ec_pki: Pki) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name("ignored"))
        .sign(key, hashes.SHA256())
    )
    common = {
        "organization_id": ORG_ID,
        "organization_name": "Acme",
        "roles": ["consumer"],
        "issuer": ec_pki.issuing,
        "issuer_key": ec_pki.issuing_key,
        "now": NOW,
    }
    default = certificate_from_csr(csr, **common)  # type: ignore[arg-type]  # typed above
    assert default.not_valid_after_utc == NOW + timedelta(days=365)
    short = certificate_from_csr(csr, days=30, **common)  # type: ignore[arg-type]  # typed above
    assert short.not_valid_after_utc == NOW + timedelta(days=30)


def test_server_extensions_critical_or_not_and_default_validity(ec_pki: Pki) -> None:
    cert = _server(ec_pki)
    assert cert.not_valid_after_utc == NOW + timedelta(days=365)
    assert cert.subject.rfc4514_string() == "CN=gateway.example"
    assert _critical(cert) == {
        x509.SubjectKeyIdentifier: False,
        x509.BasicConstraints: True,
        x509.KeyUsage: True,
        x509.SubjectAlternativeName: False,
        x509.ExtendedKeyUsage: False,
        x509.AuthorityKeyIdentifier: False,
    }


def test_a_server_named_only_by_addresses_is_called_by_the_first(ec_pki: Pki) -> None:
    cert = _server(ec_pki, dns_names=[], ip_addresses=["192.0.2.7", "::1"])
    assert cert.subject.rfc4514_string() == "CN=192.0.2.7"
    both = _server(ec_pki, dns_names=["a.example", "b.example"], ip_addresses=["192.0.2.7"])
    assert both.subject.rfc4514_string() == "CN=a.example"


def test_server_refusals_say_why(ec_pki: Pki) -> None:
    refusal = _refusal(_server, pki=ec_pki, dns_names=[], ip_addresses=[])
    assert refusal.code == "invalid-server-name"
    assert refusal.detail == "a server certificate needs a DNS name or IP"
    refusal = _refusal(_server, pki=ec_pki, ip_addresses=["not-an-ip"])
    assert refusal.code == "invalid-ip-address"
    assert refusal.detail == "'not-an-ip' does not appear to be an IPv4 or IPv6 address"
    refusal = _refusal(_server, pki=ec_pki, dns_names=[""])
    assert refusal.code == "invalid-name"
    assert refusal.detail == "Attribute's length must be >= 1 and <= 64, but it was 0"


# --- the authority key identifier -------------------------------------------------------


def _odd_ca(
    *, ski: x509.SubjectKeyIdentifier | None
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA whose SKI is not derived from its key (or that has none)."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name("Odd CA"))
        .issuer_name(name("Odd CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
    )
    for extension, critical in ca_extensions(key.public_key(), path_length=0):
        if not isinstance(extension, x509.SubjectKeyIdentifier):
            builder = builder.add_extension(extension, critical=critical)
    if ski is not None:
        builder = builder.add_extension(ski, critical=False)
    return builder.sign(key, hashes.SHA256()), key


def test_the_aki_copies_the_issuers_own_ski() -> None:
    ski = x509.SubjectKeyIdentifier(os.urandom(8))
    ca, key = _odd_ca(ski=ski)
    assert authority_key_id(ca).key_identifier == ski.digest
    crl = create_crl(issuer=ca, issuer_key=key, revoked=[], now=NOW, crl_number=1)
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest


def test_the_aki_of_an_issuer_without_a_ski_is_derived_from_its_key() -> None:
    ca, key = _odd_ca(ski=None)
    derived = x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest
    assert authority_key_id(ca).key_identifier == derived
    leaf = issue_participant(
        organization_id=ORG_ID,
        organization_name="Acme",
        roles=["consumer"],
        public_key=generate_key("ec-p256").public_key(),
        issuer=ca,
        issuer_key=key,
        now=NOW,
    )
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == derived


# --- CRLs --------------------------------------------------------------------------------


def _crl(pki: Pki, **overrides: object) -> x509.CertificateRevocationList:
    arguments: dict[str, object] = {
        "issuer": pki.issuing,
        "issuer_key": pki.issuing_key,
        "revoked": [],
        "now": NOW,
        "crl_number": 1,
    }
    arguments.update(overrides)
    return create_crl(**arguments)  # type: ignore[arg-type]  # test-side overrides


def test_crl_bounds_one_day_and_number_zero(ec_pki: Pki) -> None:
    crl = _crl(ec_pki, days=1, crl_number=0)
    assert crl.next_update_utc == NOW + timedelta(days=1)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 0
    words = "a CRL needs days >= 1 and a non-negative CRL number"
    for bad in ({"days": 0}, {"crl_number": -1}, {"days": 0, "crl_number": -1}):
        refusal = _refusal(_crl, pki=ec_pki, **bad)
        assert (refusal.code, refusal.detail) == ("invalid-crl", words)
    refusal = _refusal(_crl, pki=ec_pki, issuer_key=generate_key("ec-p256"))
    assert (refusal.code, refusal.detail) == ("key-mismatch", MISMATCH)


def test_no_crl_extension_is_critical(ec_pki: Pki) -> None:
    crl = _crl(ec_pki, revoked=[RevokedEntry(5, NOW, x509.ReasonFlags.superseded)])
    assert {type(e.value): e.critical for e in crl.extensions} == {
        x509.CRLNumber: False,
        x509.AuthorityKeyIdentifier: False,
    }
    (entry,) = list(crl)
    assert [(type(e.value), e.critical) for e in entry.extensions] == [(x509.CRLReason, False)]


def test_an_unreadable_crl_bundle_says_why() -> None:
    refusal = _refusal(load_crls, data=b"junk")
    assert refusal.code == "invalid-crl"
    assert refusal.detail == "no PEM 'X509 CRL' block in a non-empty CRL bundle"
    assert load_crls(b" \n\t") == []
    broken = b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"
    refusal = _refusal(load_crls, data=broken)
    assert refusal.code == "invalid-crl"
    assert refusal.detail.startswith("unreadable CRL in bundle: ")
    assert len(refusal.detail) > len("unreadable CRL in bundle: ")


# --- refreshing a published bundle -------------------------------------------------------


def _cm_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    return _cert_manager_ca(key), key


def test_a_refresh_keeps_the_bundle_as_pem_and_says_what_it_listed() -> None:
    ca, key = _cm_ca()
    other, other_key = _odd_ca(ski=x509.SubjectKeyIdentifier(b"other"))
    other_pem = create_crl(
        issuer=other, issuer_key=other_key, revoked=[], now=NOW, crl_number=3
    ).public_bytes(Encoding.PEM)
    done = refresh_bundle(
        other_pem, issuer=ca, issuer_key=key, revoked=[RevokedEntry(9, NOW)], now=NOW, days=3
    )
    ours = load_crls(done.pem)[1]
    assert done.pem == other_pem + ours.public_bytes(Encoding.PEM)
    assert ours.next_update_utc == NOW + timedelta(days=3)
    assert done.revoked == (RevokedEntry(9, NOW),)


def test_every_false_crl_is_counted() -> None:
    ca, key = _cm_ca()
    forger = ec.generate_private_key(ec.SECP256R1())
    impostor = _cert_manager_ca(forger)  # the same name, another key
    forged = b"".join(
        create_crl(
            issuer=impostor, issuer_key=forger, revoked=[], now=NOW, crl_number=n
        ).public_bytes(Encoding.PEM)
        for n in (1, 2)
    )
    done = refresh_bundle(forged, issuer=ca, issuer_key=key, revoked=[], now=NOW, days=7)
    assert (done.kept, done.dropped) == (0, 2)


def test_a_previous_crl_without_a_number_counts_as_number_zero() -> None:
    """At the Unix epoch the clock adds nothing: the number is the previous one's plus one."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    ca, key = _cm_ca()
    unnumbered = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(epoch)
        .next_update(epoch + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    done = refresh_bundle(
        unnumbered.public_bytes(Encoding.PEM),
        issuer=ca,
        issuer_key=key,
        revoked=[],
        now=epoch,
        days=1,
    )
    assert done.crl_number == 1


def _previous(
    ca: x509.Certificate, key: ec.EllipticCurvePrivateKey, *entries: RevokedEntry
) -> bytes:
    crl = create_crl(issuer=ca, issuer_key=key, revoked=entries, now=NOW, crl_number=1)
    return crl.public_bytes(Encoding.PEM)


@pytest.mark.parametrize("earliest_first", [True, False])
def test_a_serial_listed_twice_keeps_its_earliest_revocation(earliest_first: bool) -> None:
    ca, key = _cm_ca()
    early = RevokedEntry(5, NOW - timedelta(days=2), x509.ReasonFlags.key_compromise)
    late = RevokedEntry(5, NOW - timedelta(days=1), x509.ReasonFlags.superseded)
    given, listed = (early, late) if earliest_first else (late, early)
    done = refresh_bundle(
        _previous(ca, key, listed), issuer=ca, issuer_key=key, revoked=[given], now=NOW, days=7
    )
    assert done.revoked == (early,)


def test_at_the_same_time_the_callers_entry_wins() -> None:
    ca, key = _cm_ca()
    at = NOW - timedelta(days=1)
    given = RevokedEntry(5, at, x509.ReasonFlags.key_compromise)
    listed = RevokedEntry(5, at, x509.ReasonFlags.superseded)
    done = refresh_bundle(
        _previous(ca, key, listed), issuer=ca, issuer_key=key, revoked=[given], now=NOW, days=7
    )
    assert done.revoked == (given,)
