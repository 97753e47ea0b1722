"""The CA directory, its ledger, CSRs, trust bundles and the identity a certificate names,
exactly: each refusal's code and words, what is written where and with which mode, and the
boundaries next to them (what a mutation test of certs/store+identity found unpinned)."""

from __future__ import annotations

import stat
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa, x25519
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from certs import (
    ORGANIZATION_IDENTIFIER_OID,
    CADirectory,
    CertificateIdentity,
    CertificateRejected,
    PKIError,
    TrustStore,
    identity_of,
    load_crls,
    load_pem_chain,
    participant_uri,
    thumbprint_sha256,
    validate_organization_id,
)
from certs.csr import load_csr, public_key_from_csr
from certs.files import write_atomic
from certs.identity import describe, is_eori
from certs.index import Index, IssuedRecord, dump_index, load_index
from certs.keys import PublicKey, generate_key, key_type_of, key_weakness, require_strong
from certs.store import IssuedFiles
from tests.certs.pki_builders import (
    NOW,
    ORG_ID,
    ORG_NAME,
    Pki,
    build_cert,
    leaf_extensions,
    name,
    participant_name,
)

AT = datetime(2031, 1, 1, tzinfo=UTC)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def ca(tmp_path: Path) -> CADirectory:
    return CADirectory.init(tmp_path / "pki", name="Test", key_type="ec-p256", now=NOW)


def _issue(ca: CADirectory, out: Path, **overrides: object) -> IssuedFiles:
    arguments: dict[str, object] = {
        "organization_id": ORG_ID,
        "organization_name": "Acme",
        "roles": ["consumer"],
        "now": NOW,
        "out_dir": out,
    }
    arguments.update(overrides)
    return ca.issue(**arguments)  # type: ignore[arg-type]  # test-side overrides


# --- the CA directory --------------------------------------------------------------------


def test_the_chains_written_are_plain_pem_concatenations(ca: CADirectory) -> None:
    root = ca.root_cert_path.read_bytes()
    issuing = ca.issuing_cert_path.read_bytes()
    assert ca.trust_bundle_path.read_bytes() == root + issuing
    server, issuing_cert = load_pem_chain(ca.server_cert_path.read_bytes())
    assert ca.server_cert_path.read_bytes() == server.public_bytes(Encoding.PEM) + issuing
    assert issuing_cert.public_bytes(Encoding.PEM) == issuing
    assert _mode(ca.path / "index.json") == 0o600
    assert _mode(ca.crl_path) == 0o644


def test_a_passphrase_encrypts_both_ca_keys(tmp_path: Path) -> None:
    ca = CADirectory.init(
        tmp_path / "pki", name="Locked", key_type="ed25519", now=NOW, passphrase=b"s3cret"
    )
    for key in ("root-ca.key", "issuing-ca.key"):
        assert (ca.path / key).read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY")


def test_issue_records_the_certificate_and_creates_a_private_out_dir(
    ca: CADirectory, tmp_path: Path
) -> None:
    out = tmp_path / "a" / "b"
    files = _issue(ca, out)
    assert _mode(out) == 0o700
    cert = files.certificate
    assert cert.not_valid_after_utc == NOW + timedelta(days=365)
    assert files.thumbprint_sha256 == thumbprint_sha256(cert)
    assert ca.list_issued() == [
        IssuedRecord(
            cert.serial_number,
            cert.subject.rfc4514_string(),
            ORG_ID,
            NOW + timedelta(days=365),
        )
    ]
    short = _issue(ca, tmp_path / "c", days=30)
    assert short.certificate.not_valid_after_utc == NOW + timedelta(days=30)


def test_the_file_name_is_the_identifier_in_lower_case_and_dashes(
    ca: CADirectory, tmp_path: Path
) -> None:
    files = _issue(ca, tmp_path, organization_id="NTRNL-12.34-")
    assert files.certificate_path == tmp_path / "ntrnl-12-34.pem"
    assert files.key_path == tmp_path / "ntrnl-12-34.key"


def test_revoking_one_certificate_leaves_the_others_valid(ca: CADirectory, tmp_path: Path) -> None:
    first = _issue(ca, tmp_path / "one")
    second = _issue(ca, tmp_path / "two", organization_id="EU.EORI.NL000000002")
    ca.revoke(first.serial_number, now=NOW)
    records = {r.serial_number: r for r in ca.list_issued()}
    revoked = records[first.serial_number]
    assert (revoked.status, revoked.revoked_at, revoked.reason) == ("revoked", NOW, None)
    kept = records[second.serial_number]
    assert (kept.status, kept.revoked_at, kept.reason) == ("valid", None, None)
    (crl,) = load_crls(ca.crl_path.read_bytes())
    assert [r.serial_number for r in crl] == [first.serial_number]
    (entry,) = crl
    assert len(entry.extensions) == 0  # no reason given, none listed


def test_revocation_refusals_say_why(ca: CADirectory, tmp_path: Path) -> None:
    with pytest.raises(PKIError) as unknown:
        ca.revoke(0x3039, now=NOW)
    assert unknown.value.code == "unknown-serial"
    assert unknown.value.detail == "serial 3039 was not issued by this CA"
    files = _issue(ca, tmp_path)
    serial = files.serial_number
    ca.revoke(serial, now=NOW)
    with pytest.raises(PKIError) as again:
        ca.revoke(serial, now=NOW)
    assert again.value.code == "already-revoked"
    assert again.value.detail == f"serial {serial:x} is already revoked"


def test_a_missing_ca_says_where_and_what_to_run(tmp_path: Path) -> None:
    ca = CADirectory(tmp_path / "nothing")
    for call in (ca.list_issued, lambda: ca.refresh_crl(now=NOW)):
        with pytest.raises(PKIError) as info:
            call()
        assert info.value.code == "ca-missing"
        assert info.value.detail == f"no CA in {ca.path}; run `sluis certs init`"


# --- the ledger --------------------------------------------------------------------------


def test_the_ledger_known_answer_and_round_trip() -> None:
    valid = IssuedRecord(0x1F, "CN=A", "EU.EORI.NL1", AT)
    revoked = valid.revoked(NOW, x509.ReasonFlags.key_compromise)
    index = Index(3, (valid, IssuedRecord(0x20, "CN=B", "NTRNL-1", AT).revoked(NOW, None)))
    assert dump_index(Index(3, (valid,))) == (
        b'{\n  "crl_number": 3,\n  "format": 1,\n  "issued": [\n    {\n'
        b'      "not_after": "2031-01-01T00:00:00+00:00",\n'
        b'      "organization_id": "EU.EORI.NL1",\n      "reason": null,\n'
        b'      "revoked_at": null,\n      "serial": "1f",\n      "status": "valid",\n'
        b'      "subject": "CN=A"\n    }\n  ]\n}\n'
    )
    assert load_index(dump_index(index)) == index
    assert load_index(dump_index(Index(0, (revoked,)))).issued == (revoked,)
    assert revoked.reason == "keyCompromise"
    assert revoked.revoked_entry().reason is x509.ReasonFlags.key_compromise
    assert index.issued[1].reason is None
    entry = index.issued[1].revoked_entry()
    assert (entry.serial_number, entry.revoked_at, entry.reason) == (0x20, NOW, None)


def test_a_revoked_record_without_a_time_is_corrupt() -> None:
    record = IssuedRecord(0x1F, "CN=A", ORG_ID, AT, status="revoked")
    with pytest.raises(PKIError) as info:
        record.revoked_entry()
    assert (info.value.code, info.value.detail) == ("index-corrupt", "serial 1f has no revoked_at")


@pytest.mark.parametrize(
    ("document", "detail"),
    [
        ('{"format": 2, "crl_number": 0, "issued": []}', "unsupported index format 2"),
        (
            '{"format": 1, "crl_number": 0, "issued": [{"serial": "1", "subject": "CN=A", '
            '"organization_id": "x", "not_after": "2031-01-01T00:00:00", "status": "valid"}]}',
            "index.json is unreadable: timestamp '2031-01-01T00:00:00' has no time zone",
        ),
        (
            '{"format": 1, "crl_number": 0, "issued": [{"serial": "1", "subject": "CN=A", '
            '"organization_id": "x", "not_after": "2031-01-01T00:00:00Z", "status": "gone"}]}',
            "index.json is unreadable: unknown status 'gone'",
        ),
        ('{"format": 1, "issued": []}', "index.json is unreadable: 'crl_number'"),
    ],
)
def test_a_corrupt_ledger_says_why(document: str, detail: str) -> None:
    with pytest.raises(PKIError) as info:
        load_index(document.encode())
    assert (info.value.code, info.value.detail) == ("index-corrupt", detail)


# --- keys and CSRs -----------------------------------------------------------------------


def test_key_type_refusals_say_why() -> None:
    with pytest.raises(PKIError) as info:
        generate_key("rsa")  # type: ignore[arg-type]  # the mistake under test
    assert info.value.code == "unknown-key-type"
    assert info.value.detail == "key type must be one of ec-p256, ed25519"
    with pytest.raises(PKIError) as curve:
        key_type_of(ec.generate_private_key(ec.SECP384R1()))
    assert curve.value.code == "unknown-key-type"
    assert curve.value.detail == "curve secp384r1 is not a CA key type"


def _csr_der() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(name("x")).sign(key, hashes.SHA256())
    return csr.public_bytes(Encoding.DER)


def test_csr_refusals_say_why() -> None:
    with pytest.raises(PKIError) as unreadable:
        load_csr(b"not a csr")
    assert unreadable.value.code == "bad-csr"
    assert unreadable.value.detail == "the certificate signing request is not PEM or DER"
    der = _csr_der()
    ec_public_key = bytes.fromhex("2a8648ce3d0201")  # id-ecPublicKey
    assert der.count(ec_public_key) == 1
    unknown_key = load_csr(der.replace(ec_public_key, bytes.fromhex("2a8648ce3d0209")))
    with pytest.raises(PKIError) as unchecked:
        public_key_from_csr(unknown_key)
    assert unchecked.value.code == "bad-csr"
    assert unchecked.value.detail == "the certificate signing request cannot be checked"
    broken = bytearray(der)
    broken[-1] ^= 0x01
    with pytest.raises(PKIError) as forged:
        public_key_from_csr(load_csr(bytes(broken)))
    assert forged.value.code == "bad-csr"
    assert forged.value.detail == "the certificate signing request's signature is invalid"


# --- trust bundles and chains ------------------------------------------------------------


def test_trust_bundle_refusals_say_why(ca: CADirectory) -> None:
    with pytest.raises(PKIError) as none:
        TrustStore.from_pem(ca.issuing_cert_path.read_bytes())
    assert none.value.code == "invalid-trust-bundle"
    assert none.value.detail == "the trust bundle holds no self-signed root"
    broken = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    with pytest.raises(PKIError) as unreadable:
        TrustStore.from_pem(broken)
    assert unreadable.value.code == "invalid-trust-bundle"
    assert unreadable.value.detail.startswith("unreadable trust bundle: ")
    assert len(unreadable.value.detail) > len("unreadable trust bundle: ")


def test_a_certificate_naming_itself_but_signed_by_another_key_is_no_root() -> None:
    own, other = generate_key("ec-p256"), generate_key("ec-p256")
    forged = (
        x509.CertificateBuilder()
        .subject_name(name("Fake Root"))
        .issuer_name(name("Fake Root"))
        .public_key(own.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .sign(other, hashes.SHA256())
    )
    with pytest.raises(PKIError) as info:
        TrustStore.from_pem(forged.public_bytes(Encoding.PEM))
    assert info.value.detail == "the trust bundle holds no self-signed root"


def test_an_unreadable_chain_is_malformed() -> None:
    with pytest.raises(CertificateRejected) as info:
        load_pem_chain(b"junk")
    assert (info.value.code, info.value.detail) == (
        "malformed",
        "the certificate chain is not valid PEM",
    )


# --- identifiers and identities ----------------------------------------------------------


def test_an_invalid_identifier_is_shown_short_and_printable() -> None:
    with pytest.raises(PKIError) as info:
        validate_organization_id("x\ny" + "z" * 100)
    shown = "x?y" + "z" * 77  # the first 80 characters, unprintables as '?'
    assert info.value.detail == (
        f"{shown!r} is not an organisation identifier "
        "(expected EU.EORI.<CC><id> or an ETSI form such as NTRNL-12345678)"
    )


def test_is_eori_takes_the_namespaced_form_only() -> None:
    assert is_eori("EU.EORI.NL000000001")
    assert not is_eori("NL000000001")
    assert not is_eori("NTRNL-12345678")


def _leaf(
    pki: Pki, subject: x509.Name, extensions: list[tuple[x509.ExtensionType, bool]]
) -> x509.Certificate:
    return build_cert(
        subject=subject,
        public_key=pki.issuing_key.public_key(),
        issuer=pki.issuing,
        signing_key=pki.issuing_key,
        extensions=extensions,
    )


def test_the_identity_read_from_a_certificate(ec_pki: Pki) -> None:
    cert = ec_pki.leaf(roles=("provider", "officer"))
    assert identity_of(cert) == CertificateIdentity(
        organization_id=ORG_ID,
        organization_name=ORG_NAME,
        participant_uri=participant_uri(ORG_ID),
        roles=frozenset({"provider", "officer"}),
        thumbprint_sha256=thumbprint_sha256(cert),
        serial_number=cert.serial_number,
        subject=cert.subject.rfc4514_string(),
        issuer="CN=Test Issuing CA",
        not_after=cert.not_valid_after_utc,
    )


def test_each_identity_refusal_says_why(ec_pki: Pki) -> None:
    key = ec_pki.issuing_key.public_key()
    no_id = x509.Name([a for a in participant_name() if a.oid != ORGANIZATION_IDENTIFIER_OID])
    two_ids = x509.Name(
        [*participant_name(), x509.NameAttribute(ORGANIZATION_IDENTIFIER_OID, "NTRNL-1")]
    )
    no_name = x509.Name([a for a in participant_name() if a.oid != NameOID.ORGANIZATION_NAME])
    no_san = [
        (e, c) for e, c in leaf_extensions(key) if not isinstance(e, x509.SubjectAlternativeName)
    ]
    cases = [
        (
            _leaf(ec_pki, no_id, leaf_extensions(key)),
            "missing-organization-identifier",
            " has no subject organizationIdentifier (2.5.4.97)",
        ),
        (
            _leaf(ec_pki, two_ids, leaf_extensions(key)),
            "invalid-organization-identifier",
            ": organizationIdentifier must be a single valid identifier",
        ),
        (
            _leaf(ec_pki, no_name, leaf_extensions(key)),
            "missing-organization-name",
            " has no single subject O",
        ),
        (
            _leaf(ec_pki, participant_name(), no_san),
            "missing-participant-uri",
            f" must carry exactly one SAN URI, {participant_uri(ORG_ID)!r}",
        ),
    ]
    for cert, code, words in cases:
        with pytest.raises(CertificateRejected) as info:
            identity_of(cert)
        assert (info.value.code, info.value.detail) == (code, describe(cert) + words)


def test_an_unparseable_certificate_is_malformed(ec_pki: Pki) -> None:
    der = ec_pki.leaf().public_bytes(Encoding.DER)
    uri = der.find(b"urn:sluis:")
    assert der[uri - 2] == 0x86  # the SAN entry's tag: [6] uniformResourceIdentifier
    broken = x509.load_der_x509_certificate(der[: uri - 2] + b"\x89" + der[uri - 1 :])
    with pytest.raises(CertificateRejected) as info:
        identity_of(broken)
    assert info.value.code == "malformed"
    assert info.value.detail.startswith("unparseable certificate data: ")
    assert len(info.value.detail) > len("unparseable certificate data: ")


def test_describe_quotes_the_subject_printable_and_at_most_200_characters(ec_pki: Pki) -> None:
    key = ec_pki.issuing_key.public_key()

    def described(subject: x509.Name) -> str:
        return describe(_leaf(ec_pki, subject, leaf_extensions(key)))

    assert described(name("Acme")) == "'CN=Acme'"
    assert described(x509.Name([])) == "'<empty subject>'"
    assert described(name("a\nb")) == "'CN=a?b'"
    exact = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "c" * 64)] * 3)
    text = exact.rfc4514_string()
    assert len(text) == 3 * 67 + 2 == 203
    assert described(exact) == f"'{text[:200]}...'"
    shorter = x509.Name(
        [
            *[x509.NameAttribute(NameOID.COMMON_NAME, "c" * 64)] * 2,
            x509.NameAttribute(NameOID.COMMON_NAME, "c" * 61),
        ]
    )
    assert len(shorter.rfc4514_string()) == 200
    assert described(shorter) == f"'{shorter.rfc4514_string()}'"


# --- atomic writes -----------------------------------------------------------------------


def test_write_atomic_stages_in_the_target_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The temporary file is made beside the target (a rename never crosses a file system)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-directory"))
    target = tmp_path / "crl.pem"
    write_atomic(target, b"data")
    assert target.read_bytes() == b"data"


def test_issuing_without_a_ca_or_with_a_corrupt_one_says_why(
    ca: CADirectory, tmp_path: Path
) -> None:
    empty = CADirectory(tmp_path / "empty")
    with pytest.raises(PKIError) as missing:
        _issue(empty, tmp_path / "out")
    assert missing.value.code == "ca-missing"
    assert missing.value.detail == f"no CA in {empty.path}; run `sluis certs init`"
    ca.issuing_cert_path.write_bytes(b"not a certificate")
    with pytest.raises(PKIError) as corrupt:
        ca.refresh_crl(now=NOW)
    assert corrupt.value.code == "ca-corrupt"
    assert corrupt.value.detail == f"{ca.issuing_cert_path} is not a PEM certificate"


def test_key_strength_at_its_boundaries() -> None:
    def public(key: object) -> PublicKey:
        return key.public_key()  # type: ignore[attr-defined, no-any-return]  # any private key

    assert (
        key_weakness(public(rsa.generate_private_key(public_exponent=65537, key_size=2048))) is None
    )
    weak_rsa = public(rsa.generate_private_key(public_exponent=65537, key_size=2040))  # noqa: S505 -- the weak key under test
    assert key_weakness(weak_rsa) == "RSA key of 2040 bits (minimum 2048)"
    for curve in (ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()):
        assert key_weakness(public(ec.generate_private_key(curve))) is None
    assert key_weakness(public(ec.generate_private_key(ec.SECP224R1()))) == (
        "elliptic curve secp224r1 is not P-256, P-384 or P-521"
    )
    assert key_weakness(public(x25519.X25519PrivateKey.generate())) == (
        "unsupported key type X25519PublicKey"
    )
    with pytest.raises(PKIError) as info:
        require_strong(weak_rsa)
    assert (info.value.code, info.value.detail) == (
        "weak-key",
        "RSA key of 2040 bits (minimum 2048)",
    )


def test_init_over_an_existing_ca_says_where(ca: CADirectory) -> None:
    with pytest.raises(PKIError) as info:
        CADirectory.init(ca.path, name="Again", key_type="ed25519", now=NOW)
    assert (info.value.code, info.value.detail) == (
        "ca-exists",
        f"a CA already exists in {ca.path}",
    )
