"""The client CA the Helm chart has cert-manager make works as the gateway's trust bundle.

cert-manager's ``isCA`` Certificate from a ``selfSigned`` Issuer is a self-signed root with
``basicConstraints CA:TRUE`` (no path length), key usage ``digitalSignature, keyCertSign,
cRLSign`` and a subject key identifier; its Secret's ``ca.crt`` is that certificate, which
the pods mount as the bundle. Participants are issued directly under it (no issuing CA), and
the CRL is signed by it. Built here with the same extensions, then verified as the gateway does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certs import RevokedEntry, create_crl, issue_participant, verify
from certs.errors import CertificateRejected
from certs.trust import TrustStore

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _cert_manager_ca(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sluis participants CA")])
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(hours=1))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(usage, critical=True)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def test_participant_under_a_cert_manager_root_verifies_and_revokes() -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert_manager_ca(ca_key)
    trust = TrustStore.from_pem(ca.public_bytes(serialization.Encoding.PEM))  # ca.crt
    leaf = issue_participant(
        organization_id="NTRNL-40000001",
        organization_name="Universiteit Oost",
        roles=["consumer"],
        public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
        issuer=ca,
        issuer_key=ca_key,
        now=NOW,
    )
    crl = create_crl(issuer=ca, issuer_key=ca_key, revoked=[], now=NOW, crl_number=1, days=7)
    assert verify([leaf], trust, [crl], now=NOW).organization_id == "NTRNL-40000001"
    revoked = create_crl(
        issuer=ca,
        issuer_key=ca_key,
        revoked=[RevokedEntry(leaf.serial_number, NOW, None)],
        now=NOW,
        crl_number=2,
        days=7,
    )
    with pytest.raises(CertificateRejected):
        verify([leaf], trust, [revoked], now=NOW)
    with pytest.raises(CertificateRejected):  # no CRL from this CA: refused, as for any CA
        verify([leaf], trust, [], now=NOW)
