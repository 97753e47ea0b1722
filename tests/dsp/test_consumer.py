"""DSP consumer side (issue 14, step 4): two Sluis gateways, one provider and one consumer,
each with its own SQLite database, complete catalog -> negotiation -> transfer -> pull with
each other over loopback with real mTLS; every DSP message either sends or receives is
schema-valid; each audit log holds its half and verifies.

The consumer gateway (Universiteit Oost) acts as itself (its ``dsp_client_cert``) at the
provider (Machine Maker BV); the provider's callbacks reach the consumer gateway's
``/dsp/callback/...`` endpoints with the provider's certificate.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from gateway.cli import audit_cmd
from gateway.cli.context import CliState
from gateway.client import SluisClient, SluisError, mtls_context
from gateway.storage.db import Database
from tests.dsp.conftest import LAB, MAKER, OFFICER, POLICY, UNIVERSITY
from tests.support.dsp import validate
from tests.support.pki import ClientCert, Pki
from tests.support.registry import files_connector, register_dataset, register_participants
from tests.support.server import gateway_settings, running_gateway

CONTEXT = ["https://w3id.org/dspace/2025/1/context.jsonld"]
SCHEMAS = {
    "CatalogRequestMessage": "catalog/catalog-request-message-schema.json",
    "Catalog": "catalog/catalog-schema.json",
    "Dataset": "catalog/dataset-schema.json",
    "ContractRequestMessage": "negotiation/contract-request-message-schema.json",
    "ContractNegotiation": "negotiation/contract-negotiation-schema.json",
    "ContractAgreementMessage": "negotiation/contract-agreement-message-schema.json",
    "ContractAgreementVerificationMessage":
        "negotiation/contract-agreement-verification-message-schema.json",
    "ContractNegotiationEventMessage": "negotiation/contract-negotiation-event-message-schema.json",
    "ContractNegotiationTerminationMessage":
        "negotiation/contract-negotiation-termination-message-schema.json",
    "TransferRequestMessage": "transfer/transfer-request-message-schema.json",
    "TransferProcess": "transfer/transfer-process-schema.json",
    "TransferStartMessage": "transfer/transfer-start-message-schema.json",
    "TransferCompletionMessage": "transfer/transfer-completion-message-schema.json",
}  # fmt: skip


class Wire(logging.Handler):
    """Every DSP message either gateway logged as sent or received (``sluis.dsp.wire``)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[tuple[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append((record.dsp_direction, record.dsp_message))  # type: ignore[attr-defined]


@dataclass
class Side:
    url: str
    home: Path
    database: str
    certs: dict[str, ClientCert] = field(default_factory=dict)


@dataclass
class Two:
    pki: Pki
    provider: Side
    consumer: Side
    wire: Wire

    def client(self, side: Side, who: str) -> httpx.Client:
        cert = side.certs[who]
        verify = mtls_context(self.pki.bundle, cert.cert_path, cert.key_path)
        return httpx.Client(base_url=side.url, verify=verify, timeout=30)

    def sdk(self) -> SluisClient:
        cert = self.consumer.certs["university"]
        return SluisClient(self.consumer.url, ca_bundle=self.pki.bundle, cert_file=cert.cert_path,
                           key_file=cert.key_path, client_id=UNIVERSITY)  # fmt: skip


def _free_port() -> int:
    """A loopback port free now (the gateway's public URL must name it before it starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _seed_provider(url: str) -> None:
    db = Database(url)
    await db.upgrade()
    await register_participants(db, [
        (MAKER, "Machine Maker BV", ["provider", "operator"]),
        (UNIVERSITY, "Universiteit Oost", ["consumer"]),
        (OFFICER, "Security Office", ["officer"]),
    ])  # fmt: skip
    await register_dataset(db, "machines", provider=MAKER, policy=POLICY,
                           connector=files_connector())  # fmt: skip
    await db.dispose()


async def _seed_consumer(url: str) -> None:
    db = Database(url)
    await db.upgrade()
    await register_participants(db, [
        (UNIVERSITY, "Universiteit Oost", ["consumer", "operator"]),
        (LAB, "Fieldlab Noord", ["consumer"]),
        (MAKER, "Machine Maker BV", ["provider"]),  # whose callbacks it accepts
        (OFFICER, "Security Office", ["officer"]),
    ])  # fmt: skip
    await db.dispose()


def _side(home: Path, seed: Any) -> tuple[Side, int]:
    port = _free_port()
    database = f"sqlite+aiosqlite:///{home / 'sluis.db'}"
    asyncio.run(seed(database))
    return Side(f"https://127.0.0.1:{port}", home, database), port


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Two]:
    """A provider and a consumer gateway on loopback, a shared test PKI, two databases."""
    pki = Pki(tmp_path_factory.mktemp("dsp-two-pki"))
    certs = {
        "maker": pki.client("Machine Maker BV", MAKER, ["provider", "operator"]),
        "university": pki.client("Universiteit Oost", UNIVERSITY, ["consumer", "operator"]),
        "lab": pki.client("Fieldlab Noord", LAB),
        "officer": pki.client("Security Office", OFFICER, ["officer"]),
    }
    provider, pport = _side(tmp_path_factory.mktemp("dsp-provider"), _seed_provider)
    consumer, cport = _side(tmp_path_factory.mktemp("dsp-consumer"), _seed_consumer)
    provider.certs = {k: certs[k] for k in ("maker", "university", "officer")}
    consumer.certs = {k: certs[k] for k in ("maker", "university", "lab", "officer")}
    common = {"dsp_callback_allow_networks": ["127.0.0.1/32"], "dsp_callback_ca": pki.bundle}
    wire = Wire()
    logger = logging.getLogger("sluis.dsp.wire")
    logger.addHandler(wire)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    # the provider stops first: its callback client's open connection to the consumer ends
    with (
        running_gateway(gateway_settings(
            pki, consumer.home, consumer.database, port=cport, public_url=consumer.url,
            dsp_client_cert=certs["university"].cert_path,
            dsp_client_key=certs["university"].key_path, **common,
        )),
        running_gateway(gateway_settings(
            pki, provider.home, provider.database, port=pport, public_url=provider.url,
            dsp_client_cert=certs["maker"].cert_path, dsp_client_key=certs["maker"].key_path,
            **common,
        )),
    ):  # fmt: skip
        world = Two(pki, provider, consumer, wire)
        for side, operator, scopes in ((provider, "maker", ["dataset:machines"]),
                                       (consumer, "university", [])):  # fmt: skip
            with world.client(side, operator) as admin:
                body = {"client_id": UNIVERSITY, "auth_method": "tls_client_auth",
                        "scopes": scopes}  # fmt: skip
                assert admin.post("/v1/admin/clients", json=body).status_code == 201
        try:
            yield world
        finally:
            logger.removeHandler(wire)
            logger.setLevel(old_level)


def _entries(world: Two, side: Side) -> list[dict[str, Any]]:
    with world.client(side, "officer") as client:
        page = client.get("/v1/audit/entries", params={"limit": 1000}).json()
    return [e["entry"] for e in page["entries"]]


cli = typer.Typer()
cli.add_typer(audit_cmd.app, name="audit")


@cli.callback()
def _root(ctx: typer.Context) -> None:
    ctx.obj = CliState()


def _verify_log(world: Two, side: Side, out: Path) -> str:
    """Export ``side``'s log over the officer API and verify it offline with its first key."""
    runner = CliRunner()
    key = runner.invoke(cli, ["audit", "key", "--first"],
                        env={"SLUIS_DATABASE_URL": side.database})  # fmt: skip
    assert key.exit_code == 0, key.output
    officer = side.certs["officer"]
    exported = runner.invoke(cli, [
        "audit", "export", "--gateway", side.url, "--dir", str(out), "--cert",
        str(officer.cert_path), "--key", str(officer.key_path), "--cacert", str(world.pki.bundle),
    ])  # fmt: skip
    assert exported.exit_code == 0, exported.output
    verified = runner.invoke(cli, ["audit", "verify", str(out), "--key", key.output.strip()])
    assert verified.exit_code == 0, verified.output
    return verified.output


def _check_wire(world: Two) -> set[str]:
    """Validate every logged message against its type's schema; the types seen."""
    seen = set()
    for _direction, message in world.wire.messages:
        kind = message.get("@type") if isinstance(message, dict) else None
        if kind is None and isinstance(message, dict) and "protocolVersions" in message:
            validate(message, "common/protocol-version-schema.json")
            continue
        assert kind in SCHEMAS, f"a message of an unexpected type: {message}"
        validate(message, SCHEMAS[kind])
        seen.add(kind)
    return seen


def test_two_gateways_complete_catalog_negotiation_transfer_and_pull(
    two: Two, tmp_path: Path
) -> None:
    with two.sdk() as sdk:
        catalog = sdk.dsp_catalog(two.provider.url)
        assert [d["@id"] for d in catalog["dataset"]] == ["machines"]
        dataset = sdk.dsp_catalog(two.provider.url, "machines")
        assert dataset["hasPolicy"][0]["@id"].startswith("urn:sluis:offer:machines:")

        asked = sdk.dsp_negotiate(two.provider.url, "machines")
        assert asked["providerParticipant"] == MAKER
        assert asked["provider"] == f"{two.provider.url}/dsp"
        done = sdk.dsp_wait(asked["consumerPid"], {"FINALIZED"})
        assert done["state"] == "FINALIZED", done
        assert done["agreementId"].startswith("urn:sluis:agreement:")

        transfer = sdk.dsp_transfer(asked["consumerPid"])
        started = sdk.dsp_wait(transfer["consumerPid"], {"STARTED"}, transfer=True)
        assert started["state"] == "STARTED", started
        assert started["endpoint"] == f"{two.provider.url}/v1/datasets/machines/query"
        assert "token" not in json.dumps(started).lower().replace("tokenexpiresat", "")

        out = tmp_path / "machines.parquet"
        receipt = sdk.dsp_pull(transfer["consumerPid"], out, columns=["machine"])
        assert pq.read_table(out).column("machine").to_pylist()[0] == "X200"
        # the provider decided and audited the pull: its receipt names the decision entry
        provider_log = _entries(two, two.provider)
        assert provider_log[receipt.index]["event"] == "access-decision"
        assert provider_log[receipt.index]["actor"]["participant"] == UNIVERSITY

        completed = sdk.dsp_complete(transfer["consumerPid"])
        assert completed["state"] == "COMPLETED"
        with pytest.raises(SluisError) as refused:
            sdk.dsp_pull(transfer["consumerPid"], out)
        assert refused.value.type == "dsp-transfer-not-started"

    seen = _check_wire(two)
    assert seen >= {
        "CatalogRequestMessage", "Catalog", "Dataset", "ContractRequestMessage",
        "ContractNegotiation", "ContractAgreementMessage", "ContractAgreementVerificationMessage",
        "ContractNegotiationEventMessage", "TransferRequestMessage", "TransferProcess",
        "TransferStartMessage", "TransferCompletionMessage",
    }  # fmt: skip

    consumer_log = _entries(two, two.consumer)
    mine = [e["action"] for e in consumer_log if e.get("target", "").startswith("dsp-consumer-")]
    assert mine == [
        "dsp-consumer-request", "dsp-consumer-agreed", "dsp-consumer-verification",
        "dsp-consumer-finalized", "dsp-consumer-transfer-request", "dsp-consumer-transfer-start",
        "dsp-consumer-pull", "dsp-consumer-transfer-completion",
    ]  # fmt: skip
    pulled = next(e for e in consumer_log if e.get("action") == "dsp-consumer-pull")
    assert pulled["event"] == "exchange-completed"
    assert pulled["bytes"] == out.stat().st_size
    assert f"provider-audit-index:{receipt.index}" in pulled["decision"]["reasons"]
    started_entry = next(e for e in consumer_log
                         if e.get("action") == "dsp-consumer-transfer-start")  # fmt: skip
    assert "token_sha256" in started_entry  # the token's hash, never the token
    theirs = {e.get("target", "").split(":")[0] for e in provider_log}
    assert {"dsp-negotiation", "dsp-transfer"} <= theirs
    for side in (two.provider, two.consumer):
        assert "ok:" in _verify_log(two, side, tmp_path / f"export-{side.url.rsplit(':', 1)[1]}")
