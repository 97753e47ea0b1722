"""Differential test: for ECDSA P-256 chains, our path validation accepts exactly where
cryptography's webpki ``ClientVerifier`` accepts (it cannot be used for Ed25519, which is why
we have our own). Identity and revocation are ours alone: every case here carries a valid
participant identity and an empty, fresh CRL, so only path-level rules differ."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from certs import CertificateRejected, RevokedEntry, create_crl, generate_key, verify
from certs.keys import PrivateKey
from tests.certs.pki_builders import (
    NOW,
    Pki,
    build_cert,
    ca_extensions,
    leaf_extensions,
    name,
    participant_name,
)

Case = tuple[x509.Certificate, list[x509.Certificate], x509.CertificateRevocationList]


def _crl(issuer: x509.Certificate, key: PrivateKey) -> x509.CertificateRevocationList:
    empty: list[RevokedEntry] = []
    return create_crl(issuer=issuer, issuer_key=key, revoked=empty, now=NOW, crl_number=1)


def _leaf(pki: Pki, exts: Callable[[ec.EllipticCurvePublicKey], list], **kw: object) -> Case:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    leaf = build_cert(
        subject=participant_name(),
        public_key=key,
        issuer=pki.issuing,
        signing_key=pki.issuing_key,
        extensions=exts(key),
        **kw,  # type: ignore[arg-type]  # validity overrides
    )
    return leaf, [pki.issuing], pki.crl()


def _below(
    pki: Pki,
    parent: x509.Certificate,
    parent_key: PrivateKey,
    path_length: int | None,
    **kw: object,
) -> Case:
    key = generate_key("ec-p256")
    ca = build_cert(
        subject=name("Below CA"),
        public_key=key.public_key(),
        issuer=parent,
        signing_key=parent_key,
        extensions=ca_extensions(key.public_key(), path_length),
        **kw,
    )  # type: ignore[arg-type]  # validity overrides
    leaf_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    leaf = build_cert(
        subject=participant_name(),
        public_key=leaf_key,
        issuer=ca,
        signing_key=key,
        extensions=leaf_extensions(leaf_key),
    )
    return leaf, [ca, pki.issuing], _crl(ca, key)


def _eku(eku: x509.ObjectIdentifier) -> Callable[[ec.EllipticCurvePublicKey], list]:
    def extensions(key: ec.EllipticCurvePublicKey) -> list:
        base = [(e, c) for e, c in leaf_extensions(key) if not isinstance(e, x509.ExtendedKeyUsage)]
        return [*base, (x509.ExtendedKeyUsage([eku]), False)]

    return extensions


def _ca_leaf(key: ec.EllipticCurvePublicKey) -> list:
    base = [(e, c) for e, c in leaf_extensions(key) if not isinstance(e, x509.BasicConstraints)]
    return [*base, (x509.BasicConstraints(ca=True, path_length=None), True)]


def _critical(key: ec.EllipticCurvePublicKey) -> list:
    odd = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.3"), b"\x05\x00")
    return [*leaf_extensions(key), (odd, True)]


def _weak(pki: Pki) -> Case:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505 -- the attack under test
    leaf = build_cert(
        subject=participant_name(),
        public_key=key,
        issuer=pki.issuing,
        signing_key=pki.issuing_key,
        extensions=leaf_extensions(key),
    )
    return leaf, [pki.issuing], pki.crl()


def _weak_intermediate(pki: Pki) -> Case:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 -- the attack under test
    ca = build_cert(
        subject=name("Weak CA"),
        public_key=key.public_key(),
        issuer=pki.root,
        signing_key=pki.root_key,
        extensions=ca_extensions(key.public_key(), 0),
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    leaf = build_cert(
        subject=participant_name(),
        public_key=leaf_key,
        issuer=ca,
        signing_key=key,
        extensions=leaf_extensions(leaf_key),
    )
    return leaf, [ca], _crl_rsa(ca, key)


def _crl_rsa(issuer: x509.Certificate, key: rsa.RSAPrivateKey) -> x509.CertificateRevocationList:
    builder = x509.CertificateRevocationListBuilder().issuer_name(issuer.subject)
    builder = builder.last_update(NOW).next_update(NOW + timedelta(days=1))
    return builder.sign(key, hashes.SHA256())


def _no_digital_signature(key: ec.EllipticCurvePublicKey) -> list:
    base = [(e, c) for e, c in leaf_extensions(key) if not isinstance(e, x509.KeyUsage)]
    usage = x509.KeyUsage(False, False, False, False, True, False, False, False, False)
    return [*base, (usage, True)]


def _forged(_pki: Pki) -> Case:
    attacker = Pki.create("ec-p256")
    return attacker.leaf(), [attacker.issuing], attacker.crl()


def _forged_without_aki(pki: Pki) -> Case:
    attacker = Pki.create("ec-p256")
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    leaf = build_cert(
        subject=participant_name(),
        public_key=key,
        issuer=pki.issuing,
        signing_key=attacker.issuing_key,
        extensions=leaf_extensions(key),
        aki=False,
    )
    return leaf, [pki.issuing], pki.crl()


def _leaf_rsa(pki: Pki) -> Case:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    leaf = build_cert(
        subject=participant_name(),
        public_key=key,
        issuer=pki.issuing,
        signing_key=pki.issuing_key,
        extensions=leaf_extensions(key),
    )
    return leaf, [pki.issuing], pki.crl()


CASES: dict[str, Callable[[Pki], Case]] = {
    "good": lambda p: (p.leaf(), [p.issuing], p.crl()),
    "good-rsa-2048": _leaf_rsa,
    "good-sub-ca-under-root": lambda p: _below(p, p.root, p.root_key, 0),
    "expired": lambda p: _leaf(p, leaf_extensions, not_after=NOW - timedelta(seconds=1)),
    "not-yet-valid": lambda p: _leaf(p, leaf_extensions, not_before=NOW + timedelta(seconds=1)),
    "server-auth-only": lambda p: _leaf(p, _eku(ExtendedKeyUsageOID.SERVER_AUTH)),
    "leaf-is-ca": lambda p: _leaf(p, _ca_leaf),
    "unknown-critical": lambda p: _leaf(p, _critical),
    "rsa-1024-intermediate": _weak_intermediate,
    "attacker-key-without-aki": _forged_without_aki,
    "attacker-ca-same-names": _forged,
    "path-length-violated": lambda p: _below(p, p.issuing, p.issuing_key, None),
    "expired-intermediate": lambda p: _below(
        p, p.root, p.root_key, 0, not_after=NOW - timedelta(seconds=1)
    ),
}


STRICTER: dict[str, Callable[[Pki], Case]] = {
    # webpki only checks the keys that verify signatures; we also refuse weak leaf keys.
    "rsa-1024-leaf": _weak,
    # webpki does not require digitalSignature on a client leaf; TLS client auth signs.
    "key-agreement-only": lambda p: _leaf(p, _no_digital_signature),
}
"""Cases where we knowingly reject what cryptography's webpki policy accepts."""


def _theirs(pki: Pki, leaf: x509.Certificate, intermediates: list[x509.Certificate]) -> bool:
    verifier = PolicyBuilder().store(Store([pki.root])).time(NOW).build_client_verifier()
    try:
        verifier.verify(leaf, intermediates)
    except VerificationError:
        return False
    return True


def _ours(
    pki: Pki,
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    crl: x509.CertificateRevocationList,
) -> bool:
    try:
        verify([leaf, *intermediates], pki.trust(), [crl], now=NOW)
    except CertificateRejected:
        return False
    return True


@pytest.mark.parametrize("case", sorted(CASES))
def test_we_agree_with_cryptography(ec_pki: Pki, case: str) -> None:
    leaf, intermediates, crl = CASES[case](ec_pki)
    theirs = _theirs(ec_pki, leaf, intermediates)
    assert _ours(ec_pki, leaf, intermediates, crl) == theirs
    assert theirs == case.startswith("good")


@pytest.mark.parametrize("case", sorted(STRICTER))
def test_where_we_are_stricter(ec_pki: Pki, case: str) -> None:
    leaf, intermediates, crl = STRICTER[case](ec_pki)
    assert _theirs(ec_pki, leaf, intermediates)
    assert not _ours(ec_pki, leaf, intermediates, crl)
