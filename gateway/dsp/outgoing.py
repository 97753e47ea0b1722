"""The negotiation messages and objects Sluis sends or returns (pure, DSP 2025-1 shapes)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.dsp.messages import context
from gateway.storage.models import DspNegotiationRow

AGREEMENT_PREFIX = "urn:sluis:agreement:"


def agreement_iri(agreement_id: str) -> str:
    """The DSP Agreement ``@id`` of a Sluis agreement (the transfer's ``agreementId``)."""
    return AGREEMENT_PREFIX + agreement_id


def pids(row: DspNegotiationRow) -> dict[str, str]:
    """The negotiation's process ids, as every message and error carries them."""
    return {"providerPid": row.provider_pid, "consumerPid": row.consumer_pid}


def negotiation(row: DspNegotiationRow) -> dict[str, Any]:
    """The ContractNegotiation object (the answer to GET and to every consumer message)."""
    return {
        "@context": context(),
        "@type": "ContractNegotiation",
        **pids(row),
        "state": row.state,
    }


def agreement_message(
    row: DspNegotiationRow, offer: dict[str, Any], *, assigner: str, when: datetime
) -> dict[str, Any]:
    """The ContractAgreementMessage: the Offer made an Agreement for this consumer."""
    rules = {k: v for k, v in offer.items() if k in ("permission", "prohibition", "obligation")}
    return {
        "@context": context(),
        "@type": "ContractAgreementMessage",
        **pids(row),
        "agreement": {
            "@id": agreement_iri(row.agreement_id or ""),
            "@type": "Agreement",
            "profile": offer.get("profile", []),
            "target": row.dataset_id,
            "assigner": assigner,
            "assignee": f"urn:sluis:participant:{row.consumer_id}",
            "timestamp": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **rules,
        },
    }


def event_message(row: DspNegotiationRow, event: str) -> dict[str, Any]:
    """A ContractNegotiationEventMessage (the provider sends FINALIZED)."""
    return {
        "@context": context(),
        "@type": "ContractNegotiationEventMessage",
        **pids(row),
        "eventType": event,
    }


def termination_message(row: DspNegotiationRow, code: str, reason: str) -> dict[str, Any]:
    """A ContractNegotiationTerminationMessage with Sluis's short, stable reason."""
    return {
        "@context": context(),
        "@type": "ContractNegotiationTerminationMessage",
        **pids(row),
        "code": code,
        "reason": [reason],
    }
