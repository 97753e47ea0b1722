"""The consumer side's pure pieces: reading a provider's Dataset and DataAddress, narrowing an
Offer's purpose, the consumer state machine, and keeping tokens out of the wire log."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.dsp.consumer import MOVES, after, first_offer, narrowed, provider_of
from gateway.dsp.consumer_transfer import _address
from gateway.dsp.errors import dsp_error_fields
from gateway.dsp.messages import MalformedMessage, log_message
from gateway.dsp.peer import ProviderInvalid
from gateway.dsp.states import InvalidTransition
from gateway.errors import BadRequest
from gateway.storage.models import DspConsumerNegotiationRow, DspConsumerTransferRow

NOW = datetime(2026, 12, 3, tzinfo=UTC)
PURPOSE = {"leftOperand": "odrl:purpose", "operator": "odrl:isAnyOf",
           "rightOperand": [{"@id": "dpv:A"}, {"@id": "dpv:B"}]}  # fmt: skip
OFFER = {"@id": "urn:sluis:offer:m:h", "@type": "Offer",
         "permission": [{"action": "odrl:read", "constraint": [PURPOSE]}]}  # fmt: skip


def _negotiation(state: str) -> DspConsumerNegotiationRow:
    return DspConsumerNegotiationRow(
        consumer_pid="urn:uuid:c", provider_pid="urn:uuid:p", provider_url="https://p/dsp",
        provider_id="P", requested_by="C", dataset_id="m", offer_id="o", state=state,
        created_at=NOW, updated_at=NOW,
    )  # fmt: skip


def _transfer(provider_url: str = "https://maker.example:8443/dsp") -> DspConsumerTransferRow:
    return DspConsumerTransferRow(
        consumer_pid="urn:uuid:t", provider_pid="urn:uuid:q", negotiation_pid="urn:uuid:c",
        provider_url=provider_url, provider_id="P", requested_by="C", dataset_id="m",
        agreement_id="urn:sluis:agreement:a", state="REQUESTED", created_at=NOW, updated_at=NOW,
    )  # fmt: skip


def _start(endpoint: str, authorization: str | None = "Bearer t0k") -> dict[str, Any]:
    props = [{"@type": "EndpointProperty", "name": "expiresIn", "value": "300"}]
    if authorization is not None:
        props.append({"@type": "EndpointProperty", "name": "authorization",
                      "value": authorization})  # fmt: skip
    return {"dataAddress": {"@type": "DataAddress", "endpoint": endpoint,
                            "endpointProperties": props}}  # fmt: skip


def test_narrowing_names_one_purpose_and_keeps_the_rest() -> None:
    mine = narrowed(OFFER, "dpv:B")
    constraint = mine["permission"][0]["constraint"][0]
    assert constraint == {**PURPOSE, "rightOperand": {"@id": "dpv:B"}}
    assert mine["@id"] == OFFER["@id"]
    assert OFFER["permission"][0]["constraint"][0] is PURPOSE  # the catalog's copy untouched
    with pytest.raises(BadRequest) as refused:
        narrowed({**OFFER, "permission": [{"action": "odrl:read"}]}, "dpv:B")
    assert refused.value.code == "dsp-purpose-not-offered"


def test_the_provider_is_the_datasets_sluis_publisher_or_must_be_named() -> None:
    assert provider_of({"dct:publisher": {"@id": "urn:sluis:participant:EU.EORI.NL1"}}) == (
        "EU.EORI.NL1"
    )
    assert provider_of({"dct:publisher": "urn:sluis:participant:X"}) == "X"
    assert provider_of({"dct:publisher": {"@id": "https://other.example/org"}}) is None
    assert provider_of({}) is None


def test_a_dataset_without_an_offer_is_refused() -> None:
    assert first_offer({"hasPolicy": [OFFER]}) is OFFER
    assert first_offer({"hasPolicy": OFFER}) is OFFER
    for bad in ({}, {"hasPolicy": []}, {"hasPolicy": [{"@type": "Offer"}]}):
        with pytest.raises(ProviderInvalid):
            first_offer(bad)


@pytest.mark.parametrize(
    ("state", "move", "to"),
    [("REQUESTED", "agreed", "AGREED"), ("AGREED", "verification", "VERIFIED"),
     ("VERIFIED", "finalized", "FINALIZED"), ("REQUESTED", "offered", "OFFERED"),
     ("AGREED", "termination", "TERMINATED")],
)  # fmt: skip
def test_the_consumer_moves(state: str, move: str, to: str) -> None:
    assert after(_negotiation(state), move, MOVES) == to


@pytest.mark.parametrize(
    ("state", "move"),
    [("REQUESTED", "finalized"), ("AGREED", "agreed"), ("FINALIZED", "termination"),
     ("TERMINATED", "agreed"), ("REQUESTED", "verification")],
)  # fmt: skip
def test_moves_the_state_does_not_allow(state: str, move: str) -> None:
    with pytest.raises(InvalidTransition) as refused:
        after(_negotiation(state), move, MOVES)
    assert refused.value.dsp_pids == {"providerPid": "urn:uuid:p", "consumerPid": "urn:uuid:c"}


def test_a_data_address_is_an_https_endpoint_on_the_providers_host_with_a_bearer() -> None:
    row = _transfer()
    endpoint = "https://maker.example:9443/v1/datasets/m/query"
    assert _address(_start(endpoint), row) == (endpoint, "t0k", 300)
    for message in (
        _start("http://maker.example/v1/datasets/m/query"),
        _start("https://elsewhere.example/v1/datasets/m/query"),
        _start(endpoint, authorization=None),
        _start(endpoint, authorization="Basic dXNlcg=="),
        {"dataAddress": "https://maker.example/"},
        {},
    ):
        with pytest.raises(MalformedMessage):
            _address(message, row)


def test_the_wire_log_shows_messages_but_never_a_token(caplog: pytest.LogCaptureFixture) -> None:
    message = {"@type": "TransferStartMessage", **_start("https://p/x", "Bearer s3cret-token")}
    with caplog.at_level(logging.DEBUG, logger="sluis.dsp.wire"):
        log_message("received", message)
    (record,) = caplog.records
    shown = record.dsp_message  # type: ignore[attr-defined]
    assert "s3cret" not in repr(shown)
    assert {"@type": "EndpointProperty", "name": "authorization", "value": "[redacted]"} in (
        shown["dataAddress"]["endpointProperties"]
    )
    assert "s3cret" in repr(message)  # the message itself is not changed


def test_callback_errors_are_dsp_errors_of_their_protocol() -> None:
    pids = {"providerPid": "p", "consumerPid": "c"}
    negotiation = dsp_error_fields("/dsp/callback/negotiations/c/agreement", "x", "why", pids)
    assert negotiation["@type"] == "ContractNegotiationError"
    assert negotiation["consumerPid"] == "c"
    transfer = dsp_error_fields("/dsp/callback/transfers/c/start", "x", "why", pids)
    assert transfer["@type"] == "TransferError"
    assert dsp_error_fields("/dsp/callbackx", "x", "why") == {}
