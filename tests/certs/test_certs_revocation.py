"""``certs.revocation`` and the path search on their own: which CRL is believed, and each
refusal's words. Real certificates and CRLs (``tests/certs/pki_builders.py``).

Mutation testing (docs/testing.md) found the CRL's own checks undefended: an issuer whose
key usage does not allow CRL signing, a critical CRL extension we do not understand, an
issuer key that cannot sign, a CRL signed with another kind of key, the newest of several
CRLs, and a ``nextUpdate`` exactly now. Each of those would make a forged or stale CRL count.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa, x25519

from certs import CertificateRejected, TrustStore, generate_key
from certs.identity import describe
from certs.keys import PrivateKey
from certs.path import MAX_ISSUERS, build_path
from certs.revocation import check_revocation
from tests.certs.pki_builders import NOW, Pki, build_cert, ca_extensions, name


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki.create("ec-p256")


def _refusal(
    cert: x509.Certificate, issuer: x509.Certificate, crls: list[object]
) -> tuple[str, str]:
    with pytest.raises(CertificateRejected) as refused:
        check_revocation(cert, issuer, crls, NOW, required=True)  # type: ignore[arg-type]
    return refused.value.code, refused.value.detail


def _crl(
    issuer: x509.Certificate,
    key: PrivateKey | rsa.RSAPrivateKey,
    *,
    extensions: tuple[tuple[x509.ExtensionType, bool], ...] = (),
    last: datetime = NOW,
    next_update: datetime = NOW + timedelta(days=7),
) -> x509.CertificateRevocationList:
    """A CRL under ``issuer``'s name, signed by ``key`` with exactly ``extensions``."""
    builder = x509.CertificateRevocationListBuilder().issuer_name(issuer.subject)
    builder = builder.last_update(last).next_update(next_update)
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(key, hashes.SHA256())  # type: ignore[arg-type]


def _ca(pki: Pki, public_key: object, usage: x509.KeyUsage | None) -> x509.Certificate:
    extensions = [(x509.BasicConstraints(ca=True, path_length=None), True)]
    if usage is not None:
        extensions.append((usage, True))
    return build_cert(
        subject=name("Odd Issuing CA"),
        public_key=public_key,  # type: ignore[arg-type]
        issuer=pki.root,
        signing_key=pki.root_key,
        extensions=extensions,  # type: ignore[arg-type]
    )


def _usage(*, crl_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(False, False, False, False, False, True, crl_sign, False, False)


def test_each_refusal_says_why(pki: Pki) -> None:
    leaf = pki.leaf()
    assert _refusal(leaf, pki.issuing, []) == (
        "crl-unavailable",
        f"no CRL from {describe(pki.issuing)} for {describe(leaf)}",
    )
    forged = _crl(pki.issuing, generate_key("ec-p256"))
    assert _refusal(leaf, pki.issuing, [forged]) == (
        "crl-invalid",
        f"no CRL for {describe(leaf)} is validly signed by {describe(pki.issuing)}",
    )
    revoked = pki.crl([leaf.serial_number])
    assert _refusal(leaf, pki.issuing, [revoked]) == (
        "revoked",
        f"{describe(leaf)} (serial {leaf.serial_number:x}) is revoked",
    )
    due = pki.crl(now=NOW - timedelta(days=7), days=7)  # nextUpdate exactly now: too late
    assert _refusal(leaf, pki.issuing, [due]) == (
        "crl-expired",
        f"the newest CRL from {describe(pki.issuing)} was due at {NOW}",
    )
    check_revocation(
        leaf, pki.issuing, [pki.crl(now=NOW - timedelta(days=7), days=8)], NOW, required=True
    )


def test_the_newest_of_several_crls_decides_freshness(pki: Pki) -> None:
    leaf = pki.leaf()
    old = pki.crl(now=NOW - timedelta(days=9), days=7)
    fresh = pki.crl()
    for crls in ([old, fresh], [fresh, old]):
        check_revocation(leaf, pki.issuing, crls, NOW, required=True)
    assert _refusal(leaf, pki.issuing, [old])[0] == "crl-expired"


def test_an_issuer_whose_key_usage_forbids_crl_signing_is_not_believed(pki: Pki) -> None:
    key = generate_key("ec-p256")
    issuer = _ca(pki, key.public_key(), _usage(crl_sign=False))
    crl = _crl(issuer, key)
    assert _refusal(pki.leaf(), issuer, [crl])[0] == "crl-invalid"
    allowed = _ca(pki, key.public_key(), _usage(crl_sign=True))
    check_revocation(pki.leaf(), allowed, [_crl(allowed, key)], NOW, required=True)
    unstated = _ca(pki, key.public_key(), None)  # no key usage at all: any use
    check_revocation(pki.leaf(), unstated, [_crl(unstated, key)], NOW, required=True)


def test_a_critical_crl_extension_we_do_not_understand_makes_the_crl_unusable(pki: Pki) -> None:
    leaf = pki.leaf()
    delta = (x509.DeltaCRLIndicator(1), True)
    assert (
        _refusal(leaf, pki.issuing, [_crl(pki.issuing, pki.issuing_key, extensions=(delta,))])[0]
        == "crl-invalid"
    )
    understood = ((x509.CRLNumber(3), True),)  # critical but understood
    check_revocation(
        leaf,
        pki.issuing,
        [_crl(pki.issuing, pki.issuing_key, extensions=understood)],
        NOW,
        required=True,
    )
    extra = ((x509.DeltaCRLIndicator(1), False),)  # not understood but not critical
    check_revocation(
        leaf,
        pki.issuing,
        [_crl(pki.issuing, pki.issuing_key, extensions=extra)],
        NOW,
        required=True,
    )


def test_an_issuer_key_that_cannot_sign_is_not_believed(pki: Pki) -> None:
    exchange_only = _ca(pki, x25519.X25519PrivateKey.generate().public_key(), _usage(crl_sign=True))
    crl = _crl(exchange_only, generate_key("ec-p256"))
    assert _refusal(pki.leaf(), exchange_only, [crl])[0] == "crl-invalid"


def test_a_crl_signed_with_another_kind_of_key_is_not_believed(pki: Pki) -> None:
    crl = _crl(pki.issuing, rsa.generate_private_key(65537, 2048))  # issuer's key is EC
    assert _refusal(pki.leaf(), pki.issuing, [crl])[0] == "crl-invalid"


class _CrlTheLibraryCannotCheck:
    """A CRL named after ``issuer`` whose signature check raises instead of answering.

    cryptography 50's ``is_signature_valid`` answers ``False`` for every CRL we could build
    against an RSA, EC or Ed25519 key (another kind of key, another algorithm, an unknown
    algorithm, a garbled signature); only a key type it does not know raises, and
    ``_is_authentic`` turns those away before asking. This stands in for a library that
    raises ``ValueError`` or ``TypeError`` there: the CRL must still not be believed.
    """

    def __init__(self, issuer: x509.Certificate, error: type[Exception]) -> None:
        self.issuer = issuer.subject
        self.extensions = x509.Extensions([])
        self.error = error

    def is_signature_valid(self, _key: object) -> bool:
        raise self.error("signature algorithm does not match the key")


@pytest.mark.parametrize("error", [ValueError, TypeError])
def test_a_crl_whose_signature_check_raises_is_not_believed(
    pki: Pki, error: type[Exception]
) -> None:
    leaf = pki.leaf()
    crl = _CrlTheLibraryCannotCheck(pki.issuing, error)
    assert _refusal(leaf, pki.issuing, [crl]) == (
        "crl-invalid",
        f"no CRL for {describe(leaf)} is validly signed by {describe(pki.issuing)}",
    )


def test_an_issuer_nobody_trusts_is_named(pki: Pki) -> None:
    stranger = Pki.create("ec-p256", root_name="Other Root", issuing_name="Other CA")
    leaf = stranger.leaf()
    with pytest.raises(CertificateRejected) as refused:
        build_path(leaf, [pki.root], [pki.issuing], [], NOW)
    assert (refused.value.code, refused.value.detail) == (
        "untrusted-issuer",
        f"no trusted issuer found for {describe(leaf)}",
    )


def test_a_failing_candidate_does_not_end_the_search(pki: Pki) -> None:
    """An expired twin of the issuing CA (same name, same key) listed first is skipped."""
    public = pki.issuing_key.public_key()
    twin = build_cert(
        subject=pki.issuing.subject,
        public_key=public,
        issuer=pki.root,
        signing_key=pki.root_key,
        extensions=ca_extensions(public, None),
        not_before=NOW - timedelta(days=30),
        not_after=NOW - timedelta(days=1),
    )
    leaf = pki.leaf()
    path = build_path(leaf, [pki.root], [twin, pki.issuing], [pki.crl()], NOW)
    assert path == [leaf, pki.issuing, pki.root]
    trust = TrustStore(anchors=(pki.root,), intermediates=(twin, pki.issuing))
    assert pki.verify([leaf], trust=trust).serial_number == leaf.serial_number


def test_a_path_too_long_says_how_long(pki: Pki) -> None:
    chain, parent, parent_key = [], pki.root, pki.root_key
    for depth in range(MAX_ISSUERS):
        key = generate_key("ec-p256")
        cert = build_cert(
            subject=name(f"CA {depth}"),
            public_key=key.public_key(),
            issuer=parent,
            signing_key=parent_key,
            extensions=ca_extensions(key.public_key(), None),
        )
        chain.append(cert)
        parent, parent_key = cert, key
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = pki.leaf()
    leaf = build_cert(
        subject=leaf.subject,
        public_key=leaf_key.public_key(),
        issuer=parent,
        signing_key=parent_key,
        extensions=[
            (e.value, e.critical)
            for e in leaf.extensions
            if not isinstance(e.value, x509.AuthorityKeyIdentifier)
        ],
    )
    with pytest.raises(CertificateRejected) as refused:
        build_path(leaf, [pki.root], chain, [], NOW)
    assert (refused.value.code, refused.value.detail) == (
        "path-too-long",
        f"no anchor within {MAX_ISSUERS} issuers of {describe(leaf)}",
    )


def test_verify_refuses_no_chain_a_naive_clock_and_unparseable_data(pki: Pki) -> None:
    with pytest.raises(CertificateRejected) as refused:
        pki.verify([])
    assert (refused.value.code, refused.value.detail) == (
        "no-certificate",
        "no client certificate was presented",
    )
    with pytest.raises(ValueError, match=r"^now must be timezone-aware$"):
        pki.verify([pki.leaf()], now=NOW.replace(tzinfo=None))
    key = generate_key("ec-p256")
    garbled = x509.UnrecognizedExtension(x509.oid.ExtensionOID.KEY_USAGE, b"\x04\x01")
    leaf = build_cert(
        subject=pki.leaf().subject,
        public_key=key.public_key(),
        issuer=pki.issuing,
        signing_key=pki.issuing_key,
        extensions=[(garbled, True)],
    )
    with pytest.raises(CertificateRejected) as refused:
        pki.verify([leaf])
    assert refused.value.code == "malformed"
    assert refused.value.detail.startswith("unparseable certificate data: ")


def test_a_candidate_already_on_the_path_is_skipped_not_the_end(pki: Pki) -> None:
    """A key roll-over: S1 ("Sub", new key) is signed by S2 ("Sub", old key, under the root).
    Above S1 both S1 itself and S2 are named as the issuer; S1 is on the path already and
    must be skipped so that S2 is tried."""
    root_key, old, new = (generate_key("ec-p256") for _ in range(3))
    root = build_cert(  # a root without a path length limit
        subject=name("Roll-over Root"),
        public_key=root_key.public_key(),
        issuer=None,
        signing_key=root_key,
        extensions=ca_extensions(root_key.public_key(), None),
    )
    s2 = build_cert(
        subject=name("Sub"),
        public_key=old.public_key(),
        issuer=root,
        signing_key=root_key,
        extensions=ca_extensions(old.public_key(), None),
        aki=False,
    )
    s1 = build_cert(
        subject=name("Sub"),
        public_key=new.public_key(),
        issuer=s2,
        signing_key=old,
        extensions=ca_extensions(new.public_key(), None),
        aki=False,
    )
    template = pki.leaf()
    leaf_key = generate_key("ec-p256")
    leaf = build_cert(
        subject=template.subject,
        public_key=leaf_key.public_key(),
        issuer=s1,
        signing_key=new,
        extensions=[
            (e.value, e.critical)
            for e in template.extensions
            if not isinstance(e.value, x509.AuthorityKeyIdentifier)
        ],
        aki=False,
    )
    assert build_path(leaf, [root], [s1, s2], [], NOW) == [leaf, s1, s2, root]
