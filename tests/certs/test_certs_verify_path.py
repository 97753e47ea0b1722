"""verify(): path building and revocation attacks, each with a real certificate chain."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509

import certs.path
from certs import CertificateRejected, RevokedEntry, TrustStore, create_crl, generate_key
from certs.identity import describe
from certs.keys import PrivateKey
from certs.path import MAX_SIGNATURE_CHECKS
from tests.certs.pki_builders import (
    NOW,
    Pki,
    build_cert,
    ca_extensions,
    key_usage,
    leaf_extensions,
    name,
    participant_name,
)


def code_of(pki: Pki, chain: list[x509.Certificate], **kwargs: object) -> str:
    """The rejection code verify() raises."""
    with pytest.raises(CertificateRejected) as info:
        pki.verify(chain, **kwargs)  # type: ignore[arg-type]  # crls/trust/now passthrough
    return info.value.code


def root_ca(pki: Pki, common_name: str) -> tuple[x509.Certificate, PrivateKey]:
    """A self-signed CA certificate (a root no trust store need hold)."""
    key = generate_key(pki.key_type)
    cert = build_cert(
        subject=name(common_name),
        public_key=key.public_key(),
        issuer=None,
        signing_key=key,
        extensions=ca_extensions(key.public_key(), None),
    )
    return cert, key


def sub_ca(
    pki: Pki,
    parent: x509.Certificate,
    parent_key: PrivateKey,
    common_name: str,
    path_length: int | None = None,
    **kwargs: object,
) -> tuple[x509.Certificate, PrivateKey]:
    """A CA certificate below ``parent``."""
    key = generate_key(pki.key_type)
    cert = build_cert(
        subject=name(common_name),
        public_key=key.public_key(),
        issuer=parent,
        signing_key=parent_key,
        extensions=ca_extensions(key.public_key(), path_length),
        **kwargs,  # type: ignore[arg-type]  # validity / aki overrides
    )
    return cert, key


def leaf_under(
    issuer: x509.Certificate, issuer_key: PrivateKey, *, aki: bool = True
) -> x509.Certificate:
    """A well-formed participant leaf signed by ``issuer_key``, naming ``issuer``."""
    key = generate_key("ec-p256").public_key()
    return build_cert(
        subject=participant_name(),
        public_key=key,
        issuer=issuer,
        signing_key=issuer_key,
        extensions=leaf_extensions(key),
        aki=aki,
    )


def crl_of(
    issuer: x509.Certificate, key: PrivateKey, *serials: int
) -> x509.CertificateRevocationList:
    """A fresh CRL from ``issuer``."""
    entries = [RevokedEntry(s, NOW, None) for s in serials]
    return create_crl(issuer=issuer, issuer_key=key, revoked=entries, now=NOW, crl_number=7)


def test_unknown_ca(pki: Pki) -> None:
    stranger = Pki.create(pki.key_type, root_name="Other Root", issuing_name="Other Issuing")
    assert code_of(pki, [stranger.leaf()]) == "untrusted-issuer"
    assert code_of(pki, [stranger.leaf(), stranger.issuing]) == "untrusted-issuer"


def test_attacker_ca_with_our_issuing_ca_name(pki: Pki) -> None:
    attacker = Pki.create(pki.key_type)  # same root and issuing CA names as ours
    forged = attacker.leaf()
    assert code_of(pki, [forged]) == "untrusted-issuer"  # AKI points at the attacker's key
    assert code_of(pki, [forged, attacker.issuing]) == "untrusted-issuer"
    no_aki = leaf_under(pki.issuing, attacker.issuing_key, aki=False)
    with pytest.raises(CertificateRejected) as info:
        pki.verify([no_aki])
    assert info.value.code == "bad-signature"
    assert info.value.detail == (
        f"{describe(no_aki)} is not validly signed by {describe(pki.issuing)}"
    )


def test_attacker_intermediate_without_aki_fails_on_signature(pki: Pki) -> None:
    attacker = Pki.create(pki.key_type)
    fake_issuing, fake_key = sub_ca(pki, pki.root, attacker.root_key, "Test Issuing CA", aki=False)
    forged = leaf_under(fake_issuing, fake_key)
    assert code_of(pki, [forged, fake_issuing]) == "bad-signature"


def test_legitimate_path_wins_over_an_offered_impostor(pki: Pki) -> None:
    attacker = Pki.create(pki.key_type)
    leaf = pki.leaf()
    assert pki.verify([leaf, attacker.issuing, attacker.root]).serial_number == leaf.serial_number


def test_expired_intermediate(pki: Pki) -> None:
    old, old_key = sub_ca(
        pki, pki.root, pki.root_key, "Old CA", 0, not_after=NOW - timedelta(seconds=1)
    )
    leaf = leaf_under(old, old_key)
    assert code_of(pki, [leaf, old], crls=[crl_of(old, old_key)]) == "expired"


def test_issuer_that_is_not_a_ca(pki: Pki) -> None:
    key = generate_key(pki.key_type)
    impostor = build_cert(
        subject=name("Leaf Acting As CA"),
        public_key=key.public_key(),
        issuer=pki.issuing,
        signing_key=pki.issuing_key,
        extensions=leaf_extensions(key.public_key()),
    )
    leaf = leaf_under(impostor, key)
    assert code_of(pki, [leaf, impostor], crls=[pki.crl(), crl_of(impostor, key)]) == "not-a-ca"


def test_issuer_without_key_cert_sign(pki: Pki) -> None:
    key = generate_key(pki.key_type)
    extensions = [
        (x509.BasicConstraints(ca=True, path_length=None), True),
        (key_usage(digital_signature=True), True),
        (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
    ]
    ca = build_cert(
        subject=name("No Sign CA"),
        public_key=key.public_key(),
        issuer=pki.root,
        signing_key=pki.root_key,
        extensions=extensions,
    )
    assert code_of(pki, [leaf_under(ca, key), ca]) == "wrong-key-usage"


def test_intermediate_path_length_violated(pki: Pki) -> None:
    # The issuing CA has pathlen 0, so a CA below it may not issue anything.
    sub, sub_key = sub_ca(pki, pki.issuing, pki.issuing_key, "Sub CA")
    leaf = leaf_under(sub, sub_key)
    crls = [pki.crl(), crl_of(sub, sub_key)]
    assert code_of(pki, [leaf, sub], crls=crls) == "path-too-long"


def test_path_deeper_than_four_issuers(pki: Pki) -> None:
    root, root_key = root_ca(pki, "Deep Root")
    trust = TrustStore(anchors=(root,))
    cas = [(root, root_key)]
    for depth in range(4):
        cas.append(sub_ca(pki, *cas[-1], f"Level {depth}"))
    chain = [cert for cert, _ in reversed(cas[1:])]
    deepest, deepest_key = cas[-1]
    leaf = leaf_under(deepest, deepest_key)
    crls = [crl_of(deepest, deepest_key)]
    assert code_of(pki, [leaf, *chain], crls=crls, trust=trust) == "path-too-long"
    # three intermediates and the root: four issuers, the maximum
    third, third_key = cas[3]
    leaf = leaf_under(third, third_key)
    assert pki.verify([leaf, *chain[1:]], crls=[crl_of(third, third_key)], trust=trust)


def test_cross_signed_loop_terminates(pki: Pki) -> None:
    key_a, key_b = generate_key(pki.key_type), generate_key(pki.key_type)
    shell = build_cert(  # only to give B a name to point at
        subject=name("Loop A"),
        public_key=key_a.public_key(),
        issuer=None,
        signing_key=key_a,
        extensions=ca_extensions(key_a.public_key(), None),
    )
    ca_b = build_cert(
        subject=name("Loop B"),
        public_key=key_b.public_key(),
        issuer=shell,
        signing_key=key_a,
        extensions=ca_extensions(key_b.public_key(), None),
    )
    ca_a = build_cert(
        subject=name("Loop A"),
        public_key=key_a.public_key(),
        issuer=ca_b,
        signing_key=key_b,
        extensions=ca_extensions(key_a.public_key(), None),
    )
    leaf = leaf_under(ca_a, key_a)
    assert code_of(pki, [leaf, ca_a, ca_b]) == "untrusted-issuer"


def test_unknown_critical_extension_on_an_intermediate(pki: Pki) -> None:
    odd = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.2"), b"\x05\x00")
    key = generate_key(pki.key_type)
    ca = build_cert(
        subject=name("Odd CA"),
        public_key=key.public_key(),
        issuer=pki.root,
        signing_key=pki.root_key,
        extensions=[*ca_extensions(key.public_key(), 0), (odd, True)],
    )
    assert code_of(pki, [leaf_under(ca, key), ca]) == "unknown-critical-extension"


def test_revoked_leaf(pki: Pki) -> None:
    leaf = pki.leaf()
    assert code_of(pki, [leaf], crls=[pki.crl([leaf.serial_number])]) == "revoked"
    assert pki.verify([leaf], crls=[pki.crl([leaf.serial_number + 1])])


def test_revoked_intermediate(pki: Pki) -> None:
    root_crl = crl_of(pki.root, pki.root_key, pki.issuing.serial_number)
    assert code_of(pki, [pki.leaf()], crls=[pki.crl(), root_crl]) == "revoked"


def test_crl_missing(pki: Pki) -> None:
    assert code_of(pki, [pki.leaf()], crls=[]) == "crl-unavailable"
    root_only = crl_of(pki.root, pki.root_key)
    assert code_of(pki, [pki.leaf()], crls=[root_only]) == "crl-unavailable"


def test_crl_expired(pki: Pki) -> None:
    stale = pki.crl(now=NOW - timedelta(days=8), days=7)
    assert code_of(pki, [pki.leaf()], crls=[stale]) == "crl-expired"
    # a stale CRL still proves revocation
    leaf = pki.leaf()
    assert (
        code_of(pki, [leaf], crls=[pki.crl([leaf.serial_number], now=NOW - timedelta(days=8))])
        == "revoked"
    )


def test_crl_signed_by_another_key(pki: Pki) -> None:
    attacker = Pki.create(pki.key_type)  # same issuing CA name, other key
    assert code_of(pki, [pki.leaf()], crls=[attacker.crl()]) == "crl-invalid"
    # a forged CRL cannot revoke either: the genuine one decides
    leaf = pki.leaf()
    assert pki.verify([leaf], crls=[attacker.crl([leaf.serial_number]), pki.crl()])


def test_many_same_named_decoys_do_not_blow_up_the_search(pki: Pki) -> None:
    attacker = Pki.create(pki.key_type)
    decoys = [
        sub_ca(pki, pki.root, attacker.root_key, "Test Issuing CA", aki=False)[0] for _ in range(40)
    ]
    leaf = leaf_under(pki.issuing, attacker.issuing_key, aki=False)
    assert code_of(pki, [leaf, *decoys]) in {"bad-signature", "path-too-long"}
    genuine = pki.leaf()
    assert pki.verify([genuine, *decoys[:8]]).serial_number == genuine.serial_number


def dead_end_twins(pki: Pki, count: int) -> list[x509.Certificate]:
    """``count`` CA certificates with the issuing CA's name and key, each issued by a CA no
    one holds: every link to one checks out, and the search then finds nothing above it."""
    nowhere, nowhere_key = root_ca(pki, "Nowhere CA")
    public = pki.issuing_key.public_key()
    return [
        build_cert(
            subject=pki.issuing.subject,
            public_key=public,
            issuer=nowhere,
            signing_key=nowhere_key,
            extensions=ca_extensions(public, 0),
        )
        for _ in range(count)
    ]


def test_signature_check_budget_at_its_boundary(pki: Pki) -> None:
    # Only the root is trusted; the chain offers the twins first, then the genuine issuing
    # CA. Every check succeeds: the twins spend one each, the issuing CA and the root one
    # more each, so MAX_SIGNATURE_CHECKS - 2 twins leave exactly the budget for the path.
    trust = TrustStore(anchors=(pki.root,))
    leaf = pki.leaf()
    twins = dead_end_twins(pki, MAX_SIGNATURE_CHECKS - 1)
    allowed = [leaf, *twins[:-1], pki.issuing]
    assert pki.verify(allowed, trust=trust).serial_number == leaf.serial_number
    # One twin more: the link to the root is check number MAX_SIGNATURE_CHECKS + 1, and the
    # budget's refusal is the only (so the first) failure met.
    with pytest.raises(CertificateRejected) as info:
        pki.verify([leaf, *twins, pki.issuing], trust=trust)
    assert info.value.code == "path-too-long"
    assert info.value.detail == (f"path search for {describe(leaf)} exceeded its budget")


def test_candidates_past_max_issuers_each_spend_a_check(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    # leaf <- L3 <- L2 <- L1 <- L0 <- root is five issuers, one too many, and L0 has a twin
    # (same name and key) that is just as far; L1 also has a twin signed by the root itself,
    # which makes a path of four. The search checks leaf-L3, L3-L2, L2-L1, L1-L0 (too
    # long), L1-twin (too long: tried too, not skipped), L2-L1 twin, L1 twin-root: 7.
    root, root_key = root_ca(pki, "Deep Root")
    trust = TrustStore(anchors=(root,))
    l0, l0_key = sub_ca(pki, root, root_key, "Level 0")
    l0_twin = build_cert(
        subject=l0.subject,
        public_key=l0_key.public_key(),
        issuer=root,
        signing_key=root_key,
        extensions=ca_extensions(l0_key.public_key(), None),
    )
    l1, l1_key = sub_ca(pki, l0, l0_key, "Level 1")
    l1_short = build_cert(
        subject=l1.subject,
        public_key=l1_key.public_key(),
        issuer=root,
        signing_key=root_key,
        extensions=ca_extensions(l1_key.public_key(), None),
    )
    l2, l2_key = sub_ca(pki, l1, l1_key, "Level 2")
    l3, l3_key = sub_ca(pki, l2, l2_key, "Level 3")
    leaf = leaf_under(l3, l3_key)
    chain = [leaf, l3, l2, l1, l1_short, l0, l0_twin]
    crls = [crl_of(l3, l3_key)]
    monkeypatch.setattr(certs.path, "MAX_SIGNATURE_CHECKS", 7)
    assert pki.verify(chain, crls=crls, trust=trust).serial_number == leaf.serial_number
    monkeypatch.setattr(certs.path, "MAX_SIGNATURE_CHECKS", 6)
    with pytest.raises(CertificateRejected) as info:
        pki.verify(chain, crls=crls, trust=trust)
    assert info.value.code == "path-too-long"
    assert info.value.detail == f"no anchor within 4 issuers of {describe(leaf)}"
