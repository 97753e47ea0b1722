"""OpenSSL as an independent verifier: it agrees with us on a good and on a revoked leaf."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from certs import CADirectory, CertificateRejected, TrustStore, load_crls, load_pem_chain, verify
from certs.keys import KeyType

OPENSSL = "/usr/bin/openssl"
pytestmark = pytest.mark.skipif(shutil.which(OPENSSL) is None, reason=f"{OPENSSL} is not installed")


def _openssl(ca: CADirectory, leaf_pem: Path, tmp_path: Path) -> tuple[bool, str]:
    leaf_only = tmp_path / "leaf-only.pem"
    leaf_only.write_bytes(load_pem_chain(leaf_pem.read_bytes())[0].public_bytes(Encoding.PEM))
    result = subprocess.run(
        [OPENSSL, "verify", "-CAfile", str(ca.trust_bundle_path), "-crl_check",
         "-CRLfile", str(ca.crl_path), "-purpose", "sslclient", str(leaf_only)],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    return result.returncode == 0, result.stdout + result.stderr


def _we_accept(ca: CADirectory, leaf_pem: Path, now: datetime) -> bool:
    trust = TrustStore.from_pem(ca.trust_bundle_path.read_bytes())
    crls = load_crls(ca.crl_path.read_bytes())
    try:
        verify(load_pem_chain(leaf_pem.read_bytes()), trust, crls, now=now)
    except CertificateRejected:
        return False
    return True


@pytest.mark.parametrize("key_type", ["ec-p256", "ed25519"])
def test_openssl_agrees_on_good_and_revoked(key_type: KeyType, tmp_path: Path) -> None:
    now = datetime.now(UTC)  # openssl verifies at the wall clock, so we must too
    ca = CADirectory.init(tmp_path / "pki", name="OpenSSL", key_type=key_type, now=now)
    files = ca.issue(
        organization_id="EU.EORI.NL000000001", organization_name="Acme", roles=["consumer"],
        now=now, out_dir=tmp_path,
    )  # fmt: skip
    assert _we_accept(ca, files.certificate_path, now)
    accepted, output = _openssl(ca, files.certificate_path, tmp_path)
    assert accepted, output
    ca.revoke(files.serial_number, now=now)
    assert not _we_accept(ca, files.certificate_path, now)
    accepted, output = _openssl(ca, files.certificate_path, tmp_path)
    assert not accepted
    assert "certificate revoked" in output
