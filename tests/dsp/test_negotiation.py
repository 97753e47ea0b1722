"""DSP contract negotiation, provider side (issue 14, step 2), against a real loopback
consumer callback endpoint: the state machine persisted, mapped onto Sluis agreements,
every change audited, every message schema-valid, malformed messages refused unchanged."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.dsp.conftest import Provider
from tests.support.dsp import validate

CONTEXT = ["https://w3id.org/dspace/2025/1/context.jsonld"]


def _offer(provider: Provider, dataset: str) -> dict[str, Any]:
    with provider.client("university") as client:
        found = client.get(f"/dsp/catalog/datasets/{dataset}").json()
    return dict(found["hasPolicy"][0])


def _request_message(provider: Provider, dataset: str, **changes: Any) -> dict[str, Any]:
    message = {
        "@context": CONTEXT,
        "@type": "ContractRequestMessage",
        "consumerPid": f"urn:uuid:{uuid.uuid4()}",
        "offer": {**_offer(provider, dataset), "target": dataset},
        "callbackAddress": provider.consumer.url,
    }
    message.update(changes)
    return {k: v for k, v in message.items() if v is not None}


def _post(provider: Provider, who: str, path: str, body: Any) -> Any:
    with provider.client(who) as client:
        return client.post(f"/dsp/negotiations{path}", json=body)


def _state(provider: Provider, who: str, pid: str) -> str:
    with provider.client(who) as client:
        response = client.get(f"/dsp/negotiations/{pid}")
    assert response.status_code == 200, response.text
    validate(response.json(), "negotiation/contract-negotiation-schema.json")
    return str(response.json()["state"])


def _message(pid: str, consumer_pid: str, kind: str, **more: Any) -> dict[str, Any]:
    return {"@context": CONTEXT, "@type": kind, "providerPid": pid, "consumerPid": consumer_pid,
            **more}  # fmt: skip


def _start(provider: Provider, who: str, dataset: str) -> tuple[str, str]:
    message = _request_message(provider, dataset)
    response = _post(provider, who, "/request", message)
    assert response.status_code == 201, response.text
    validate(response.json(), "negotiation/contract-negotiation-schema.json")
    assert response.json()["state"] == "REQUESTED"
    return str(response.json()["providerPid"]), str(message["consumerPid"])


def _agreements(provider: Provider, who: str) -> list[dict[str, Any]]:
    with provider.client(who) as client:
        return list(client.get("/v1/agreements").json())


def _entries(provider: Provider, pid: str) -> list[str]:
    with provider.client("officer") as client:
        page = client.get("/v1/audit/entries", params={"limit": 1000}).json()
    return [
        e["entry"]["action"]
        for e in page["entries"]
        if e["entry"].get("target") == f"dsp-negotiation:{pid}"
    ]


def test_a_whole_negotiation_ends_in_an_active_agreement(provider: Provider) -> None:
    pid, consumer_pid = _start(provider, "university", "machines")
    path, agreed = provider.consumer.next()
    assert path == f"/callback/negotiations/{consumer_pid}/agreement"
    assert provider.consumer.callers[-1] == "Machine Maker BV"  # the gateway's DSP identity
    validate(agreed, "negotiation/contract-agreement-message-schema.json")
    agreement_id = agreed["agreement"]["@id"].removeprefix("urn:sluis:agreement:")
    assert agreed["agreement"]["assignee"] == "urn:sluis:participant:NTRNL-40000001"
    assert _state(provider, "university", pid) == "AGREED"
    with provider.client("university") as client:
        sluis = client.get(f"/v1/agreements/{agreement_id}").json()
    assert sluis["state"] == "active"  # decided by the same policy check
    assert sluis["purpose"] == "https://w3id.org/dpv#AcademicResearch"

    verification = _message(pid, consumer_pid, "ContractAgreementVerificationMessage")
    validate(verification, "negotiation/contract-agreement-verification-message-schema.json")
    assert _post(provider, "university", f"/{pid}/agreement/verification", verification).is_success
    path, event = provider.consumer.next()
    assert path == f"/callback/negotiations/{consumer_pid}/events"
    validate(event, "negotiation/contract-negotiation-event-message-schema.json")
    assert event["eventType"] == "FINALIZED"
    assert _state(provider, "university", pid) == "FINALIZED"

    # each change of the negotiation is an agreement change in the audit log
    assert _entries(provider, pid) == ["dsp-request", "dsp-agree", "dsp-verification",
                                       "dsp-finalize"]  # fmt: skip

    # FINALIZED is final: verifying again is an invalid transition, and changes nothing
    again = _post(provider, "university", f"/{pid}/agreement/verification", verification)
    assert again.status_code == 400
    validate(again.json(), "negotiation/contract-negotiation-error-schema.json")
    assert again.json()["code"] == "dsp-invalid-transition"
    assert again.json()["providerPid"] == pid
    assert _state(provider, "university", pid) == "FINALIZED"


def test_someone_elses_or_an_unknown_negotiation_is_not_found(provider: Provider) -> None:
    pid, _ = _start(provider, "university", "machines")
    provider.consumer.next()  # the agreement message
    for who, which in [("lab", pid), ("university", "urn:uuid:nothing")]:
        with provider.client(who) as client:
            response = client.get(f"/dsp/negotiations/{which}")
        assert response.status_code == 404
        validate(response.json(), "negotiation/contract-negotiation-error-schema.json")


def test_verification_before_agreement_is_an_invalid_transition(provider: Provider) -> None:
    pid, consumer_pid = _start(provider, "university", "machines-manual")  # waits for approval
    verification = _message(pid, consumer_pid, "ContractAgreementVerificationMessage")
    response = _post(provider, "university", f"/{pid}/agreement/verification", verification)
    assert response.status_code == 400
    assert response.json()["code"] == "dsp-invalid-transition"
    accepted = _message(pid, consumer_pid, "ContractNegotiationEventMessage", eventType="ACCEPTED")
    assert _post(provider, "university", f"/{pid}/events", accepted).status_code == 400
    assert _state(provider, "university", pid) == "REQUESTED"
    _terminate(provider, pid, consumer_pid)


def _terminate(provider: Provider, pid: str, consumer_pid: str) -> None:
    message = _message(pid, consumer_pid, "ContractNegotiationTerminationMessage",
                       code="done", reason=["no longer needed"])  # fmt: skip
    validate(message, "negotiation/contract-negotiation-termination-message-schema.json")
    assert _post(provider, "university", f"/{pid}/termination", message).status_code == 200
    assert _state(provider, "university", pid) == "TERMINATED"


def test_the_provider_approves_later_and_the_consumer_terminates(provider: Provider) -> None:
    pid, consumer_pid = _start(provider, "university", "machines-manual")
    assert _state(provider, "university", pid) == "REQUESTED"
    waiting = [a for a in _agreements(provider, "university")
               if a["dataset_id"] == "machines-manual" and a["state"] == "requested"]  # fmt: skip
    with provider.client("maker") as maker:
        assert maker.post(f"/v1/agreements/{waiting[0]['id']}/approve").is_success
    path, agreed = provider.consumer.next()
    assert path.endswith(f"/{consumer_pid}/agreement")
    validate(agreed, "negotiation/contract-agreement-message-schema.json")
    assert _state(provider, "university", pid) == "AGREED"
    _terminate(provider, pid, consumer_pid)
    with provider.client("university") as client:
        ended = client.get(f"/v1/agreements/{waiting[0]['id']}").json()
    assert ended["state"] == "terminated"  # the Sluis agreement ends with the negotiation


def test_a_consumer_the_policy_refuses_is_terminated(provider: Provider) -> None:
    pid, consumer_pid = _start(provider, "lab", "machines")  # the policy names the university
    path, message = provider.consumer.next()
    assert path == f"/callback/negotiations/{consumer_pid}/termination"
    validate(message, "negotiation/contract-negotiation-termination-message-schema.json")
    assert _state(provider, "lab", pid) == "TERMINATED"


def test_the_provider_retries_a_callback_that_fails(provider: Provider) -> None:
    provider.consumer.fail_next(2)
    _, consumer_pid = _start(provider, "university", "machines")
    path, _ = provider.consumer.next()
    assert path.endswith(f"/{consumer_pid}/agreement")
    assert provider.consumer.refused == [path, path]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"@context": None}, "dsp-malformed-message"),
        ({"@type": "ContractOfferMessage"}, "dsp-malformed-message"),
        ({"consumerPid": None}, "dsp-malformed-message"),
        ({"consumerPid": 7}, "dsp-malformed-message"),
        ({"offer": None}, "dsp-malformed-message"),
        ({"offer": "urn:sluis:offer:machines:x"}, "dsp-malformed-message"),
        ({"offer": {"@id": "urn:other:offer"}}, "dsp-malformed-message"),
        ({"offer": {"@id": "urn:sluis:offer:machines:sha256:00"}}, "dsp-offer-outdated"),
        ({"callbackAddress": None}, "dsp-malformed-message"),
        ({"callbackAddress": "http://127.0.0.1:9/cb"}, "dsp-callback-refused"),
        ({"callbackAddress": "https://10.1.2.3/cb"}, "dsp-callback-refused"),
        ({"callbackAddress": "https://169.254.169.254/cb"}, "dsp-callback-refused"),
        ({"providerPid": "urn:uuid:x"}, "dsp-malformed-message"),
    ],
)
def test_a_malformed_request_is_refused_and_changes_nothing(
    provider: Provider, change: dict[str, Any], code: str
) -> None:
    before = _agreements(provider, "lab")
    message = _request_message(provider, "machines", **change)
    response = _post(provider, "lab", "/request", message)
    assert response.status_code == 400, response.text
    validate(response.json(), "negotiation/contract-negotiation-error-schema.json")
    assert response.json()["code"] == code
    assert response.headers["content-type"] == "application/problem+json"
    assert _agreements(provider, "lab") == before


@pytest.mark.parametrize(
    "change",
    [
        {"consumerPid": "urn:uuid:someone-else"},
        {"providerPid": None},
        {"@context": ["https://example.org/context.jsonld"]},
        {"@type": "ContractAgreementVerificationMessage"},  # sent to /termination
    ],
)
def test_a_malformed_consumer_message_changes_nothing(
    provider: Provider, change: dict[str, Any]
) -> None:
    pid, consumer_pid = _start(provider, "university", "machines-manual")
    message = _message(pid, consumer_pid, "ContractNegotiationTerminationMessage")
    message = {k: v for k, v in {**message, **change}.items() if v is not None}
    response = _post(provider, "university", f"/{pid}/termination", message)
    assert response.status_code == 400, response.text
    validate(response.json(), "negotiation/contract-negotiation-error-schema.json")
    assert response.json()["code"] == "dsp-malformed-message"
    assert _state(provider, "university", pid) == "REQUESTED"
    _terminate(provider, pid, consumer_pid)
