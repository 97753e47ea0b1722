"""CADirectory: files, modes, refusals, revocation and the CSR path, in tmp_path."""

from __future__ import annotations

import json
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

from certs import CADirectory, CertificateRejected, PKIError, TrustStore, load_crls, load_pem_chain
from certs import verify as verify_chain
from certs.files import read_private_key, write_private_key
from certs.keys import KeyType, generate_key
from tests.certs.pki_builders import NOW, ORG_ID

LATER = NOW + timedelta(hours=1)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _verify(ca: CADirectory, pem: Path) -> str:
    trust = TrustStore.from_pem(ca.trust_bundle_path.read_bytes())
    crls = load_crls(ca.crl_path.read_bytes())
    return verify_chain(load_pem_chain(pem.read_bytes()), trust, crls, now=LATER).organization_id


@pytest.fixture(params=["ec-p256", "ed25519"])
def ca(request: pytest.FixtureRequest, tmp_path: Path) -> CADirectory:
    key_type: KeyType = request.param
    return CADirectory.init(tmp_path / "pki", name="Test", key_type=key_type, now=NOW)


def test_init_layout_and_modes(ca: CADirectory) -> None:
    names = {p.name for p in ca.path.iterdir()}
    assert names == {
        "root-ca.pem",
        "root-ca.key",
        "issuing-ca.pem",
        "issuing-ca.key",
        "server.pem",
        "server.key",
        "trust-bundle.pem",
        "crl.pem",
        "index.json",
    }
    assert _mode(ca.path) == 0o700
    for key in ca.path.glob("*.key"):
        assert _mode(key) == 0o600, key
    trust = TrustStore.from_pem(ca.trust_bundle_path.read_bytes())
    assert [c.subject.rfc4514_string() for c in trust.anchors] == ["CN=Test Root CA"]
    assert [c.subject.rfc4514_string() for c in trust.intermediates] == ["CN=Test Issuing CA"]
    (crl,) = load_crls(ca.crl_path.read_bytes())
    assert crl.is_signature_valid(trust.intermediates[0].public_key())  # type: ignore[arg-type]
    assert len(list(crl)) == 0
    server = load_pem_chain(ca.server_cert_path.read_bytes())
    san = server[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert server[1] == trust.intermediates[0]
    assert json.loads((ca.path / "index.json").read_text())["issued"] == []


def test_init_refuses_an_existing_ca(ca: CADirectory) -> None:
    with pytest.raises(PKIError) as info:
        CADirectory.init(ca.path, name="Again", key_type="ec-p256", now=NOW)
    assert info.value.code == "ca-exists"


def test_issue_writes_key_and_chain_and_verifies(ca: CADirectory, tmp_path: Path) -> None:
    out = tmp_path / "out"
    files = ca.issue(
        organization_id=ORG_ID, organization_name="Acme", roles=["consumer"], now=NOW, out_dir=out
    )
    assert files.certificate_path == out / "eu-eori-nl000000001.pem"
    assert files.key_path == out / "eu-eori-nl000000001.key"
    assert _mode(files.key_path) == 0o600
    assert len(load_pem_chain(files.certificate_path.read_bytes())) == 2
    assert _verify(ca, files.certificate_path) == ORG_ID
    (record,) = ca.list_issued()
    assert (record.serial_number, record.status) == (files.serial_number, "valid")
    raw = json.loads((ca.path / "index.json").read_text())["issued"][0]
    assert raw["serial"] == f"{files.serial_number:x}"
    with pytest.raises(PKIError) as info:
        ca.issue(
            organization_id=ORG_ID,
            organization_name="Acme",
            roles=["consumer"],
            now=NOW,
            out_dir=out,
        )
    assert info.value.code == "key-exists"
    assert len(ca.list_issued()) == 1  # nothing recorded for the refused issuance


def test_revoke_then_verify_fails(ca: CADirectory, tmp_path: Path) -> None:
    files = ca.issue(
        organization_id=ORG_ID,
        organization_name="Acme",
        roles=["consumer"],
        now=NOW,
        out_dir=tmp_path,
    )
    ca.revoke(files.serial_number, now=NOW, reason=x509.ReasonFlags.key_compromise)
    with pytest.raises(CertificateRejected) as info:
        _verify(ca, files.certificate_path)
    assert info.value.code == "revoked"
    (record,) = ca.list_issued()
    assert (record.status, record.reason, record.revoked_at) == ("revoked", "keyCompromise", NOW)
    with pytest.raises(PKIError) as again:
        ca.revoke(files.serial_number, now=NOW)
    assert again.value.code == "already-revoked"
    with pytest.raises(PKIError) as unknown:
        ca.revoke(12345, now=NOW)
    assert unknown.value.code == "unknown-serial"


def test_crl_numbers_increase_and_refresh_extends(ca: CADirectory) -> None:
    def number() -> int:
        (crl,) = load_crls(ca.crl_path.read_bytes())
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number

    first = number()
    path = ca.refresh_crl(now=NOW + timedelta(days=6), days=3)
    (crl,) = load_crls(path.read_bytes())
    assert number() == first + 1
    assert crl.next_update_utc == NOW + timedelta(days=9)


def test_issue_from_csr(ca: CADirectory, tmp_path: Path) -> None:
    key = generate_key("ec-p256")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "whatever")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    files = ca.issue(
        organization_id="NTRNL-12345678",
        organization_name="Beta",
        roles=["provider"],
        now=NOW,
        out_dir=tmp_path,
        csr=csr.public_bytes(Encoding.PEM),
    )
    assert files.key_path is None
    assert not (tmp_path / "ntrnl-12345678.key").exists()
    assert files.certificate.public_key() == key.public_key()
    assert _verify(ca, files.certificate_path) == "NTRNL-12345678"
    with pytest.raises(PKIError) as info:
        ca.issue(
            organization_id="NTRNL-12345678",
            organization_name="Beta",
            roles=["provider"],
            now=NOW,
            out_dir=tmp_path,
            csr=b"not a csr",
        )
    assert info.value.code == "bad-csr"


def test_group_readable_ca_key_is_refused(ca: CADirectory, tmp_path: Path) -> None:
    (ca.path / "issuing-ca.key").chmod(0o640)
    with pytest.raises(PKIError) as info:
        ca.issue(
            organization_id=ORG_ID,
            organization_name="Acme",
            roles=["consumer"],
            now=NOW,
            out_dir=tmp_path,
        )
    assert info.value.code == "key-permissions"


def test_key_files_are_never_overwritten_nor_followed(tmp_path: Path) -> None:
    target = tmp_path / "k.key"
    write_private_key(target, generate_key("ed25519"))
    with pytest.raises(PKIError) as info:
        write_private_key(target, generate_key("ed25519"))
    assert info.value.code == "key-exists"
    link = tmp_path / "link.key"
    link.symlink_to(tmp_path / "elsewhere.key")
    with pytest.raises(PKIError):
        write_private_key(link, generate_key("ed25519"))
    assert not (tmp_path / "elsewhere.key").exists()


def test_passphrase_protects_ca_keys(tmp_path: Path) -> None:
    ca = CADirectory.init(
        tmp_path / "pki", name="Locked", key_type="ec-p256", now=NOW, passphrase=b"s3cret"
    )
    assert b"ENCRYPTED" in (ca.path / "issuing-ca.key").read_bytes()
    assert b"ENCRYPTED" not in ca.server_key_path.read_bytes()
    for passphrase in (None, b"wrong"):
        with pytest.raises(PKIError) as info:
            read_private_key(ca.path / "issuing-ca.key", passphrase)
        assert info.value.code == "key-passphrase"
    files = ca.issue(
        organization_id=ORG_ID,
        organization_name="Acme",
        roles=["consumer"],
        now=NOW,
        out_dir=tmp_path,
    )
    assert _verify(ca, files.certificate_path) == ORG_ID


def test_missing_ca(tmp_path: Path) -> None:
    with pytest.raises(PKIError) as info:
        CADirectory(tmp_path / "nothing").list_issued()
    assert info.value.code == "ca-missing"


def test_corrupt_index(ca: CADirectory) -> None:
    (ca.path / "index.json").write_text('{"format": 1, "issued": [{"serial": "zz"}]}')
    with pytest.raises(PKIError) as info:
        ca.list_issued()
    assert info.value.code == "index-corrupt"


def test_trust_bundle_needs_a_root(ca: CADirectory) -> None:
    issuing_only = ca.path.joinpath("issuing-ca.pem").read_bytes()
    for data in (b"", b"junk", issuing_only):
        with pytest.raises(PKIError) as info:
            TrustStore.from_pem(data)
        assert info.value.code == "invalid-trust-bundle"


def test_key_helpers_refuse_foreign_key_types(tmp_path: Path) -> None:
    path = tmp_path / "x.key"
    path.write_bytes(
        x25519.X25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )
    path.chmod(0o600)
    with pytest.raises(PKIError) as info:
        read_private_key(path)
    assert info.value.code == "unsupported-key"
