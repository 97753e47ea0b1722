"""What the HTTP layer writes to the audit log, and how.

Refusals (a certificate, a participant, a token) are recorded best effort: the refusal goes
out whether or not the entry could be written, since a refusal releases nothing; a failure
to record is logged loudly. Grants (a token issued) are recorded strictly: if the entry
cannot be committed the request fails with 503 and the token is withheld. Admin changes
are committed together with their entry by :mod:`gateway.admin.service` (``actor`` here
says who made them).
Tokens appear only as ``hash_token`` digests.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import Request

from certs import thumbprint_sha256
from gateway.audit.entry import (
    Actor,
    AuditEntry,
    DecisionRecord,
    DecisionResult,
    EventType,
    hash_token,
)
from gateway.audit.errors import EntryError
from gateway.audit.records import Receipt
from gateway.http.client_cert import STATE_KEY, PresentedCertificate
from gateway.participants.service import AuthenticatedParticipant
from gateway.storage import StorageUnavailable
from gateway.telemetry import SPAN_AUDIT, current_trace_id

log = logging.getLogger("sluis.audit")
CALLER_KEY = "authenticated_participant"


def actor(request: Request, *, client: str | None = None) -> Actor:
    """Who is on the other end: participant and certificate when known, and the address."""
    state = request.scope.get("state", {})
    caller: AuthenticatedParticipant | None = state.get(CALLER_KEY)
    presented: PresentedCertificate | None = state.get(STATE_KEY)
    certificate = None
    if caller is not None:
        certificate = caller.certificate.thumbprint_sha256
    elif presented is not None and presented.chain:
        certificate = thumbprint_sha256(presented.chain[0])
    source = request.client.host if request.client else None
    return Actor(
        participant=caller.participant.id if caller else None,
        client=client,
        certificate=certificate,
        source=source,
    )


def bearer_digest(request: Request) -> str | None:
    """The hash of the bearer token on this request, if there is one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return hash_token(token.strip())


def entry(
    request: Request,
    event: EventType,
    *,
    result: DecisionResult | None = None,
    reasons: tuple[str, ...] = (),
    client: str | None = None,
    token_sha256: str | None = None,
    target: str | None = None,
    action: str | None = None,
) -> AuditEntry:
    """An entry for ``event`` on this request."""
    decision = None
    if result is not None:
        decision = DecisionRecord(result=result, reasons=tuple(r[:500] for r in reasons))
    return AuditEntry(
        time=datetime.now(UTC),
        event=event,
        actor=actor(request, client=client),
        decision=decision,
        token_sha256=token_sha256,
        target=target,
        action=action,
        trace_id=current_trace_id(),
    )


async def record(request: Request, item: AuditEntry) -> Receipt:
    """Append strictly: StorageUnavailable propagates (503), nothing is released."""
    services = request.app.state.services
    with services.telemetry.span(SPAN_AUDIT, event=item.event):
        receipt: Receipt = await services.audit.append(item)
    return receipt


async def record_refusal(request: Request, item: AuditEntry) -> None:
    """Append best effort: a refusal goes out even when it cannot be recorded.

    Past the first few refusals from one source in a window, the refusal is counted into
    that source's summary entry instead (gateway/ratelimit/refusals.py).
    """
    services = getattr(request.app.state, "services", None)
    if services is None:
        return
    limits = getattr(services, "limits", None)  # None where a test wires partial services
    participant = item.actor.participant or item.actor.client
    admitted = limits is None or await limits.admit_refusal(
        item.actor.source, item.event, participant
    )
    if not admitted:
        return
    try:
        with services.telemetry.span(SPAN_AUDIT, event=item.event):
            await services.audit.append(item)
    except (StorageUnavailable, EntryError):
        log.exception("audit entry for a refusal could not be written (%s)", item.event)
