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
from contextlib import contextmanager
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
from gateway.cli.main import app as main_app
from gateway.client import SluisClient, SluisError, mtls_context
from gateway.storage.db import Database
from tests.dsp.conftest import LAB, MAKER, OFFICER, POLICY, UNIVERSITY
from tests.support.databases import postgres_database
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


COMMERCIAL = "https://w3id.org/dpv#CommercialResearch"
CHOICE_POLICY = POLICY.replace("machines", "machines-choice").replace(
    "[dpv:AcademicResearch]", "[dpv:AcademicResearch, dpv:CommercialResearch]"
)  # two purposes: the consumer must name the one it asks for


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
    for dataset_id, policy in (("machines", POLICY), ("machines-choice", CHOICE_POLICY)):
        await register_dataset(db, dataset_id, provider=MAKER, policy=policy,
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


def _side(home: Path, seed: Any, database: str | None = None) -> tuple[Side, int]:
    port = _free_port()
    database = database or f"sqlite+aiosqlite:///{home / 'sluis.db'}"
    asyncio.run(seed(database))
    return Side(f"https://127.0.0.1:{port}", home, database), port


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Two]:
    """A provider and a consumer gateway on loopback, a shared test PKI, two databases."""
    with _running_two(tmp_path_factory, None) as world:
        yield world


@pytest.fixture
def two_on_postgresql(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Two]:
    """The same, the consumer on PostgreSQL (skipped with the reason when it is absent)."""
    with postgres_database() as url, _running_two(tmp_path_factory, url) as world:
        yield world


@contextmanager
def _running_two(factory: pytest.TempPathFactory, consumer_database: str | None) -> Iterator[Two]:
    tmp_path_factory = factory
    pki = Pki(tmp_path_factory.mktemp("dsp-two-pki"))
    certs = {
        "maker": pki.client("Machine Maker BV", MAKER, ["provider", "operator"]),
        "university": pki.client("Universiteit Oost", UNIVERSITY, ["consumer", "operator"]),
        "lab": pki.client("Fieldlab Noord", LAB),
        "officer": pki.client("Security Office", OFFICER, ["officer"]),
    }
    provider, pport = _side(tmp_path_factory.mktemp("dsp-provider"), _seed_provider)
    consumer, cport = _side(tmp_path_factory.mktemp("dsp-consumer"), _seed_consumer,
                            consumer_database)  # fmt: skip
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


def _check_wire(world: Two, first: int) -> set[str]:
    """Validate every message logged from ``first`` on against its type's schema; the types
    seen."""
    seen = set()
    for _direction, message in world.wire.messages[first:]:
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
    _whole_exchange(two, tmp_path)


def test_the_whole_exchange_with_the_consumer_on_postgresql(
    two_on_postgresql: Two, tmp_path: Path
) -> None:
    _whole_exchange(two_on_postgresql, tmp_path)


def _whole_exchange(two: Two, tmp_path: Path) -> None:
    first = len(two.wire.messages)  # what this exchange sends and receives, from here on
    with two.sdk() as sdk:
        catalog = sdk.dsp_catalog(two.provider.url)
        assert {d["@id"] for d in catalog["dataset"]} == {"machines", "machines-choice"}
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
        starts = [
            m
            for _, m in two.wire.messages
            if isinstance(m, dict) and m.get("@type") == "TransferStartMessage"
        ]
        assert starts
        assert "Bearer" not in json.dumps(starts)  # the wire log never holds the token

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

    seen = _check_wire(two, first)
    assert seen >= {
        "CatalogRequestMessage", "Catalog", "Dataset", "ContractRequestMessage",
        "ContractNegotiation", "ContractAgreementMessage", "ContractAgreementVerificationMessage",
        "ContractNegotiationEventMessage", "TransferRequestMessage", "TransferProcess",
        "TransferStartMessage", "TransferCompletionMessage",
    }  # fmt: skip

    consumer_log = _entries(two, two.consumer)
    ours = {f"dsp-consumer-negotiation:{asked['consumerPid']}",
            f"dsp-consumer-transfer:{transfer['consumerPid']}"}  # fmt: skip
    mine = [e["action"] for e in consumer_log if e.get("target") in ours]
    assert mine == [
        "dsp-consumer-request", "dsp-consumer-agreed", "dsp-consumer-verification",
        "dsp-consumer-finalized", "dsp-consumer-transfer-request", "dsp-consumer-transfer-start",
        "dsp-consumer-pull", "dsp-consumer-transfer-completion",
    ]  # fmt: skip
    pulled = next(e for e in consumer_log
                  if e.get("action") == "dsp-consumer-pull" and e["target"] in ours)  # fmt: skip
    assert pulled["event"] == "exchange-completed"
    assert pulled["bytes"] == out.stat().st_size
    assert f"provider-audit-index:{receipt.index}" in pulled["decision"]["reasons"]
    started_entry = next(e for e in consumer_log if e.get("target") in ours
                         and e.get("action") == "dsp-consumer-transfer-start")  # fmt: skip
    assert "token_sha256" in started_entry  # the token's hash, never the token
    theirs = {e.get("target", "").split(":")[0] for e in provider_log}
    assert {"dsp-negotiation", "dsp-transfer"} <= theirs
    for side in (two.provider, two.consumer):
        assert "ok:" in _verify_log(two, side, tmp_path / f"export-{side.url.rsplit(':', 1)[1]}")


def _cli(two: Two, *args: str) -> Any:
    cert = two.consumer.certs["university"]
    env = {"SLUIS_GATEWAY_URL": two.consumer.url, "SLUIS_CA_BUNDLE": str(two.pki.bundle),
           "SLUIS_CLIENT_CERT": str(cert.cert_path), "SLUIS_CLIENT_KEY": str(cert.key_path),
           "SLUIS_CLIENT_ID": UNIVERSITY}  # fmt: skip
    return CliRunner().invoke(main_app, ["dsp", *args], env=env)


def test_the_sluis_dsp_commands_run_the_exchange(two: Two, tmp_path: Path) -> None:
    listed = _cli(two, "catalog", two.provider.url)
    assert listed.exit_code == 0, listed.output
    assert "machines" in listed.output
    asked = _cli(two, "negotiate", two.provider.url, "machines", "--json")
    assert asked.exit_code == 0, asked.output
    negotiation = json.loads(asked.output)
    assert negotiation["state"] == "FINALIZED"
    started = _cli(two, "transfer", negotiation["consumerPid"], "--json")
    assert started.exit_code == 0, started.output
    transfer = json.loads(started.output)
    assert transfer["state"] == "STARTED"
    out = tmp_path / "machines.csv"
    pulled = _cli(two, "pull", transfer["consumerPid"], "-o", str(out), "--format", "csv",
                  "--columns", "machine")  # fmt: skip
    assert pulled.exit_code == 0, pulled.output
    assert out.read_text().splitlines()[:2] == ['"machine"', '"X200"']
    assert _cli(two, "complete", transfer["consumerPid"]).exit_code == 0
    again = _cli(two, "pull", transfer["consumerPid"], "-o", str(out))
    assert again.exit_code == 1
    lines = again.output.strip().splitlines()
    assert len(lines) == 1, again.output
    assert "409 dsp-transfer-not-started" in lines[0]
    unknown = _cli(two, "negotiate", two.provider.url, "no-such-dataset")
    assert unknown.exit_code == 1
    assert unknown.output.strip().splitlines() == [
        "sluis: error: 502 dsp-provider-refused: the provider answered 404: "
        "dataset-not-found no dataset no-such-dataset"
    ]
    nowhere = _cli(two, "catalog", "https://10.9.8.7:8443")
    assert nowhere.exit_code == 1
    assert "dsp-provider-address" in nowhere.output.strip().splitlines()[0]


def _callback(two: Two, who: str, path: str, body: Any) -> httpx.Response:
    with two.client(two.consumer, who) as client:
        return client.post(f"/dsp/callback{path}", json=body)


def _agreed(two: Two) -> dict[str, Any]:
    """A consumer-side negotiation as far as FINALIZED (the provider agrees at once)."""
    with two.sdk() as sdk:
        asked = sdk.dsp_negotiate(two.provider.url, "machines")
        return sdk.dsp_wait(asked["consumerPid"], {"FINALIZED"})


@pytest.mark.parametrize(
    ("who", "path", "change", "expected"),
    [
        # not the provider this negotiation is with: as if it did not exist
        ("lab", "/negotiations/{pid}/termination", {}, (404, "dsp-negotiation-not-found")),
        ("maker", "/negotiations/urn:uuid:nope/termination", {}, (404,
         "dsp-negotiation-not-found")),
        ("maker", "/negotiations/{pid}/termination", {"@context": None}, (400,
         "dsp-malformed-message")),
        ("maker", "/negotiations/{pid}/termination", {"providerPid": "urn:uuid:other"}, (400,
         "dsp-malformed-message")),
        ("maker", "/negotiations/{pid}/events", {"@type": "ContractNegotiationEventMessage",
                                                 "eventType": "ACCEPTED"}, (400,
         "dsp-malformed-message")),
        # FINALIZED already: another agreement or a termination is not a transition it allows
        ("maker", "/negotiations/{pid}/agreement",
         {"@type": "ContractAgreementMessage", "agreement": {"@id": "urn:x", "target": "machines"}},
         (400, "dsp-invalid-transition")),
        ("maker", "/negotiations/{pid}/termination", {}, (400, "dsp-invalid-transition")),
    ],
)  # fmt: skip
def test_a_callback_that_cannot_be_taken_changes_nothing(
    two: Two, who: str, path: str, change: dict[str, Any], expected: tuple[int, str]
) -> None:
    status, code = expected
    done = _agreed(two)
    message = {"@context": CONTEXT, "@type": "ContractNegotiationTerminationMessage",
               "providerPid": done["providerPid"], "consumerPid": done["consumerPid"],
               "code": "x", **change}  # fmt: skip
    message = {k: v for k, v in message.items() if v is not None}
    target = f"dsp-consumer-negotiation:{done['consumerPid']}"
    before = [e for e in _entries(two, two.consumer) if e.get("target") == target]
    response = _callback(two, who, path.format(pid=done["consumerPid"]), message)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    validate(response.json(), "negotiation/contract-negotiation-error-schema.json")
    assert response.json()["code"] == code
    with two.sdk() as sdk:
        assert sdk.dsp_negotiation(done["consumerPid"])["state"] == "FINALIZED"
    after = [e for e in _entries(two, two.consumer) if e.get("target") == target]
    assert after == before  # no change, so no change entry (the refusal has its own)


def test_a_transfer_start_without_a_usable_data_address_is_refused(two: Two) -> None:
    done = _agreed(two)
    with two.sdk() as sdk:
        transfer = sdk.dsp_transfer(done["consumerPid"])
        started = sdk.dsp_wait(transfer["consumerPid"], {"STARTED"}, transfer=True)
        pid = {"providerPid": started["providerPid"], "consumerPid": started["consumerPid"]}
        address = {"@type": "DataAddress", "endpointType": "https://w3id.org/idsa/v4.1/HTTP",
                   "endpoint": "http://127.0.0.1/plain", "endpointProperties": []}  # fmt: skip
        start = {"@context": CONTEXT, "@type": "TransferStartMessage", **pid,
                 "dataAddress": address}  # fmt: skip
        suspended = _callback(two, "maker", f"/transfers/{pid['consumerPid']}/suspension",
                              {"@context": CONTEXT, "@type": "TransferSuspensionMessage", **pid,
                               "code": "paused"})  # fmt: skip
        assert suspended.status_code == 200, suspended.text
        validate(suspended.json(), "transfer/transfer-process-schema.json")
        assert sdk.dsp_transfer_status(pid["consumerPid"])["endpoint"] is None  # token dropped
        refused = _callback(two, "maker", f"/transfers/{pid['consumerPid']}/start", start)
        assert refused.status_code == 400, refused.text
        validate(refused.json(), "transfer/transfer-error-schema.json")
        assert refused.json()["code"] == "dsp-malformed-message"
        assert sdk.dsp_transfer_status(pid["consumerPid"])["state"] == "SUSPENDED"
        stranger = _callback(two, "lab", f"/transfers/{pid['consumerPid']}/start", start)
        assert stranger.status_code == 404
        # another host than the provider's: the gateway would present its certificate there
        elsewhere = {
            **address,
            "endpoint": "https://localhost:1/v1/datasets/machines/query",
            "endpointProperties": [
                {"@type": "EndpointProperty", "name": "authorization", "value": "Bearer abc"}
            ],
        }
        moved = _callback(
            two,
            "maker",
            f"/transfers/{pid['consumerPid']}/start",
            {**start, "dataAddress": elsewhere},
        )
        assert moved.status_code == 400, moved.text
        assert "provider's host" in moved.json()["detail"]
        assert sdk.dsp_transfer_status(pid["consumerPid"])["state"] == "SUSPENDED"


def test_the_consumer_names_its_purpose_and_a_refusal_ends_the_negotiation(two: Two) -> None:
    with two.sdk() as sdk:
        with pytest.raises(SluisError) as refused:
            sdk.dsp_negotiate(two.provider.url, "machines-choice")
        assert refused.value.status == 502
        assert refused.value.type == "dsp-provider-refused"
        assert "400: dsp-purpose-required" in refused.value.detail
        asked = sdk.dsp_negotiate(two.provider.url, "machines-choice", purpose=COMMERCIAL)
        assert sdk.dsp_wait(asked["consumerPid"], {"FINALIZED"})["state"] == "FINALIZED"
        with pytest.raises(SluisError) as no_purpose:
            sdk.dsp_negotiate(two.provider.url, "machines-choice", purpose="not an iri")
        assert no_purpose.value.status == 422
    with two.client(two.provider, "university") as client:
        theirs = client.get("/v1/agreements").json()
    assert [a["purpose"] for a in theirs if a["dataset_id"] == "machines-choice"] == [COMMERCIAL]
    # the refused request is in the consumer's log: asked, then ended with the provider's reason
    log = _entries(two, two.consumer)
    ended = [e for e in log if e.get("action") == "dsp-consumer-termination"
             and any("dsp-purpose-required" in r for r in e["decision"]["reasons"])]  # fmt: skip
    assert len(ended) == 1
    assert ended[0]["decision"]["result"] == "deny"
    same = [e["action"] for e in log if e.get("target") == ended[0]["target"]]
    assert same == ["dsp-consumer-request", "dsp-consumer-termination"]


def test_the_consumer_terminates_a_transfer_and_the_provider_revokes_its_token(
    two: Two, tmp_path: Path
) -> None:
    done = _agreed(two)
    with two.sdk() as sdk:
        with pytest.raises(SluisError) as final:  # a FINALIZED negotiation cannot be ended
            sdk.dsp_terminate(done["consumerPid"])
        assert (final.value.status, final.value.type) == (400, "dsp-invalid-transition")
        transfer = sdk.dsp_transfer(done["consumerPid"])
        started = sdk.dsp_wait(transfer["consumerPid"], {"STARTED"}, transfer=True)
        ended = sdk.dsp_terminate(started["consumerPid"], transfer=True, reason="enough")
        assert ended["state"] == "TERMINATED"
        assert ended["endpoint"] is None
        with pytest.raises(SluisError) as gone:
            sdk.dsp_pull(started["consumerPid"], tmp_path / "x.parquet")
        assert gone.value.type == "dsp-transfer-not-started"
    with two.client(two.provider, "university") as client:
        theirs = client.get(f"/dsp/transfers/{started['providerPid']}").json()
    assert theirs["state"] == "TERMINATED"  # and its token revoked with it (test_transfer.py)
    actions = [e["action"] for e in _entries(two, two.consumer)
               if e.get("target") == f"dsp-consumer-transfer:{started['consumerPid']}"]  # fmt: skip
    assert actions == [
        "dsp-consumer-transfer-request", "dsp-consumer-transfer-start",
        "dsp-consumer-transfer-termination",
    ]  # fmt: skip
    terminations = [m for _, m in two.wire.messages if isinstance(m, dict)
                    and m.get("@type") == "TransferTerminationMessage"]  # fmt: skip
    assert terminations
    for message in terminations:
        validate(message, "transfer/transfer-termination-message-schema.json")
