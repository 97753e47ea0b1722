"""Re-signing one CA's CRL inside a published bundle (certs/crl_refresh.py), pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certs import PKIError, RevokedEntry, create_crl, load_crls
from certs.crl_refresh import refresh_bundle
from tests.certs.test_cert_manager_ca import _cert_manager_ca

NOW = datetime(2026, 6, 1, tzinfo=UTC)
EARLIER = NOW - timedelta(days=30)


def _ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    return _cert_manager_ca(key), key


def _pem(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.PEM)


def _number(crl: x509.CertificateRevocationList) -> int:
    return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)


def test_an_empty_bundle_gets_one_crl_of_this_ca() -> None:
    ca, key = _ca()
    done = refresh_bundle(
        b"", issuer=ca, issuer_key=key, revoked=[RevokedEntry(7, NOW)], now=NOW, days=7
    )
    (crl,) = load_crls(done.pem)
    assert crl.issuer == ca.subject
    assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    assert [r.serial_number for r in crl] == [7]
    assert crl.next_update_utc == NOW + timedelta(days=7)
    assert _number(crl) == done.crl_number == int(NOW.timestamp())
    assert (done.kept, done.dropped) == (0, 0)


def test_nothing_the_previous_crl_listed_is_dropped() -> None:
    ca, key = _ca()
    reason = x509.ReasonFlags.key_compromise
    previous = create_crl(
        issuer=ca,
        issuer_key=key,
        revoked=[RevokedEntry(1, EARLIER, reason), RevokedEntry(2, EARLIER)],
        now=EARLIER,
        crl_number=int(NOW.timestamp()) + 50,  # ahead of the clock: still exceeded
    )
    done = refresh_bundle(
        _pem(previous),
        issuer=ca,
        issuer_key=key,
        revoked=[RevokedEntry(2, NOW), RevokedEntry(3, NOW)],  # 2 again, later: earliest kept
        now=NOW,
        days=7,
    )
    (crl,) = load_crls(done.pem)
    listed = {r.serial_number: r for r in crl}
    assert set(listed) == {1, 2, 3}
    assert listed[2].revocation_date_utc == EARLIER
    assert listed[1].extensions.get_extension_for_class(x509.CRLReason).value.reason == reason
    assert _number(crl) == int(NOW.timestamp()) + 51


def test_other_issuers_are_kept_and_a_false_one_is_dropped() -> None:
    ca, key = _ca()
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "another CA")])
    other = _renamed(other_name, other_key)
    theirs = create_crl(issuer=other, issuer_key=other_key, revoked=[], now=EARLIER, crl_number=5)
    impostor_key = ec.generate_private_key(ec.SECP256R1())
    impostor = create_crl(  # the same name as this CA, another key
        issuer=_cert_manager_ca(impostor_key),
        issuer_key=impostor_key,
        revoked=[RevokedEntry(99, EARLIER)],
        now=EARLIER,
        crl_number=10**12,
    )
    done = refresh_bundle(
        _pem(theirs) + _pem(impostor), issuer=ca, issuer_key=key, revoked=[], now=NOW, days=7
    )
    kept, ours = load_crls(done.pem)
    assert _pem(kept) == _pem(theirs)
    assert ours.issuer == ca.subject
    assert list(ours) == []  # the impostor's serial 99 is not carried over
    assert _number(ours) == int(NOW.timestamp())  # nor its number
    assert (done.kept, done.dropped) == (1, 1)


def test_a_bundle_that_is_not_crls_is_refused() -> None:
    ca, key = _ca()
    with pytest.raises(PKIError) as refused:
        refresh_bundle(b"garbage", issuer=ca, issuer_key=key, revoked=[], now=NOW, days=7)
    assert refused.value.code == "invalid-crl"


def test_a_key_that_is_not_the_cas_is_refused() -> None:
    ca, _ = _ca()
    with pytest.raises(PKIError) as refused:
        refresh_bundle(
            b"", issuer=ca, issuer_key=ec.generate_private_key(ec.SECP256R1()), revoked=[],
            now=NOW, days=7,
        )  # fmt: skip
    assert refused.value.code == "key-mismatch"


def _renamed(name: x509.Name, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """A self-signed CA like cert-manager's, under another name."""
    template = _cert_manager_ca(key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(template.not_valid_before_utc)
        .not_valid_after(template.not_valid_after_utc)
    )
    for extension in template.extensions:
        builder = builder.add_extension(extension.value, critical=extension.critical)
    return builder.sign(key, hashes.SHA256())
