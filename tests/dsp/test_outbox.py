"""The provider's DSP callback outbox (issue 14): a message stored with its state change is
re-sent after the gateway stops and starts again, a start message with a new token (the
stored one holds none), and a message that cannot be delivered in time is given up, audited.

One gateway of its own (SQLite, real mTLS, a real loopback callback endpoint), stopped and
started again on the same database.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.dsp import transfer_repository
from gateway.storage.db import Database
from tests.dsp.conftest import UNIVERSITY, Provider, _seed
from tests.dsp.test_negotiation import _message, _post, _start
from tests.dsp.test_transfer import _pull, _request, _transfer_post
from tests.support.dsp import validate
from tests.support.dsp_consumer import CallbackServer, callback_server
from tests.support.pki import Pki
from tests.support.server import gateway_settings, running_gateway

ROUND = 5  # attempts in one round of Callbacks.send


@dataclass
class Site:
    """A gateway's home, PKI and callback endpoint; the gateway runs in :meth:`serving`."""

    home: Path
    pki: Pki
    certs: dict[str, Any]
    consumer: CallbackServer

    @property
    def db_file(self) -> Path:
        return self.home / "sluis.db"

    @contextmanager
    def serving(self, **overrides: Any) -> Iterator[Provider]:
        settings = gateway_settings(
            self.pki, self.home, f"sqlite+aiosqlite:///{self.db_file}",
            dsp_callback_allow_networks=["127.0.0.1/32"], dsp_callback_ca=self.pki.bundle,
            dsp_client_cert=self.certs["maker"].cert_path,
            dsp_client_key=self.certs["maker"].key_path,
            dsp_callback_retry_interval=3600,  # no second round while the test runs
            **overrides,
        )  # fmt: skip
        with running_gateway(settings) as base:
            yield Provider(base, self.pki, self.home, self.certs, self.consumer)

    def outbox(self) -> list[dict[str, Any]]:
        """The outbox as stored (read from the SQLite file)."""
        with sqlite3.connect(self.db_file) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT * FROM dsp_outbox ORDER BY id").fetchall()
        return [dict(r) for r in rows]

    def settled(self, process: str, attempts: int) -> dict[str, Any]:
        """The outbox row of ``process`` once ``attempts`` rounds are recorded."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rows = [r for r in self.outbox() if r["process"] == process]
            if rows and rows[-1]["attempts"] >= attempts and rows[-1]["lease_until"] is None:
                return rows[-1]
            time.sleep(0.1)
        raise AssertionError(f"no settled outbox row for {process}: {self.outbox()}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("dsp-outbox")
    pki = Pki(home / "pki")
    certs = {
        "maker": pki.client("Machine Maker BV", "EU.EORI.NL000000001", ["provider", "operator"]),
        "university": pki.client("Universiteit Oost", UNIVERSITY),
        "lab": pki.client("Fieldlab Noord", "NTRNL-40000002"),
        "officer": pki.client("Security Office", "NTRNL-40000005", ["officer"]),
    }
    asyncio.run(_seed(f"sqlite+aiosqlite:///{home / 'sluis.db'}"))
    with callback_server(pki.server_cert, pki.server_key, pki.bundle) as consumer:
        yield Site(home, pki, certs, consumer)


def _actions(provider: Provider, target: str) -> list[str]:
    with provider.client("officer") as client:
        page = client.get("/v1/audit/entries", params={"limit": 1000}).json()
    return [e["entry"]["action"] for e in page["entries"] if e["entry"].get("target") == target]


def _refused_round(site: Site) -> None:
    """The callback endpoint answers the next round 503."""
    site.consumer.refused.clear()
    site.consumer.fail_next(ROUND)


def test_an_agreement_undelivered_at_a_stop_arrives_after_the_restart(site: Site) -> None:
    _refused_round(site)
    with site.serving() as provider:
        pid, consumer_pid = _start(provider, "university", "machines")
        row = site.settled(f"dsp-negotiation:{pid}", attempts=1)
        assert row["status"] == "pending"
        assert len(site.consumer.refused) == ROUND
        assert site.consumer.received.empty()
    with site.serving() as provider:
        path, agreed = site.consumer.next()
        assert path == f"/callback/negotiations/{consumer_pid}/agreement"
        validate(agreed, "negotiation/contract-agreement-message-schema.json")
        assert agreed["providerPid"] == pid
        assert site.settled(f"dsp-negotiation:{pid}", attempts=2)["status"] == "delivered"
        # the negotiation goes on as if nothing had happened
        verification = _message(pid, consumer_pid, "ContractAgreementVerificationMessage")
        assert _post(
            provider, "university", f"/{pid}/agreement/verification", verification
        ).is_success
        path, event = site.consumer.next()
        assert (path, event["eventType"]) == (f"/callback/negotiations/{consumer_pid}/events",
                                              "FINALIZED")  # fmt: skip
        assert _actions(provider, f"dsp-negotiation:{pid}") == [
            "dsp-request", "dsp-agree", "dsp-verification", "dsp-finalize",
        ]  # fmt: skip


def _finalized(provider: Provider, site: Site) -> str:
    pid, consumer_pid = _start(provider, "university", "machines")
    _, agreed = site.consumer.next()
    verification = _message(pid, consumer_pid, "ContractAgreementVerificationMessage")
    assert _post(provider, "university", f"/{pid}/agreement/verification", verification).is_success
    site.consumer.next()  # FINALIZED
    with provider.client("maker") as admin:
        body = {"client_id": UNIVERSITY, "auth_method": "tls_client_auth",
                "scopes": ["dataset:machines"]}  # fmt: skip
        assert admin.post("/v1/admin/clients", json=body).status_code in (201, 409)
    return str(agreed["agreement"]["@id"])


def test_a_start_message_is_resent_with_a_new_token_never_stored(site: Site) -> None:
    with site.serving() as provider:
        agreement = _finalized(provider, site)
        _refused_round(site)
        message = _request(agreement, provider)
        response = _transfer_post(provider, "university", "/request", message)
        assert response.status_code == 201, response.text
        pid = response.json()["providerPid"]
        row = site.settled(f"dsp-transfer:{pid}", attempts=1)
    stored = row["message"]
    assert "Bearer" not in stored  # the database never holds the token
    assert '"authorization"' not in stored
    with site.serving() as provider:
        path, start = site.consumer.next()
        assert path == f"/callback/transfers/{message['consumerPid']}/start"
        validate(start, "transfer/transfer-start-message-schema.json")
        properties = {p["name"]: p["value"] for p in start["dataAddress"]["endpointProperties"]}
        token = properties["authorization"].removeprefix("Bearer ")
        data = f"{provider.url}/v1/datasets/machines/query"
        pulled = _pull(provider, "university", data, token)
        assert pulled.status_code == 200, pulled.text
        # still bound to the certificate that asked for the transfer
        assert _pull(provider, "lab", data, token).status_code == 401
        actions = _actions(provider, f"dsp-transfer:{pid}")
        assert actions == ["dsp-transfer-request", "dsp-transfer-start", "dsp-transfer-resend"]
    # a move revokes the token the transfer holds: one read before the re-send does not move it
    assert asyncio.run(_terminate(site, pid, jti_seen="the-undelivered-one")) is False
    assert asyncio.run(_terminate(site, pid, jti_seen=None)) is False
    with sqlite3.connect(site.db_file) as db:
        (held,) = db.execute("SELECT token_jti FROM dsp_transfers WHERE provider_pid = ?",
                             (pid,)).fetchone()  # fmt: skip
    assert asyncio.run(_terminate(site, pid, jti_seen=held)) is True


async def _terminate(site: Site, pid: str, *, jti_seen: str | None) -> bool:
    db = Database(f"sqlite+aiosqlite:///{site.db_file}")
    try:
        async with db.session() as session:
            return await transfer_repository.move(
                session, pid, "STARTED", "TERMINATED", jti_seen=jti_seen, jti=None,
                expires_at=None, now=datetime.now(UTC),
            )  # fmt: skip
    finally:
        await db.dispose()


def test_a_message_undelivered_in_time_is_given_up_and_audited(site: Site) -> None:
    _refused_round(site)
    with site.serving() as provider:
        pid, _ = _start(provider, "university", "machines")
        site.settled(f"dsp-negotiation:{pid}", attempts=1)
    _refused_round(site)  # still down at the restart, and the message is too old by now
    with site.serving(dsp_callback_give_up_after=1) as provider:
        row = site.settled(f"dsp-negotiation:{pid}", attempts=2)
        assert row["status"] == "given-up"
        assert site.consumer.received.empty()
        target = f"dsp-negotiation:{pid}"
        assert _actions(provider, target)[-1] == "dsp-callback-given-up"
        with provider.client("university") as client:  # the state stays: the consumer can GET
            assert client.get(f"/dsp/negotiations/{pid}").json()["state"] == "AGREED"
