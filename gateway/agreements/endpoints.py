"""Agreements API: consumers request and terminate, providers approve, reject, revoke.

Each transition commits with its ``agreement-changed`` entry in the agreements service; the
actor here is the caller (participant, certificate, address).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response, status

from gateway.agreements.schemas import Agreement, AgreementDecision, AgreementRequest
from gateway.dsp.afterwards import after_answer
from gateway.http import audit_events
from gateway.http.deps import Caller, ServicesDep, require_role
from gateway.participants.service import AuthenticatedParticipant
from gateway.services import Services

router = APIRouter(prefix="/v1/agreements", tags=["agreements"])
ConsumerCaller = Annotated[AuthenticatedParticipant, Depends(require_role("consumer"))]
ProviderCaller = Annotated[AuthenticatedParticipant, Depends(require_role("provider"))]


@router.post(
    "",
    response_model=Agreement,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": Agreement, "description": "the live agreement you already have"}},
)
async def request_agreement(
    request: Request,
    response: Response,
    body: AgreementRequest,
    caller: ConsumerCaller,
    services: ServicesDep,
) -> Agreement:
    """Ask for access to a dataset for a purpose; the policy is checked now.

    A consumer has one live agreement per dataset: while one is requested or active, asking
    again answers with it (200) and changes nothing.
    """
    asked = await services.agreements.request(
        caller, body, now=datetime.now(UTC), actor=audit_events.actor(request)
    )
    if asked.existing:
        response.status_code = status.HTTP_200_OK
    return asked.agreement


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
    request: Request,
    agreement_id: str,
    caller: ProviderCaller,
    services: ServicesDep,
    background: BackgroundTasks,
) -> Agreement:
    """The provider grants a requested agreement (a DSP negotiation waiting on it agrees)."""
    agreement = await services.agreements.approve(
        agreement_id, caller, now=datetime.now(UTC), actor=audit_events.actor(request)
    )
    _tell_dsp(services, background, agreement)
    return agreement


def _tell_dsp(services: Services, background: BackgroundTasks, agreement: Agreement) -> None:
    """After the answer: DSP negotiations waiting on the agreement follow the decision."""
    if services.dsp is not None:
        background.add_task(after_answer, services.dsp.agreement_decided, agreement)


@router.post("/{agreement_id}/reject", response_model=Agreement)
async def reject(
    request: Request,
    agreement_id: str,
    body: AgreementDecision,
    caller: ProviderCaller,
    services: ServicesDep,
    *,
    background: BackgroundTasks,
) -> Agreement:
    """The provider refuses a request, with a reason (a DSP negotiation on it terminates)."""
    agreement = await _end(request, services.agreements.reject, agreement_id, caller, body)
    _tell_dsp(services, background, agreement)
    return agreement


@router.post("/{agreement_id}/revoke", response_model=Agreement)
async def revoke(
    request: Request,
    agreement_id: str,
    body: AgreementDecision,
    caller: ProviderCaller,
    services: ServicesDep,
) -> Agreement:
    """The provider ends an agreement, with a reason."""
    return await _end(request, services.agreements.revoke, agreement_id, caller, body)


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
    return await _end(request, transition, agreement_id, caller, body)


Transition = Callable[..., Awaitable[Agreement]]


async def _end(
    request: Request,
    transition: Transition,
    agreement_id: str,
    caller: AuthenticatedParticipant,
    body: AgreementDecision,
) -> Agreement:
    """Run a transition that carries a reason (its entry commits with it)."""
    actor = audit_events.actor(request)
    return await transition(agreement_id, caller, body.reason, now=datetime.now(UTC), actor=actor)
