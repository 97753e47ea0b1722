"""Issue 18: the per-certificate rules (``certs.profile``), each refusal word for word.

The path tests check which code a bad chain gets; here each check is handed one
certificate, and its boundary (the first and last valid instant, a path length exactly
used up) and its sentence are pinned.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from certs import CertificateRejected, generate_key
from certs.identity import describe
from certs.keys import key_weakness
from certs.profile import (
    UNDERSTOOD_EXTENSIONS,
    check_common,
    check_issuer,
    check_leaf,
    check_signature_algorithm,
)
from tests.certs.pki_builders import NOW, Extensions, build_cert, key_usage, name


def _cert(extensions: Extensions = (), **kw: object) -> x509.Certificate:  # type: ignore[assignment]
    key = kw.pop("key", None) or generate_key("ec-p256")
    return build_cert(
        subject=name("Subject"),
        public_key=key.public_key(),  # type: ignore[attr-defined]
        issuer=None,
        signing_key=kw.pop("signing_key", key),  # type: ignore[arg-type]
        extensions=list(extensions),
        aki=False,
        **kw,  # type: ignore[arg-type]
    )


def _refusal(check: Callable[[], None]) -> tuple[str, str]:
    with pytest.raises(CertificateRejected) as refused:
        check()
    return refused.value.code, refused.value.detail


def test_the_validity_window_includes_both_ends() -> None:
    cert = _cert(not_before=NOW, not_after=NOW + timedelta(days=1))
    check_common(cert, NOW)
    check_common(cert, NOW + timedelta(days=1))
    early = NOW - timedelta(microseconds=1)
    assert _refusal(lambda: check_common(cert, early)) == (
        "not-yet-valid",
        f"{describe(cert)} is valid from 2030-06-01 12:00:00+00:00",
    )
    late = NOW + timedelta(days=1, seconds=1)
    assert _refusal(lambda: check_common(cert, late)) == (
        "expired",
        f"{describe(cert)} expired at 2030-06-02 12:00:00+00:00",
    )


def test_a_weak_key_is_named_with_its_weakness() -> None:
    signer = generate_key("ec-p256")
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 -- the point
    cert = _cert(key=weak, signing_key=signer)
    weakness = key_weakness(cert.public_key())
    assert weakness
    assert _refusal(lambda: check_common(cert, NOW)) == (
        "weak-key",
        f"{describe(cert)}: {weakness}",
    )


def test_only_an_unknown_critical_extension_is_refused() -> None:
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4"), b"\x05\x00")
    check_common(_cert([(unknown, False)]), NOW)
    cert = _cert([(unknown, True)])
    assert _refusal(lambda: check_common(cert, NOW)) == (
        "unknown-critical-extension",
        f"{describe(cert)} has critical extension 1.2.3.4",
    )
    key = generate_key("ec-p256")
    every = _cert(
        [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (key_usage(digital_signature=True), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), True),
            (x509.SubjectAlternativeName([x509.UniformResourceIdentifier("urn:x")]), True),
            (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), True),
        ],
        key=key,
    )
    check_common(every, NOW)
    assert {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    } == UNDERSTOOD_EXTENSIONS


def _padded(cert: x509.Certificate) -> x509.Certificate | None:
    """``cert`` with its signature BIT STRING claiming one unused bit (the bits themselves
    zero, so the value reads the same); ``None`` when its last bit is set."""
    der = cert.public_bytes(Encoding.DER)
    signature = cert.signature
    at = len(der) - len(signature) - 1
    if der[at] != 0 or signature[-1] & 1:
        return None
    return x509.load_der_x509_certificate(der[:at] + b"\x01" + der[at + 1 :])


def test_a_signature_bit_string_with_unused_bits_is_malformed() -> None:
    check_signature_algorithm(_cert())
    padded = next(p for p in (_padded(_cert()) for _ in range(64)) if p is not None)
    assert _refusal(lambda: check_signature_algorithm(padded)) == (
        "malformed",
        f"{describe(padded)} has a non-canonical signature encoding",
    )


def test_a_signature_algorithm_outside_the_list_is_named() -> None:
    """ECDSA with SHA-224 (``cryptography`` no longer signs with SHA-1)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("Old"))
        .issuer_name(name("Old"))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .sign(key, hashes.SHA224())
    )
    assert _refusal(lambda: check_signature_algorithm(cert)) == (
        "weak-signature",
        f"{describe(cert)} is signed with 1.2.840.10045.4.3.1",
    )


def _constraints(ca: bool, path_length: int | None = None) -> tuple[x509.ExtensionType, bool]:
    return x509.BasicConstraints(ca=ca, path_length=path_length), True


def test_an_issuer_must_be_a_ca() -> None:
    for extensions in ([], [_constraints(False)]):
        cert = _cert(extensions)
        assert _refusal(lambda c=cert: check_issuer(c, 0)) == (  # type: ignore[misc]
            "not-a-ca",
            f"{describe(cert)} is not a CA certificate",
        )
    check_issuer(_cert([_constraints(True)]), 5)  # no key usage: no limit from it


def test_an_issuer_must_be_allowed_to_sign_certificates() -> None:
    cert = _cert([_constraints(True), (key_usage(digital_signature=True), True)])
    assert _refusal(lambda: check_issuer(cert, 0)) == (
        "wrong-key-usage",
        f"{describe(cert)} lacks keyCertSign in its key usage",
    )
    check_issuer(_cert([_constraints(True), (key_usage(cert_sign=True), True)]), 0)


def test_an_issuers_path_length_may_be_used_up_exactly() -> None:
    cert = _cert([_constraints(True, 1)])
    check_issuer(cert, 0)
    check_issuer(cert, 1)
    assert _refusal(lambda: check_issuer(cert, 2)) == (
        "path-too-long",
        f"{describe(cert)} allows 1 intermediate CA(s) below it, the path has 2",
    )


def _leaf(
    ca: bool | None = False,
    usage: x509.KeyUsage | None = None,
    ekus: list[x509.ObjectIdentifier] | None = None,
) -> x509.Certificate:
    extensions: Extensions = []
    if ca is not None:
        extensions.append(_constraints(ca))
    if usage is not None:
        extensions.append((usage, True))
    if ekus is not None:
        extensions.append((x509.ExtendedKeyUsage(ekus), False))
    return _cert(extensions)


CLIENT = [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_a_client_leaf() -> None:
    check_leaf(_leaf(usage=key_usage(digital_signature=True), ekus=CLIENT))
    check_leaf(_leaf(None, key_usage(digital_signature=True), CLIENT))
    ca = _leaf(True, key_usage(digital_signature=True), CLIENT)
    assert _refusal(lambda: check_leaf(ca)) == (
        "leaf-is-ca",
        f"{describe(ca)} is a CA certificate, not a client certificate",
    )
    both = x509.KeyUsage(True, False, False, False, False, True, False, False, False)
    for usage in (None, key_usage(), both):
        cert = _leaf(usage=usage, ekus=CLIENT)
        assert _refusal(lambda c=cert: check_leaf(c)) == (  # type: ignore[misc]
            "wrong-key-usage",
            f"{describe(cert)} needs key usage digitalSignature (and not keyCertSign)",
        )
    for ekus in (None, [ExtendedKeyUsageOID.SERVER_AUTH]):
        cert = _leaf(usage=key_usage(digital_signature=True), ekus=ekus)
        assert _refusal(lambda c=cert: check_leaf(c)) == (  # type: ignore[misc]
            "wrong-extended-key-usage",
            f"{describe(cert)} lacks extended key usage clientAuth",
        )
