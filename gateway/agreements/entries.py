"""The ``agreement-changed`` entry each agreement transition commits with (pure).

It names the agreement (``target``), its dataset, purpose and policy version (hash), who
acted, the action (``request``, ``approve``, ``reject``, ``revoke``, ``terminate``) and the
state it moves to with the reason; a request the policy rejects also carries the policy's id,
its reason and its explanation (the report), so the log holds why.
"""

from __future__ import annotations

from datetime import datetime

from gateway.audit.entry import Actor, AuditEntry, DecisionRecord
from gateway.storage.models import AgreementRow
from gateway.telemetry import current_trace_id
from policies import Decision, explain

MAX_REASON = 500
MAX_REPORT_LINES = 50


def agreement_entry(
    actor: Actor,
    row: AgreementRow,
    action: str,
    *,
    state: str,
    reason: str | None,
    now: datetime,
    decision: Decision | None = None,
) -> AuditEntry:
    """The entry for moving ``row`` to ``state`` (with ``reason``) by ``action``."""
    reasons: tuple[str, ...] = (state, reason or "")
    if decision is not None and not decision.permitted:
        report = explain(decision).splitlines()[:MAX_REPORT_LINES]
        reasons = (*reasons, decision.reason, *report)
    return AuditEntry(
        time=now,
        event="agreement-changed",
        actor=actor,
        dataset=row.dataset_id,
        purpose=row.purpose,
        action=action,
        target=f"agreement:{row.id}",
        decision=DecisionRecord(
            result="deny" if state == "rejected" else "permit",
            policy_id=decision.policy_id if decision else None,
            policy_hash=row.policy_hash,
            reasons=tuple(r[:MAX_REASON] for r in reasons),
        ),
        trace_id=current_trace_id(),
    )
