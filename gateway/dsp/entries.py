"""The ``agreement-changed`` entry each negotiation state change commits with (pure).

A negotiation maps onto a Sluis agreement, so its changes are agreement changes: the same
event, the negotiation as ``target`` (``dsp-negotiation:<providerPid>``), the DSP move as
``action`` (``dsp-request``, ``dsp-agree``, ``dsp-verification``, ``dsp-finalize``,
``dsp-termination``), and as reasons the new state, the Sluis agreement and why.
"""

from __future__ import annotations

from datetime import datetime

from gateway.audit.entry import Actor, AuditEntry, DecisionRecord
from gateway.dsp.offers import parse_offer_id
from gateway.storage.models import DspNegotiationRow
from gateway.telemetry import current_trace_id

MAX_REASON = 500


def negotiation_entry(
    actor: Actor,
    row: DspNegotiationRow,
    move: str,
    *,
    state: str,
    reason: str | None,
    now: datetime,
    refused: bool = False,
) -> AuditEntry:
    """The entry for moving ``row`` to ``state`` by ``move``."""
    parsed = parse_offer_id(row.offer_id)
    reasons = (state, f"agreement:{row.agreement_id or '-'}", reason or "")
    return AuditEntry(
        time=now,
        event="agreement-changed",
        actor=actor,
        dataset=row.dataset_id,
        action=f"dsp-{move}",
        target=f"dsp-negotiation:{row.provider_pid}",
        decision=DecisionRecord(
            result="deny" if refused else "permit",
            policy_hash=parsed[1] if parsed else None,
            reasons=tuple(r[:MAX_REASON] for r in reasons),
        ),
        trace_id=current_trace_id(),
    )
