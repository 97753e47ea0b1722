"""The consumer side's own DSP messages go through the outbox (issue 14): a verification the
consumer gateway could not deliver before it stopped is re-sent after its restart, the
provider finalizes, and the consumer reaches FINALIZED; one that cannot be delivered in time
is given up, audited in the consumer's log; a completion is stored with its state change and
re-sent the same way. A provider's counter-offer is accepted (the ACCEPTED event) when it is
the Offer the consumer asked for, and ends the negotiation with the reason otherwise.

Two Sluis gateways on loopback over real mTLS, each on its own SQLite file. The provider runs
throughout; the consumer is stopped and started on the same database and port. While the
consumer runs without ``dsp_callback_allow_networks`` its SSRF guard refuses the provider's
loopback address: the provider is out of its reach (the provider's callbacks still arrive,
since incoming calls pass no guard).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.client import SluisClient, mtls_context
from gateway.dsp import consumer_repository
from gateway.storage.db import Database
from gateway.storage.models import DspConsumerNegotiationRow
from tests.dsp.conftest import LAB, MAKER, MANUAL_POLICY, OFFICER, POLICY, UNIVERSITY
from tests.dsp.test_consumer import CONTEXT, _free_port, _seed_consumer
from tests.support.dsp import validate
from tests.support.pki import ClientCert, Pki
from tests.support.registry import files_connector, register_dataset, register_participants
from tests.support.server import gateway_settings, running_gateway

REACH = ["127.0.0.1/32"]  # the consumer may call the provider on loopback


@dataclass
class World:
    pki: Pki
    certs: dict[str, ClientCert]
    provider_url: str
    consumer_home: Path
    consumer_port: int

    @property
    def consumer_url(self) -> str:
        return f"https://127.0.0.1:{self.consumer_port}"

    @contextmanager
    def consumer(self, *, reach: bool, **overrides: Any) -> Iterator[None]:
        """The consumer gateway, able to reach the provider or not."""
        settings = gateway_settings(
            self.pki, self.consumer_home, f"sqlite+aiosqlite:///{self.consumer_db}",
            port=self.consumer_port, public_url=self.consumer_url,
            dsp_callback_allow_networks=REACH if reach else [],
            dsp_callback_ca=self.pki.bundle,
            dsp_client_cert=self.certs["university"].cert_path,
            dsp_client_key=self.certs["university"].key_path,
            dsp_callback_retry_interval=3600,  # no second round while the test runs
            **overrides,
        )  # fmt: skip
        with running_gateway(settings):
            yield

    @property
    def consumer_db(self) -> Path:
        return self.consumer_home / "sluis.db"

    def client(self, url: str, who: str) -> httpx.Client:
        cert = self.certs[who]
        verify = mtls_context(self.pki.bundle, cert.cert_path, cert.key_path)
        return httpx.Client(base_url=url, verify=verify, timeout=30)

    def sdk(self) -> SluisClient:
        cert = self.certs["university"]
        return SluisClient(self.consumer_url, ca_bundle=self.pki.bundle,
                           cert_file=cert.cert_path, key_file=cert.key_path,
                           client_id=UNIVERSITY)  # fmt: skip

    def outbox(self, process: str) -> list[dict[str, Any]]:
        """The consumer's outbox rows of ``process`` (read from its SQLite file)."""
        with sqlite3.connect(self.consumer_db) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT * FROM dsp_outbox WHERE process = ? ORDER BY id",
                              (process,)).fetchall()  # fmt: skip
        return [dict(r) for r in rows]

    def settled(self, process: str, attempts: int) -> dict[str, Any]:
        """The last outbox row of ``process`` once ``attempts`` rounds are recorded."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = self.outbox(process)
            if rows and rows[-1]["attempts"] >= attempts and rows[-1]["lease_until"] is None:
                return rows[-1]
            time.sleep(0.1)
        raise AssertionError(f"no settled outbox row for {process}: {self.outbox(process)}")

    def entries(self, url: str, target: str) -> list[dict[str, Any]]:
        with self.client(url, "officer") as client:
            page = client.get("/v1/audit/entries", params={"limit": 1000}).json()
        return [e["entry"] for e in page["entries"] if e["entry"].get("target") == target]


async def _seed_provider(url: str) -> None:
    db = Database(url)
    await db.upgrade()
    await register_participants(db, [
        (MAKER, "Machine Maker BV", ["provider", "operator"]),
        (UNIVERSITY, "Universiteit Oost", ["consumer"]),
        (OFFICER, "Security Office", ["officer"]),
    ])  # fmt: skip
    for dataset_id, policy, approval in (
        ("machines", POLICY, "automatic"),
        ("machines-manual", MANUAL_POLICY, "manual"),
        ("machines-later", POLICY.replace("machines", "machines-later"), "manual"),
        ("machines-offer", POLICY.replace("machines", "machines-offer"), "manual"),
        ("machines-other", POLICY.replace("machines", "machines-other"), "manual"),
        ("machines-crash", POLICY.replace("machines", "machines-crash"), "manual"),
    ):
        await register_dataset(db, dataset_id, provider=MAKER, policy=policy,
                               connector=files_connector(), approval=approval)  # fmt: skip
    await db.dispose()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    pki = Pki(tmp_path_factory.mktemp("dsp-outbox-two-pki"))
    certs = {
        "maker": pki.client("Machine Maker BV", MAKER, ["provider", "operator"]),
        "university": pki.client("Universiteit Oost", UNIVERSITY, ["consumer", "operator"]),
        "lab": pki.client("Fieldlab Noord", LAB),
        "officer": pki.client("Security Office", OFFICER, ["officer"]),
    }
    provider_home = tmp_path_factory.mktemp("dsp-outbox-provider")
    consumer_home = tmp_path_factory.mktemp("dsp-outbox-consumer")
    provider_db = f"sqlite+aiosqlite:///{provider_home / 'sluis.db'}"
    asyncio.run(_seed_provider(provider_db))
    asyncio.run(_seed_consumer(f"sqlite+aiosqlite:///{consumer_home / 'sluis.db'}"))
    pport = _free_port()
    provider = gateway_settings(
        pki, provider_home, provider_db, port=pport, public_url=f"https://127.0.0.1:{pport}",
        dsp_callback_allow_networks=REACH, dsp_callback_ca=pki.bundle,
        dsp_client_cert=certs["maker"].cert_path, dsp_client_key=certs["maker"].key_path,
    )  # fmt: skip
    with running_gateway(provider) as provider_url:
        world = World(pki, certs, provider_url, consumer_home, _free_port())
        with world.client(provider_url, "maker") as admin:
            body = {"client_id": UNIVERSITY, "auth_method": "tls_client_auth",
                    "scopes": ["dataset:machines"]}  # fmt: skip
            assert admin.post("/v1/admin/clients", json=body).status_code == 201
        with world.consumer(reach=True), world.client(world.consumer_url, "university") as admin:
            body = {"client_id": UNIVERSITY, "auth_method": "tls_client_auth", "scopes": []}
            assert admin.post("/v1/admin/clients", json=body).status_code == 201
        yield world


def _provider_state(world: World, provider_pid: str, kind: str = "negotiations") -> str:
    with world.client(world.provider_url, "university") as client:
        found = client.get(f"/dsp/{kind}/{provider_pid}")
    assert found.status_code == 200, found.text
    return str(found.json()["state"])


def _approve(world: World, dataset: str) -> None:
    """The provider approves the one agreement waiting on ``dataset``."""
    with world.client(world.provider_url, "university") as university:
        waiting = [a for a in university.get("/v1/agreements").json()
                   if a["state"] == "requested" and a["dataset_id"] == dataset]  # fmt: skip
    assert len(waiting) == 1, waiting
    with world.client(world.provider_url, "maker") as maker:
        assert maker.post(f"/v1/agreements/{waiting[0]['id']}/approve").is_success


def _verification_undelivered(world: World, dataset: str) -> tuple[str, str]:
    """A negotiation the provider agreed to while the consumer could not reach it: the
    consumer VERIFIED with its verification pending after one round; (consumerPid,
    providerPid)."""
    with world.consumer(reach=True), world.sdk() as sdk:
        asked = sdk.dsp_negotiate(world.provider_url, dataset)  # waits for approval
        assert asked["state"] == "REQUESTED", asked
    with world.consumer(reach=False), world.sdk() as sdk:
        _approve(world, dataset)
        pid = asked["consumerPid"]
        row = world.settled(f"dsp-consumer-negotiation:{pid}", attempts=1)
        assert row["status"] == "pending"
        assert row["path"] == f"negotiations/{asked['providerPid']}/agreement/verification"
        assert sdk.dsp_negotiation(pid)["state"] == "VERIFIED"
    assert _provider_state(world, asked["providerPid"]) == "AGREED"
    return pid, asked["providerPid"]


def test_a_verification_undelivered_at_a_stop_arrives_after_the_restart(world: World) -> None:
    pid, provider_pid = _verification_undelivered(world, "machines-manual")
    with world.consumer(reach=True), world.sdk() as sdk:
        done = sdk.dsp_wait(pid, {"FINALIZED", "TERMINATED"}, timeout=30)
        assert done["state"] == "FINALIZED", done
        row = world.settled(f"dsp-consumer-negotiation:{pid}", attempts=2)
        assert row["status"] == "delivered"
        validate(_stored(row), "negotiation/contract-agreement-verification-message-schema.json")
        mine = [e["action"] for e in world.entries(world.consumer_url,
                                                   f"dsp-consumer-negotiation:{pid}")]  # fmt: skip
    assert mine == ["dsp-consumer-request", "dsp-consumer-agreed", "dsp-consumer-verification",
                    "dsp-consumer-finalized"]  # fmt: skip
    assert _provider_state(world, provider_pid) == "FINALIZED"
    theirs = [e["action"] for e in world.entries(world.provider_url,
                                                 f"dsp-negotiation:{provider_pid}")]  # fmt: skip
    assert theirs == ["dsp-request", "dsp-agree", "dsp-verification", "dsp-finalize"]


def test_a_verification_undelivered_in_time_is_given_up_and_audited(world: World) -> None:
    pid, provider_pid = _verification_undelivered(world, "machines-later")
    process = f"dsp-consumer-negotiation:{pid}"
    with world.consumer(reach=False, dsp_callback_give_up_after=1), world.sdk() as sdk:
        row = world.settled(process, attempts=2)
        assert row["status"] == "given-up"
        assert sdk.dsp_negotiation(pid)["state"] == "VERIFIED"  # where it was committed
        entries = world.entries(world.consumer_url, process)
    given_up = entries[-1]
    assert (given_up["event"], given_up["action"]) == ("agreement-changed",
                                                       "dsp-callback-given-up")  # fmt: skip
    assert given_up["decision"]["result"] == "deny"
    assert given_up["decision"]["reasons"][0].startswith("ContractAgreementVerificationMessage")
    assert _provider_state(world, provider_pid) == "AGREED"


def test_a_completion_is_stored_with_its_change_and_resent_after_a_restart(
    world: World,
) -> None:
    with world.consumer(reach=True), world.sdk() as sdk:
        asked = sdk.dsp_negotiate(world.provider_url, "machines")
        assert sdk.dsp_wait(asked["consumerPid"], {"FINALIZED"})["state"] == "FINALIZED"
        transfer = sdk.dsp_transfer(asked["consumerPid"])
        started = sdk.dsp_wait(transfer["consumerPid"], {"STARTED"}, transfer=True)
        assert started["state"] == "STARTED", started
    pid, provider_pid = started["consumerPid"], started["providerPid"]
    process = f"dsp-consumer-transfer:{pid}"
    with world.consumer(reach=False), world.sdk() as sdk:
        assert sdk.dsp_complete(pid)["state"] == "COMPLETED"  # committed, the message waits
        assert world.settled(process, attempts=1)["status"] == "pending"
    assert _provider_state(world, provider_pid, "transfers") == "STARTED"
    with world.consumer(reach=True):
        row = world.settled(process, attempts=2)
        assert row["status"] == "delivered"
        validate(_stored(row), "transfer/transfer-completion-message-schema.json")
    assert _provider_state(world, provider_pid, "transfers") == "COMPLETED"


def _stored(row: dict[str, Any]) -> Any:
    """A stored message (JSON text in SQLite)."""
    return json.loads(row["message"])


def _requested(world: World, dataset: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A negotiation waiting for the provider's approval, and the Offer it asked with."""
    with world.sdk() as sdk:
        asked = sdk.dsp_negotiate(world.provider_url, dataset)
        assert asked["state"] == "REQUESTED", asked
        offer = sdk.dsp_catalog(world.provider_url, dataset)["hasPolicy"][0]
    return asked, {**offer, "target": dataset}


def _offer(world: World, asked: dict[str, Any], offer: dict[str, Any]) -> httpx.Response:
    """The provider's ContractOfferMessage (sent with the provider's certificate)."""
    message = {"@context": CONTEXT, "@type": "ContractOfferMessage",
               "providerPid": asked["providerPid"], "consumerPid": asked["consumerPid"],
               "offer": offer}  # fmt: skip
    validate(message, "negotiation/contract-offer-message-schema.json")
    with world.client(world.consumer_url, "maker") as provider:
        return provider.post(f"/dsp/callback/negotiations/{asked['consumerPid']}/offers",
                             json=message)  # fmt: skip


def test_the_same_offer_back_is_accepted_and_the_negotiation_goes_on(world: World) -> None:
    with world.consumer(reach=True), world.sdk() as sdk:
        asked, offer = _requested(world, "machines-offer")
        pid = asked["consumerPid"]
        reordered = {**offer, "permission": list(reversed(offer["permission"]))}
        answered = _offer(world, asked, reordered)
        assert answered.status_code == 200, answered.text
        assert answered.json()["state"] == "OFFERED"
        assert sdk.dsp_wait(pid, {"ACCEPTED"})["state"] == "ACCEPTED"
        row = world.settled(f"dsp-consumer-negotiation:{pid}", attempts=1)
        event = _stored(row)
        validate(event, "negotiation/contract-negotiation-event-message-schema.json")
        assert (row["path"], event["eventType"]) == (
            f"negotiations/{asked['providerPid']}/events", "ACCEPTED")  # fmt: skip
        # a Sluis provider makes no offers, so it refuses the event: given up, audited
        assert row["status"] == "given-up"
        # and when the provider agrees, the accepted negotiation is verified and finalized
        _approve(world, "machines-offer")
        assert sdk.dsp_wait(pid, {"FINALIZED"})["state"] == "FINALIZED"
        mine = [e["action"] for e in world.entries(world.consumer_url,
                                                   f"dsp-consumer-negotiation:{pid}")]  # fmt: skip
    assert mine == ["dsp-consumer-request", "dsp-consumer-offered", "dsp-consumer-accepted",
                    "dsp-callback-given-up", "dsp-consumer-agreed", "dsp-consumer-verification",
                    "dsp-consumer-finalized"]  # fmt: skip


def test_another_offer_ends_the_negotiation_with_the_reason(world: World) -> None:
    with world.consumer(reach=True), world.sdk() as sdk:
        asked, offer = _requested(world, "machines-other")
        pid = asked["consumerPid"]
        looser = [{**rule, "constraint": []} for rule in offer["permission"]]
        answered = _offer(world, asked, {**offer, "permission": looser})
        assert answered.status_code == 200, answered.text
        ended = sdk.dsp_wait(pid, {"TERMINATED"})
        assert ended["state"] == "TERMINATED"
        row = world.settled(f"dsp-consumer-negotiation:{pid}", attempts=1)
        assert row["status"] == "delivered"
        termination = _stored(row)
        validate(termination, "negotiation/contract-negotiation-termination-message-schema.json")
        assert termination["code"] == "counter-offer-refused"
        assert termination["reason"] == ["the counter-offer changes the permission rules"]
        entries = world.entries(world.consumer_url, f"dsp-consumer-negotiation:{pid}")
    assert [e["action"] for e in entries] == ["dsp-consumer-request", "dsp-consumer-offered",
                                              "dsp-consumer-termination"]  # fmt: skip
    assert "the counter-offer changes the permission rules" in entries[-1]["decision"]["reasons"]
    assert entries[-1]["decision"]["result"] == "deny"
    assert _provider_state(world, asked["providerPid"]) == "TERMINATED"


async def _agreed_at_the_crash(world: World, pid: str) -> None:
    """What a stop right after the provider's agreement commits leaves: AGREED, and no
    verification stored yet (written as the callback's own move writes it)."""
    db = Database(f"sqlite+aiosqlite:///{world.consumer_db}")
    try:
        async with db.session() as session:
            moved = await consumer_repository.move(
                session, DspConsumerNegotiationRow, pid, "REQUESTED", "AGREED",
                now=datetime.now(UTC), agreement_id="urn:sluis:agreement:at-the-crash",
            )  # fmt: skip
            assert moved is not None
    finally:
        await db.dispose()


def test_a_negotiation_a_stop_left_agreed_is_verified_at_the_start(world: World) -> None:
    with world.consumer(reach=True), world.sdk() as sdk:
        asked = sdk.dsp_negotiate(world.provider_url, "machines-crash")
        assert asked["state"] == "REQUESTED", asked
    pid = asked["consumerPid"]
    _approve(world, "machines-crash")  # the provider agrees while the consumer is stopped
    asyncio.run(_agreed_at_the_crash(world, pid))
    assert world.outbox(f"dsp-consumer-negotiation:{pid}") == []
    with world.consumer(reach=True), world.sdk() as sdk:
        row = world.settled(f"dsp-consumer-negotiation:{pid}", attempts=1)
        assert row["status"] == "delivered"
        assert row["path"] == f"negotiations/{asked['providerPid']}/agreement/verification"
        assert sdk.dsp_negotiation(pid)["state"] in ("VERIFIED", "FINALIZED")
    assert _provider_state(world, asked["providerPid"]) == "FINALIZED"
