"""The benchmarks' shared fixture: a PKI, consumers with certificates, a registry, a gateway.

Every benchmark that talks to a real gateway builds its world here: one CA directory
(root + issuing CA, server certificate, CRL), a client certificate per consumer, the
participants, OAuth clients and datasets registered straight through the services, and
the environment that starts ``sluis serve`` (or any child process) on it.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import certs
from certs.store import ROOT
from gateway.datasets.factory import create_connector
from gateway.datasets.schemas import DatasetSpec
from gateway.datasets.service import DatasetService
from gateway.oauth.clients import ClientService
from gateway.oauth.schemas import ClientCreate
from gateway.participants.schemas import ParticipantCreate
from gateway.participants.service import ParticipantService
from gateway.settings import ensure_dev_signing_key
from gateway.storage.db import Database

PROVIDER = "EU.EORI.NL000000001"
RESEARCH = "https://w3id.org/dpv#AcademicResearch"


def consumer_ids(n: int) -> list[str]:
    """``n`` distinct, valid consumer organisation ids."""
    return [f"NTRNL-{40000001 + i}" for i in range(n)]


@dataclass(frozen=True)
class Party:
    """A consumer with its client certificate and key."""

    id: str
    cert: Path
    key: Path


@dataclass(frozen=True)
class Dataset:
    """A dataset to register: spec and policy text (YAML)."""

    spec: DatasetSpec
    policy: str


class World:
    """A CA, ``consumers`` with certificates, a dev signing key, all under ``home``."""

    def __init__(
        self, home: Path, consumers: Sequence[str], *, now: datetime | None = None
    ) -> None:
        self.home = home
        self.now = now or datetime.now(UTC)
        self.ca = certs.CADirectory.init(
            home / "pki", name="Bench", key_type="ec-p256", now=self.now
        )
        self.consumers = [self._issue(cid) for cid in consumers]
        self.signing_key = ensure_dev_signing_key(home / "dev")

    def _issue(self, cid: str) -> Party:
        issued = self.ca.issue(
            organization_id=cid,
            organization_name=f"Consumer {cid}",
            roles=["consumer"],
            now=self.now,
            out_dir=self.home / "clients",
        )
        assert issued.key_path is not None
        return Party(cid, issued.certificate_path, issued.key_path)

    def client_context(self, party: Party) -> ssl.SSLContext:
        """A TLS client context trusting the CA and presenting ``party``'s certificate."""
        context = ssl.create_default_context(cafile=str(self.ca.trust_bundle_path))
        context.load_cert_chain(party.cert, party.key)
        return context

    def env(self, database_url: str | None = None) -> dict[str, str]:
        """The environment for ``sluis serve`` on this world (the process's own SLUIS_ dropped)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLUIS_", "OTEL_"))}
        ca = self.ca
        env.update({
            "SLUIS_HOME": str(self.home), "SLUIS_SIGNING_KEY_FILE": str(self.signing_key),
            "SLUIS_TLS_CERT": str(ca.server_cert_path), "SLUIS_TLS_KEY": str(ca.server_key_path),
            "SLUIS_TLS_CLIENT_CA": str(ca.trust_bundle_path), "SLUIS_TLS_CRL": str(ca.crl_path),
        })  # fmt: skip
        if database_url:
            env["SLUIS_DATABASE_URL"] = database_url
        return env

    def sqlite_url(self) -> str:
        """The gateway's default database in this world's home."""
        return f"sqlite+aiosqlite:///{self.home / 'sluis.db'}"

    async def register(
        self, url: str, *, participants: bool = True, clients: bool = False,
        datasets: Sequence[Dataset] = (),
    ) -> None:  # fmt: skip
        """Migrate ``url`` and register the provider, the consumers, their clients, datasets."""
        db = Database(url)
        try:
            await db.upgrade()
            if participants:
                await self._participants(db, provider=bool(datasets))
            for cid in (p.id for p in self.consumers if clients):
                scopes = [f"dataset:{d.spec.id}" for d in datasets]
                client = ClientCreate(client_id=cid, auth_method="tls_client_auth", scopes=scopes)
                await ClientService(db).create(client, now=self.now)
            service = DatasetService(db, create_connector)
            for dataset in datasets:
                await service.register(dataset.spec, dataset.policy, "yaml", now=self.now)
        finally:
            await db.dispose()

    async def _participants(self, db: Database, *, provider: bool) -> None:
        service = ParticipantService(db)
        if provider:
            data = ParticipantCreate(id=PROVIDER, name="Maker", roles=["provider"])
            await service.create(data, now=self.now)
        for party in self.consumers:
            data = ParticipantCreate(id=party.id, name=f"Consumer {party.id}", roles=["consumer"])
            await service.create(data, now=self.now)

    def crl_with_root(self) -> Path:
        """The issuing CA's CRL plus an empty root CRL (for OpenSSL's CRL check on every level)."""
        root_key = serialization.load_pem_private_key(
            (self.ca.path / f"{ROOT}.key").read_bytes(), None
        )
        root = x509.load_pem_x509_certificate(self.ca.root_cert_path.read_bytes())
        assert isinstance(root_key, ec.EllipticCurvePrivateKey)  # the World's CA is ec-p256
        crl = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(root.subject)
            .last_update(self.now - timedelta(minutes=5))
            .next_update(self.now + timedelta(days=7))
            .sign(root_key, hashes.SHA256())
        )
        path = self.home / "crls.pem"
        path.write_bytes(
            self.ca.crl_path.read_bytes() + crl.public_bytes(serialization.Encoding.PEM)
        )
        return path


@contextmanager
def child(
    command: Sequence[str], env: dict[str, str], url: str, context: ssl.SSLContext,
    *, timeout: float = 30,
) -> Iterator[str]:  # fmt: skip
    """Run ``command``; yield ``url`` once its /healthz answers over TLS (``context``); stop it."""
    process = subprocess.Popen(  # noqa: S603 - our own fixed commands
        list(command), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                httpx.get(f"{url}/healthz", verify=context, timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{command[0]} did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)
