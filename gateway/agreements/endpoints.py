"""Agreements API: consumers request and terminate, providers approve, reject, revoke."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from gateway.agreements.schemas import Agreement, AgreementDecision, AgreementRequest
from gateway.http import audit_events
from gateway.http.deps import Caller, ServicesDep, require_role
from gateway.participants.service import AuthenticatedParticipant

router = APIRouter(prefix="/v1/agreements", tags=["agreements"])
ConsumerCaller = Annotated[AuthenticatedParticipant, Depends(require_role("consumer"))]
ProviderCaller = Annotated[AuthenticatedParticipant, Depends(require_role("provider"))]


async def _audited(request: Request, agreement: Agreement, action: str) -> Agreement:
    item = audit_events.entry(
        request,
        "agreement-changed",
        result="deny" if agreement.state == "rejected" else "permit",
        reasons=(agreement.state, agreement.reason or ""),
        target=f"agreement:{agreement.id}",
        action=action,
    )
    await audit_events.record(request, item)
    return agreement


@router.post("", response_model=Agreement, status_code=status.HTTP_201_CREATED)
async def request_agreement(
    request: Request, body: AgreementRequest, caller: ConsumerCaller, services: ServicesDep
) -> Agreement:
    """Ask for access to a dataset for a purpose; the policy is checked now."""
    agreement = await services.agreements.request(caller, body, now=datetime.now(UTC))
    return await _audited(request, agreement, "request")


@router.get("", response_model=list[Agreement])
async def list_agreements(caller: Caller, services: ServicesDep) -> list[Agreement]:
    """Agreements the caller is party to (as consumer or as the dataset's provider)."""
    return await services.agreements.visible_to(caller)


@router.get("/{agreement_id}", response_model=Agreement)
async def get_agreement(agreement_id: str, caller: Caller, services: ServicesDep) -> Agreement:
    """One agreement the caller is party to."""
    return await services.agreements.get_for(agreement_id, caller)


@router.post("/{agreement_id}/approve", response_model=Agreement)
async def approve(
    request: Request, agreement_id: str, caller: ProviderCaller, services: ServicesDep
) -> Agreement:
    """The provider grants a requested agreement."""
    agreement = await services.agreements.approve(agreement_id, caller, now=datetime.now(UTC))
    return await _audited(request, agreement, "approve")


@router.post("/{agreement_id}/reject", response_model=Agreement)
async def reject(
    request: Request,
    agreement_id: str,
    body: AgreementDecision,
    caller: ProviderCaller,
    services: ServicesDep,
) -> Agreement:
    """The provider refuses a request, with a reason."""
    return await _end(
        request, services.agreements.reject, agreement_id, caller, body, action="reject"
    )


@router.post("/{agreement_id}/revoke", response_model=Agreement)
async def revoke(
    request: Request,
    agreement_id: str,
    body: AgreementDecision,
    caller: ProviderCaller,
    services: ServicesDep,
) -> Agreement:
    """The provider ends an agreement, with a reason."""
    return await _end(
        request, services.agreements.revoke, agreement_id, caller, body, action="revoke"
    )


@router.post("/{agreement_id}/terminate", response_model=Agreement)
async def terminate(
    request: Request,
    agreement_id: str,
    body: AgreementDecision,
    caller: ConsumerCaller,
    services: ServicesDep,
) -> Agreement:
    """The consumer ends its own agreement."""
    transition = services.agreements.terminate
    return await _end(request, transition, agreement_id, caller, body, action="terminate")


Transition = Callable[..., Awaitable[Agreement]]


async def _end(
    request: Request,
    transition: Transition,
    agreement_id: str,
    caller: AuthenticatedParticipant,
    body: AgreementDecision,
    *,
    action: str,
) -> Agreement:
    """Run a transition that carries a reason, and audit it."""
    agreement = await transition(agreement_id, caller, body.reason, now=datetime.now(UTC))
    return await _audited(request, agreement, action)
