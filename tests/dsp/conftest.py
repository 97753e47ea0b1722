"""One provider gateway for the DSP tests (session scope: started once), over real mTLS."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.client import mtls_context
from gateway.storage.db import Database
from tests.support.dsp_consumer import CallbackServer, callback_server
from tests.support.pki import ClientCert, Pki
from tests.support.registry import files_connector, register_dataset, register_participants
from tests.support.server import client_context, gateway_settings, running_gateway

MAKER = "EU.EORI.NL000000001"
UNIVERSITY = "NTRNL-40000001"
LAB = "NTRNL-40000002"
OFFICER = "NTRNL-40000005"
RESEARCH = "https://w3id.org/dpv#AcademicResearch"

POLICY = f"""
uid: urn:sluis:policy:maker:machines
type: Offer
assigner: urn:sluis:participant:{MAKER}
target: urn:sluis:dataset:machines
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    assignee: urn:sluis:participant:{UNIVERSITY}
    constraints:
      - [purpose, isAnyOf, [dpv:AcademicResearch]]
      - [count, lteq, 6]
    data:
      columns: [machine]
      max_rows: 1000
"""

MANUAL_POLICY = POLICY.replace("machines", "machines-manual")


@dataclass
class Provider:
    url: str
    pki: Pki
    home: Path
    certs: dict[str, ClientCert]
    consumer: CallbackServer  # the consumer connector's callback endpoint

    def client(self, who: str | None, token: str | None = None) -> httpx.Client:
        """An mTLS client as ``who`` (None: no client certificate)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if who is None:
            verify = client_context(self.pki, None)
        else:
            cert = self.certs[who]
            verify = mtls_context(self.pki.bundle, cert.cert_path, cert.key_path)
        return httpx.Client(base_url=self.url, verify=verify, headers=headers, timeout=30)


async def _seed(url: str) -> None:
    db = Database(url)
    await db.upgrade()
    await register_participants(
        db,
        [
            (MAKER, "Machine Maker BV", ["provider", "operator"]),
            (UNIVERSITY, "Universiteit Oost", ["consumer"]),
            (LAB, "Fieldlab Noord", ["consumer"]),
            (OFFICER, "Security Office", ["officer"]),
        ],
    )
    for dataset_id, policy, approval in [
        ("machines", POLICY, "automatic"),
        ("machines-manual", MANUAL_POLICY, "manual"),
    ]:
        await register_dataset(
            db, dataset_id, provider=MAKER, policy=policy, connector=files_connector(),
            approval=approval,
        )  # fmt: skip
    await db.dispose()


@pytest.fixture(scope="session")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """A Sluis gateway on loopback (SQLite) with two datasets of Machine Maker BV."""
    home = tmp_path_factory.mktemp("dsp-provider")
    pki = Pki(home / "pki")
    certs = {
        "maker": pki.client("Machine Maker BV", MAKER, ["provider", "operator"]),
        "university": pki.client("Universiteit Oost", UNIVERSITY),
        "lab": pki.client("Fieldlab Noord", LAB),
        "officer": pki.client("Security Office", OFFICER, ["officer"]),
    }
    url = f"sqlite+aiosqlite:///{home / 'sluis.db'}"
    asyncio.run(_seed(url))
    settings = gateway_settings(
        pki, home, url, dsp_callback_allow_networks=["127.0.0.1/32"], dsp_callback_ca=pki.bundle,
        dsp_client_cert=certs["maker"].cert_path, dsp_client_key=certs["maker"].key_path,
    )  # fmt: skip
    with (
        callback_server(pki.server_cert, pki.server_key, pki.bundle) as consumer,
        running_gateway(settings) as base,
    ):
        provider = Provider(base, pki, home, certs, consumer)
        with provider.client("maker") as admin:  # a transfer's token is for a registered client
            body = {"client_id": UNIVERSITY, "auth_method": "tls_client_auth",
                    "scopes": ["dataset:machines"]}  # fmt: skip
            assert admin.post("/v1/admin/clients", json=body).status_code == 201
        yield provider
