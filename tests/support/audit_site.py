"""A gateway site for the audit-identity tests: PKI, registered parties, mTLS clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi import FastAPI

from gateway.audit.keys import Verifier
from gateway.client import mtls_context
from gateway.settings import Settings
from gateway.storage.db import Database
from tests.support.databases import database_url
from tests.support.pki import ClientCert, Pki
from tests.support.registry import register_participants
from tests.support.server import gateway_settings

MAKER = "EU.EORI.NL000000001"
UNIVERSITY = "NTRNL-40000001"
OFFICER = "NTRNL-40000005"
OLD_URL = "https://old.example:8443"
NEW_URL = "https://new.example"
ORIGIN = "old.example:8443/audit"


@dataclass
class Site:
    pki: Pki
    home: Path
    database: str
    certs: dict[str, ClientCert]

    def settings(self, **overrides: Any) -> Settings:
        return gateway_settings(self.pki, self.home, self.database, **overrides)


async def _register(url: str) -> None:
    db = Database(url)
    await db.upgrade()
    await register_participants(
        db,
        [
            (MAKER, "Machine Maker BV", ["provider", "operator"]),
            (UNIVERSITY, "Universiteit Oost", ["consumer"]),
            (OFFICER, "Security Office", ["officer"]),
        ],
    )
    await db.dispose()


@contextmanager
def open_site(backend: str, directory: Path) -> Iterator[Site]:
    """A PKI, a registered maker, university and officer, on ``backend``'s database."""
    pki = Pki(directory / "pki")
    certs = {
        "maker": pki.client("Machine Maker BV", MAKER, ["provider", "operator"]),
        "officer": pki.client("Security Office", OFFICER, ["officer"]),
    }
    with database_url(backend, directory) as url:
        asyncio.run(_register(url))
        yield Site(pki, directory, url, certs)


def client(site: Site, base: str, who: str) -> httpx.Client:
    cert = site.certs[who]
    context = mtls_context(site.pki.bundle, cert.cert_path, cert.key_path)
    return httpx.Client(base_url=base, verify=context, timeout=30)


def make_changes(site: Site, base: str, names: list[str]) -> None:
    """Admin changes (each an audit entry), then wait until a checkpoint covers them all."""
    with client(site, base, "maker") as admin:
        for name in names:
            changed = admin.patch(f"/v1/admin/participants/{UNIVERSITY}", json={"name": name})
            assert changed.status_code == 200, changed.text
    with client(site, base, "officer") as officer:
        for _ in range(200):  # the checkpointer signs about half a second after new entries
            entries = officer.get("/v1/audit/entries", params={"limit": 1000}).json()["entries"]
            size = int(officer.get("/v1/audit/checkpoint").text.split("\n")[1])
            if size >= len(entries):
                return
            time.sleep(0.05)
    raise AssertionError("no checkpoint covered the new entries")


async def start(app: FastAPI) -> None:
    """Run the app's start-up and shut-down (what uvicorn's lifespan does)."""
    async with app.router.lifespan_context(app):
        pass


def public_key(path: Path) -> bytes:
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def first_key(site: Site) -> str:
    return Verifier(ORIGIN, public_key(site.home / "audit-key.pem")).key_string()
