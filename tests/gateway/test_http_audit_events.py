"""What the HTTP layer writes to the audit log (gateway/http/audit_events.py), per request.

Starlette requests built from ASGI scopes; the audit log and the refusal counters are
recording stand-ins (the real log: tests/audit; the counters: test_rate_limits.py). Who the
actor is from what the scope holds, the bearer token's digest, an entry's fields, a grant
recorded strictly and a refusal best effort (admitted by the counters, a failure logged).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from opentelemetry.sdk.trace import TracerProvider
from starlette.requests import Request

from certs import thumbprint_sha256
from gateway.audit.entry import Actor, DecisionRecord, hash_token
from gateway.audit.errors import EntryError
from gateway.http import audit_events
from gateway.http.audit_events import CALLER_KEY
from gateway.http.client_cert import STATE_KEY, PresentedCertificate
from gateway.storage import StorageUnavailable
from gateway.telemetry import SPAN_AUDIT
from tests.support.exchange_world import party


def _certificate() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "client")])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(9)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )


CERT = _certificate()


class Telemetry:
    def __init__(self) -> None:
        self.spans: list[tuple[str, dict[str, Any]]] = []

    @contextmanager
    def span(self, name: str, **attributes: Any) -> Iterator[None]:
        self.spans.append((name, attributes))
        yield


class Audit:
    def __init__(self, failure: Exception | None = None) -> None:
        self.entries: list[Any] = []
        self.failure = failure

    async def append(self, item: Any) -> str:
        if self.failure is not None:
            raise self.failure
        self.entries.append(item)
        return f"receipt {len(self.entries)}"


class Limits:
    def __init__(self, admit: bool) -> None:
        self.admit = admit
        self.asked: list[tuple[Any, ...]] = []

    async def admit_refusal(self, source: str | None, event: str, participant: str | None) -> bool:
        self.asked.append((source, event, participant))
        return self.admit


def _request(
    state: dict[str, Any] | None = None,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    client: tuple[str, int] | None = ("198.51.100.4", 5000),
    services: Any = None,
) -> Request:
    app = SimpleNamespace(state=SimpleNamespace() if services is None else SimpleNamespace(
        services=services))  # fmt: skip
    scope: dict[str, Any] = {
        "type": "http", "method": "GET", "path": "/v1/x", "headers": headers or [],
        "client": client, "app": app,
    }  # fmt: skip
    if state is not None:
        scope["state"] = state
    return Request(scope)


# --- actor ----------------------------------------------------------------------------------


def test_the_actor_is_the_authenticated_caller() -> None:
    caller = party("NTRNL-50000001", "consumer")
    request = _request({CALLER_KEY: caller, STATE_KEY: PresentedCertificate("tls", (CERT,))})
    assert audit_events.actor(request, client="client-7") == Actor(
        participant="NTRNL-50000001", client="client-7", certificate="t", source="198.51.100.4"
    )


def test_before_authentication_the_actor_is_the_presented_certificate() -> None:
    request = _request({STATE_KEY: PresentedCertificate("proxy", (CERT,))})
    assert audit_events.actor(request) == Actor(
        certificate=thumbprint_sha256(CERT), source="198.51.100.4"
    )


@pytest.mark.parametrize(
    "state", [None, {}, {STATE_KEY: PresentedCertificate("none")}, {STATE_KEY: None}]
)
def test_without_a_certificate_the_actor_is_the_address(state: dict[str, Any] | None) -> None:
    assert audit_events.actor(_request(state)) == Actor(source="198.51.100.4")


def test_without_a_client_address_there_is_no_source() -> None:
    assert audit_events.actor(_request({}, client=None), client="c") == Actor(client="c")


# --- bearer_digest --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "token"), [(b"Bearer abc", "abc"), (b"bearer abc", "abc"), (b"BEARER  abc ", "abc")]
)
def test_the_bearer_tokens_digest(value: bytes, token: str) -> None:
    request = _request({}, headers=[(b"authorization", value)])
    assert audit_events.bearer_digest(request) == hash_token(token)


@pytest.mark.parametrize("value", [None, b"", b"Bearer", b"Bearer  ", b"Basic abc", b"Bearerabc"])
def test_no_digest_without_a_bearer_token(value: bytes | None) -> None:
    headers = [] if value is None else [(b"authorization", value)]
    assert audit_events.bearer_digest(_request({}, headers=headers)) is None


# --- entry ----------------------------------------------------------------------------------


def test_an_entry_carries_the_requests_actor_and_the_given_fields() -> None:
    request = _request({STATE_KEY: PresentedCertificate("tls", (CERT,))})
    before = datetime.now(UTC)
    item = audit_events.entry(
        request, "token-issued", client="client-7", token_sha256=hash_token("t"),
        target="/oauth/token", action="issue",
    )  # fmt: skip
    after = datetime.now(UTC)
    assert before <= item.time <= after
    assert item.event == "token-issued"
    assert item.actor == Actor(
        client="client-7", certificate=thumbprint_sha256(CERT), source="198.51.100.4"
    )
    assert item.decision is None
    assert item.token_sha256 == hash_token("t")
    assert item.target == "/oauth/token"
    assert item.action == "issue"
    assert item.trace_id is None


def test_an_entrys_decision_has_each_reason_cut_at_500_characters() -> None:
    reasons = ("certificate-expired", "x" * 500, "y" * 501)
    item = audit_events.entry(_request({}), "certificate-refused", result="deny", reasons=reasons)
    assert item.decision == DecisionRecord(
        result="deny", reasons=("certificate-expired", "x" * 500, "y" * 500)
    )
    item = audit_events.entry(_request({}), "access-decision", result="permit")
    assert item.decision == DecisionRecord(result="permit", reasons=())


def test_an_entry_carries_the_current_trace_id() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        item = audit_events.entry(_request({}), "token-refused")
    assert item.trace_id == f"{span.get_span_context().trace_id:032x}"


# --- record, record_refusal -----------------------------------------------------------------


def _services(audit: Audit, limits: Limits | None = None) -> Any:
    return SimpleNamespace(audit=audit, telemetry=Telemetry(), limits=limits)


def test_a_grant_is_recorded_in_its_span_and_its_receipt_returned() -> None:
    services = _services(Audit())
    request = _request({}, services=services)
    item = audit_events.entry(request, "token-issued")
    assert asyncio.run(audit_events.record(request, item)) == "receipt 1"
    assert services.audit.entries == [item]
    assert services.telemetry.spans == [(SPAN_AUDIT, {"event": "token-issued"})]


def test_a_grant_that_cannot_be_recorded_fails() -> None:
    services = _services(Audit(StorageUnavailable("down")))
    request = _request({}, services=services)
    with pytest.raises(StorageUnavailable):
        asyncio.run(audit_events.record(request, audit_events.entry(request, "token-issued")))


def test_a_refusal_is_recorded_when_the_counters_admit_it() -> None:
    limits = Limits(admit=True)
    services = _services(Audit(), limits)
    caller = party("NTRNL-50000001", "consumer")
    request = _request({CALLER_KEY: caller}, services=services)
    item = audit_events.entry(request, "token-refused", client="client-7")
    asyncio.run(audit_events.record_refusal(request, item))
    assert services.audit.entries == [item]
    assert services.telemetry.spans == [(SPAN_AUDIT, {"event": "token-refused"})]
    assert limits.asked == [("198.51.100.4", "token-refused", "NTRNL-50000001")]


def test_a_refusal_without_a_participant_is_counted_by_its_client() -> None:
    limits = Limits(admit=True)
    services = _services(Audit(), limits)
    request = _request({}, services=services, client=None)
    item = audit_events.entry(request, "token-refused", client="client-7")
    asyncio.run(audit_events.record_refusal(request, item))
    assert limits.asked == [(None, "token-refused", "client-7")]
    item = audit_events.entry(request, "certificate-refused")
    asyncio.run(audit_events.record_refusal(request, item))
    assert limits.asked[1] == (None, "certificate-refused", None)


def test_a_refusal_past_the_counters_is_not_recorded() -> None:
    limits = Limits(admit=False)
    services = _services(Audit(), limits)
    request = _request({}, services=services)
    asyncio.run(audit_events.record_refusal(request, audit_events.entry(request, "token-refused")))
    assert services.audit.entries == []
    assert services.telemetry.spans == []
    assert len(limits.asked) == 1


def test_without_counters_every_refusal_is_recorded() -> None:
    services = SimpleNamespace(audit=Audit(), telemetry=Telemetry())  # no limits at all
    request = _request({}, services=services)
    item = audit_events.entry(request, "token-refused")
    asyncio.run(audit_events.record_refusal(request, item))
    assert services.audit.entries == [item]


def test_without_services_a_refusal_is_not_recorded() -> None:
    request = _request({})
    asyncio.run(audit_events.record_refusal(request, audit_events.entry(request, "token-refused")))


@pytest.mark.parametrize(
    "failure", [StorageUnavailable("down"), EntryError("secret-in-entry", "a key")]
)
def test_a_refusal_that_cannot_be_recorded_is_logged_not_raised(
    failure: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    services = _services(Audit(failure))
    request = _request({}, services=services)
    with caplog.at_level(logging.INFO, logger="sluis.audit"):
        asyncio.run(
            audit_events.record_refusal(request, audit_events.entry(request, "certificate-refused"))
        )
    [record] = caplog.records
    assert record.name == "sluis.audit"
    assert record.levelno == logging.ERROR
    assert record.getMessage() == (
        "audit entry for a refusal could not be written (certificate-refused)"
    )
    assert record.exc_info is not None
    assert record.exc_info[1] is failure


def test_another_failure_to_record_a_refusal_is_raised() -> None:
    services = _services(Audit(RuntimeError("bug")))
    request = _request({}, services=services)
    with pytest.raises(RuntimeError, match="bug"):
        asyncio.run(
            audit_events.record_refusal(request, audit_events.entry(request, "token-refused"))
        )
