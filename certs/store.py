"""A CA directory on disk (default ``$SLUIS_HOME/pki``): the IO edge around the pure PKI.

Layout (directory mode 0700)::

    root-ca.pem  root-ca.key        self-signed root (pathlen 1)
    issuing-ca.pem  issuing-ca.key  signs participants, the server and the CRL
    server.pem  server.key          serverAuth leaf + issuing CA, for ``sluis serve``
    trust-bundle.pem                root + issuing CA: what the gateway trusts
    crl.pem                         the issuing CA's current CRL
    index.json                      ledger of issued certificates (see certs.index)

Keys are PKCS#8 PEM, mode 0600, unencrypted unless a passphrase is given (CA keys only).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certs.crl import create_crl
from certs.csr import load_csr, public_key_from_csr
from certs.errors import PKIError
from certs.files import ensure_private_dir, read_private_key, write_atomic, write_private_key
from certs.identity import thumbprint_sha256
from certs.index import Index, IssuedRecord, dump_index, load_index
from certs.issue import create_issuing_ca, create_root_ca, issue_participant, issue_server
from certs.keys import KeyType, PrivateKey, PublicKey, generate_key, key_type_of

ROOT, ISSUING, SERVER = "root-ca", "issuing-ca", "server"
BUNDLE, CRL, INDEX = "trust-bundle.pem", "crl.pem", "index.json"
DEFAULT_CRL_DAYS = 7


@dataclass(frozen=True)
class IssuedFiles:
    """What :meth:`CADirectory.issue` produced."""

    serial_number: int
    thumbprint_sha256: str
    certificate_path: Path
    key_path: Path | None
    certificate: x509.Certificate


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)


def _participant_key(csr: bytes | None, key_type: KeyType) -> tuple[PublicKey, PrivateKey | None]:
    """The key to certify: from the CSR, or a fresh one we generate (and must write)."""
    if csr is not None:
        return public_key_from_csr(load_csr(csr)), None
    key = generate_key(key_type)
    return key.public_key(), key


class CADirectory:
    """A dev/fieldlab CA kept in one directory. ``now`` is always passed in."""

    def __init__(self, path: Path, *, passphrase: bytes | None = None) -> None:
        """Open the CA at ``path``; ``passphrase`` decrypts the CA keys if they are encrypted."""
        self.path = path
        self._passphrase = passphrase

    @classmethod
    def init(
        cls,
        path: Path,
        *,
        name: str,
        key_type: KeyType,
        now: datetime,
        server_names: Sequence[str] = ("localhost",),
        server_ips: Sequence[str] = ("127.0.0.1", "::1"),
        passphrase: bytes | None = None,
    ) -> CADirectory:
        """Create root and issuing CA, server certificate, trust bundle, empty CRL and index.

        PKIError ``ca-exists`` when ``path`` already holds a CA.
        """
        ca = cls(path, passphrase=passphrase)
        ensure_private_dir(path)
        if any((path / f).exists() for f in (f"{ROOT}.key", f"{ROOT}.pem", INDEX)):
            raise PKIError("ca-exists", f"a CA already exists in {path}")
        root_key, issuing_key = generate_key(key_type), generate_key(key_type)
        root = create_root_ca(common_name=f"{name} Root CA", key=root_key, now=now)
        issuing = create_issuing_ca(
            common_name=f"{name} Issuing CA",
            key_public=issuing_key.public_key(),
            root=root,
            root_key=root_key,
            now=now,
        )
        write_private_key(path / f"{ROOT}.key", root_key, passphrase)
        write_private_key(path / f"{ISSUING}.key", issuing_key, passphrase)
        write_atomic(path / f"{ROOT}.pem", _pem(root))
        write_atomic(path / f"{ISSUING}.pem", _pem(issuing))
        write_atomic(path / BUNDLE, _pem(root, issuing))
        ca.write_server(server_names, server_ips, now=now)
        ca._publish(Index(), now=now, days=DEFAULT_CRL_DAYS)
        return ca

    @property
    def root_cert_path(self) -> Path:
        """The self-signed root CA certificate (PEM)."""
        return self.path / f"{ROOT}.pem"

    @property
    def issuing_cert_path(self) -> Path:
        """The issuing CA certificate (PEM)."""
        return self.path / f"{ISSUING}.pem"

    @property
    def trust_bundle_path(self) -> Path:
        """Root + issuing CA (PEM): what the gateway trusts for client certificates."""
        return self.path / BUNDLE

    @property
    def crl_path(self) -> Path:
        """The issuing CA's current CRL (PEM)."""
        return self.path / CRL

    @property
    def server_cert_path(self) -> Path:
        """The gateway's server certificate followed by the issuing CA (PEM)."""
        return self.path / f"{SERVER}.pem"

    @property
    def server_key_path(self) -> Path:
        """The gateway's server key (PKCS#8 PEM, unencrypted, 0600)."""
        return self.path / f"{SERVER}.key"

    def write_server(self, names: Sequence[str], ips: Sequence[str], *, now: datetime) -> Path:
        """Issue the gateway's serverAuth certificate and key (the key must not exist yet)."""
        issuing, issuing_key = self._issuer()
        key = generate_key(key_type_of(issuing_key))
        cert = issue_server(
            dns_names=names,
            ip_addresses=ips,
            public_key=key.public_key(),
            issuer=issuing,
            issuer_key=issuing_key,
            now=now,
        )
        write_private_key(self.server_key_path, key)
        write_atomic(self.server_cert_path, _pem(cert, issuing))
        return self.server_cert_path

    def issue(
        self,
        *,
        organization_id: str,
        organization_name: str,
        roles: Collection[str],
        now: datetime,
        out_dir: Path,
        days: int = 365,
        csr: bytes | None = None,
    ) -> IssuedFiles:
        """Issue a participant certificate; generate its key unless ``csr`` is given.

        Writes ``<out_dir>/<slug>.pem`` (leaf + issuing CA) and, without a CSR,
        ``<out_dir>/<slug>.key`` (0600, never overwritten: PKIError ``key-exists``).
        """
        issuing, issuing_key = self._issuer()
        public, key = _participant_key(csr, key_type_of(issuing_key))
        cert = issue_participant(
            organization_id=organization_id,
            organization_name=organization_name,
            roles=roles,
            public_key=public,
            issuer=issuing,
            issuer_key=issuing_key,
            now=now,
            days=days,
        )
        out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        slug = re.sub(r"[^a-z0-9]+", "-", organization_id.lower()).strip("-")
        key_path = None
        if key is not None:
            key_path = out_dir / f"{slug}.key"
            write_private_key(key_path, key)
        subject = cert.subject.rfc4514_string()
        record = IssuedRecord(
            cert.serial_number, subject, organization_id, cert.not_valid_after_utc
        )
        index = self._index()
        self._save_index(Index(index.crl_number, (*index.issued, record)))
        cert_path = out_dir / f"{slug}.pem"
        write_atomic(cert_path, _pem(cert, issuing))
        return IssuedFiles(cert.serial_number, thumbprint_sha256(cert), cert_path, key_path, cert)

    def revoke(
        self,
        serial_number: int,
        *,
        now: datetime,
        reason: x509.ReasonFlags | None = None,
        crl_days: int = DEFAULT_CRL_DAYS,
    ) -> None:
        """Mark ``serial_number`` revoked in the index and publish a new CRL listing it.

        PKIError ``unknown-serial`` or ``already-revoked``.
        """
        index = self._index()
        matches = [r for r in index.issued if r.serial_number == serial_number]
        if not matches:
            raise PKIError("unknown-serial", f"serial {serial_number:x} was not issued by this CA")
        if matches[0].status == "revoked":
            raise PKIError("already-revoked", f"serial {serial_number:x} is already revoked")
        issued = tuple(
            r.revoked(now, reason) if r.serial_number == serial_number else r for r in index.issued
        )
        self._publish(Index(index.crl_number, issued), now=now, days=crl_days)

    def refresh_crl(self, *, now: datetime, days: int = DEFAULT_CRL_DAYS) -> Path:
        """Re-sign the CRL (new number, new nextUpdate) and return its path."""
        self._publish(self._index(), now=now, days=days)
        return self.crl_path

    def list_issued(self) -> list[IssuedRecord]:
        """Every certificate issued so far, oldest first."""
        return list(self._index().issued)

    def _publish(self, index: Index, *, now: datetime, days: int) -> None:
        """Sign a CRL for ``index`` and save both: the ledger first, so it is never behind."""
        issuing, issuing_key = self._issuer()
        number = index.crl_number + 1
        revoked = [r.revoked_entry() for r in index.issued if r.status == "revoked"]
        crl = create_crl(
            issuer=issuing,
            issuer_key=issuing_key,
            revoked=revoked,
            now=now,
            crl_number=number,
            days=days,
        )
        self._save_index(Index(number, index.issued))
        write_atomic(self.crl_path, crl.public_bytes(Encoding.PEM))

    def _issuer(self) -> tuple[x509.Certificate, PrivateKey]:
        cert_path = self.issuing_cert_path
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except FileNotFoundError as exc:
            raise PKIError("ca-missing", f"no CA in {self.path}; run `sluis certs init`") from exc
        except ValueError as exc:
            raise PKIError("ca-corrupt", f"{cert_path} is not a PEM certificate") from exc
        return cert, read_private_key(self.path / f"{ISSUING}.key", self._passphrase)

    def _index(self) -> Index:
        try:
            return load_index((self.path / INDEX).read_bytes())
        except FileNotFoundError as exc:
            raise PKIError("ca-missing", f"no CA in {self.path}; run `sluis certs init`") from exc

    def _save_index(self, index: Index) -> None:
        write_atomic(self.path / INDEX, dump_index(index), mode=0o600)
