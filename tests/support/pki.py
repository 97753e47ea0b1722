"""A PKI made inside the test run: CAs, participant certificates good and bad, a CRL."""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs import (
    RevokedEntry,
    create_crl,
    create_issuing_ca,
    create_root_ca,
    generate_key,
    issue_participant,
    issue_server,
    participant_uri,
)
from certs.identity import ORGANIZATION_IDENTIFIER_OID

NOW = datetime.now(UTC)


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_key(path: Path, key: ec.EllipticCurvePrivateKey | object) -> Path:
    data = key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


@dataclass
class ClientCert:
    """A participant certificate on disk: ``cert_path`` holds leaf + issuing CA."""

    cert: x509.Certificate
    cert_path: Path
    key_path: Path

    @property
    def leaf_pem(self) -> str:
        return pem(self.cert).decode()


@dataclass
class Pki:
    """Root and issuing CA, the gateway's server certificate, a CRL, and helpers."""

    directory: Path
    key_type: str = "ec-p256"
    revoked: list[RevokedEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.root_key = generate_key(self.key_type)  # type: ignore[arg-type]
        self.root = create_root_ca(common_name="Test Root", key=self.root_key, now=NOW)
        self.issuing_key = generate_key(self.key_type)  # type: ignore[arg-type]
        self.issuing = create_issuing_ca(
            common_name="Test Issuing CA",
            key_public=self.issuing_key.public_key(),
            root=self.root,
            root_key=self.root_key,
            now=NOW,
        )
        self.bundle = self.directory / "trust-bundle.pem"
        self.bundle.write_bytes(pem(self.root) + pem(self.issuing))
        self.crl_path = self.directory / "crl.pem"
        self.write_crl()
        server_key = generate_key(self.key_type)  # type: ignore[arg-type]
        server = issue_server(
            dns_names=["localhost"],
            ip_addresses=["127.0.0.1"],
            public_key=server_key.public_key(),
            issuer=self.issuing,
            issuer_key=self.issuing_key,
            now=NOW,
        )
        self.server_cert = self.directory / "server.pem"
        self.server_cert.write_bytes(pem(server) + pem(self.issuing))
        self.server_key = write_key(self.directory / "server.key", server_key)

    def write_crl(self, *, now: datetime = NOW, days: int = 7) -> None:
        crl = create_crl(
            issuer=self.issuing,
            issuer_key=self.issuing_key,
            revoked=self.revoked,
            now=now,
            days=days,
            crl_number=len(self.revoked) + int(now.timestamp()),
        )
        tmp = self.crl_path.with_suffix(".tmp")
        tmp.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
        tmp.replace(self.crl_path)

    def revoke(self, client: ClientCert) -> None:
        self.revoked.append(RevokedEntry(client.cert.serial_number, NOW, None))
        self.write_crl()

    def client(
        self,
        name: str,
        org_id: str,
        roles: Collection[str] = ("consumer",),
        *,
        now: datetime = NOW,
        days: int = 30,
    ) -> ClientCert:
        """A proper participant certificate issued by this PKI."""
        key = generate_key(self.key_type)  # type: ignore[arg-type]
        cert = issue_participant(
            organization_id=org_id,
            organization_name=name,
            roles=roles,
            public_key=key.public_key(),
            issuer=self.issuing,
            issuer_key=self.issuing_key,
            now=now,
            days=days,
        )
        return self._save(name, cert, key)

    def client_with_eku(self, name: str, org_id: str, eku: x509.ObjectIdentifier) -> ClientCert:
        """A participant-shaped certificate with a chosen extended key usage."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                x509.NameAttribute(ORGANIZATION_IDENTIFIER_OID, org_id),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "consumer"),
                x509.NameAttribute(NameOID.COMMON_NAME, name),
            ]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.issuing.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(minutes=5))
            .not_valid_after(NOW + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.UniformResourceIdentifier(participant_uri(org_id))]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                critical=True,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.issuing_key.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(self.issuing_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        return self._save(name, cert, key)

    def _save(self, name: str, cert: x509.Certificate, key: object) -> ClientCert:
        slug = f"{name.lower().replace(' ', '-')}-{cert.serial_number:x}"[:60]
        cert_path = self.directory / f"{slug}.pem"
        cert_path.write_bytes(pem(cert) + pem(self.issuing))
        return ClientCert(cert, cert_path, write_key(self.directory / f"{slug}.key", key))


SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
