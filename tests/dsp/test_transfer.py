"""DSP transfer process, provider side, HTTP-pull (issue 14, step 3): the start message
carries a Sluis token bound to the consumer's certificate for the Sluis data endpoint, where
every request is still decided and audited; suspension and termination revoke it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.dsp.conftest import Provider
from tests.dsp.test_negotiation import CONTEXT, _message, _post, _start
from tests.support.dsp import validate


@pytest.fixture(scope="module")
def agreement(provider: Provider) -> str:
    """The DSP Agreement @id of a FINALIZED negotiation of the university for 'machines'."""
    pid, consumer_pid = _start(provider, "university", "machines")
    _, agreed = provider.consumer.next()
    verification = _message(pid, consumer_pid, "ContractAgreementVerificationMessage")
    assert _post(provider, "university", f"/{pid}/agreement/verification", verification).is_success
    _, event = provider.consumer.next()
    assert event["eventType"] == "FINALIZED"
    return str(agreed["agreement"]["@id"])


def _transfer_post(provider: Provider, who: str, path: str, body: Any) -> Any:
    with provider.client(who) as client:
        return client.post(f"/dsp/transfers{path}", json=body)


def _request(agreement_id: str, provider: Provider, **changes: Any) -> dict[str, Any]:
    message = {
        "@context": CONTEXT,
        "@type": "TransferRequestMessage",
        "consumerPid": f"urn:uuid:{uuid.uuid4()}",
        "agreementId": agreement_id,
        "format": "HttpData-PULL",
        "callbackAddress": provider.consumer.url,
    }
    return {k: v for k, v in {**message, **changes}.items() if v is not None}


def _started(provider: Provider, consumer_pid: str) -> tuple[str, str]:
    path, start = provider.consumer.next()
    assert path == f"/callback/transfers/{consumer_pid}/start"
    validate(start, "transfer/transfer-start-message-schema.json")
    address = start["dataAddress"]
    properties = {p["name"]: p["value"] for p in address["endpointProperties"]}
    return str(address["endpoint"]), properties["authorization"].removeprefix("Bearer ")


def _pull(provider: Provider, who: str, endpoint: str, token: str) -> Any:
    with provider.client(who, token) as client:
        return client.post(endpoint, json={"columns": ["machine"]})


def _process(provider: Provider, pid: str, consumer_pid: str, kind: str, path: str) -> Any:
    message = _message(pid, consumer_pid, kind)
    return _transfer_post(provider, "university", f"/{pid}/{path}", message)


def test_http_pull_with_a_bound_token_decided_and_revoked(
    provider: Provider, agreement: str
) -> None:
    message = _request(agreement, provider)
    validate(message, "transfer/transfer-request-message-schema.json")
    response = _transfer_post(provider, "university", "/request", message)
    assert response.status_code == 201, response.text
    validate(response.json(), "transfer/transfer-process-schema.json")
    pid, consumer_pid = response.json()["providerPid"], message["consumerPid"]
    endpoint, token = _started(provider, consumer_pid)
    # the gateway's public URL (settings.public_url; the test reaches it on its loopback port)
    assert endpoint == "https://localhost:8443/v1/datasets/machines/query"
    data = f"{provider.url}/v1/datasets/machines/query"

    pulled = _pull(provider, "university", data, token)
    assert pulled.status_code == 200, pulled.text
    assert json.loads(pulled.text.splitlines()[0]) == {"machine": "X200"}
    # bound to the certificate that asked for the transfer: another holder cannot use it
    stolen = _pull(provider, "lab", data, token)
    assert stolen.status_code == 401
    assert stolen.json()["type"] == "urn:sluis:problem:token-wrong-certificate"

    suspended = _process(provider, pid, consumer_pid, "TransferSuspensionMessage", "suspension")
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["state"] == "SUSPENDED"
    refused = _pull(provider, "university", data, token)
    assert refused.json()["type"] == "urn:sluis:problem:token-revoked"

    resumed = _process(provider, pid, consumer_pid, "TransferStartMessage", "start")
    assert resumed.status_code == 200, resumed.text
    _, fresh = _started(provider, consumer_pid)
    assert fresh != token
    assert _pull(provider, "university", data, fresh).status_code == 200

    ended = _process(provider, pid, consumer_pid, "TransferTerminationMessage", "termination")
    assert ended.json()["state"] == "TERMINATED"
    gone = _pull(provider, "university", data, fresh)
    assert gone.json()["type"] == "urn:sluis:problem:token-revoked"
    again = _process(provider, pid, consumer_pid, "TransferCompletionMessage", "completion")
    assert again.status_code == 400
    validate(again.json(), "transfer/transfer-error-schema.json")
    assert again.json()["code"] == "dsp-invalid-transition"

    with provider.client("officer") as client:
        page = client.get("/v1/audit/entries", params={"limit": 1000}).json()
    mine = [
        e["entry"] for e in page["entries"] if e["entry"].get("target") == f"dsp-transfer:{pid}"
    ]
    assert [e["action"] for e in mine] == [
        "dsp-transfer-request", "dsp-transfer-start", "dsp-transfer-suspension",
        "dsp-transfer-start", "dsp-transfer-termination",
    ]  # fmt: skip
    assert all(token not in json.dumps(e) for e in mine)  # hashed, never the token
    decisions = [e for e in page["entries"]
                 if e["entry"]["event"] == "access-decision"
                 and e["entry"].get("dataset") == "machines"]  # fmt: skip
    assert decisions  # every pull decided and audited by the exchange


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"format": "HttpData-PUSH"}, 400, "dsp-format-unsupported"),
        ({"agreementId": "urn:sluis:agreement:agr-0000000000000000"}, 404, "agreement-not-found"),
        ({"agreementId": "urn:other:agreement"}, 400, "dsp-malformed-message"),
        ({"agreementId": None}, 400, "dsp-malformed-message"),
        ({"callbackAddress": "https://10.9.8.7/cb"}, 400, "dsp-callback-refused"),
    ],
)
def test_a_transfer_request_that_cannot_be_served(
    provider: Provider, agreement: str, change: dict[str, Any], status: int, code: str
) -> None:
    response = _transfer_post(provider, "university", "/request",
                              _request(agreement, provider, **change))  # fmt: skip
    assert response.status_code == status, response.text
    validate(response.json(), "transfer/transfer-error-schema.json")
    assert response.json()["code"] == code


def test_someone_elses_agreement_cannot_be_transferred(provider: Provider, agreement: str) -> None:
    response = _transfer_post(provider, "lab", "/request", _request(agreement, provider))
    assert response.status_code == 404
    validate(response.json(), "transfer/transfer-error-schema.json")


def test_no_registered_client_no_transfer(provider: Provider) -> None:
    """The university's client may not hold dataset:machines-manual: refused at the request."""
    pid, consumer_pid = _start(provider, "university", "machines-manual")
    with provider.client("university") as client:
        mine = client.get("/v1/agreements").json()
    waiting = [
        a for a in mine if a["dataset_id"] == "machines-manual" and a["state"] == "requested"
    ]
    with provider.client("maker") as maker:
        assert maker.post(f"/v1/agreements/{waiting[0]['id']}/approve").is_success
    _, agreed = provider.consumer.next()
    verification = _message(pid, consumer_pid, "ContractAgreementVerificationMessage")
    assert _post(provider, "university", f"/{pid}/agreement/verification", verification).is_success
    provider.consumer.next()  # FINALIZED
    message = _request(str(agreed["agreement"]["@id"]), provider)
    response = _transfer_post(provider, "university", "/request", message)
    assert response.status_code == 400, response.text
    validate(response.json(), "transfer/transfer-error-schema.json")
    assert response.json()["code"] == "dsp-no-client"
