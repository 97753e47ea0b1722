"""Participant HTTP endpoints: /v1/whoami and the operator's admin API."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, status

from gateway.admin.service import admin_changes
from gateway.http import audit_events
from gateway.http.deps import Caller, OperatorCaller, ServicesDep
from gateway.participants.schemas import (
    CertificateInfo,
    Participant,
    ParticipantCreate,
    ParticipantUpdate,
    WhoAmI,
)

router = APIRouter()


@router.get("/v1/whoami", response_model=WhoAmI, tags=["participants"])
async def whoami(caller: Caller) -> WhoAmI:
    """The participant resolved from the presented client certificate."""
    cert = caller.certificate
    return WhoAmI(
        participant=caller.participant,
        effective_roles=sorted(caller.effective_roles),
        certificate=CertificateInfo(
            subject=cert.subject,
            issuer=cert.issuer,
            serial_number=format(cert.serial_number, "x"),
            thumbprint_sha256=cert.thumbprint_sha256,
            not_after=cert.not_after,
            roles=sorted(cert.roles),
            source=caller.source,
        ),
    )


@router.get("/v1/admin/participants", response_model=list[Participant], tags=["admin"])
async def list_participants(_: OperatorCaller, services: ServicesDep) -> list[Participant]:
    """Every registered participant."""
    return await services.participants.list()


@router.post(
    "/v1/admin/participants",
    response_model=Participant,
    status_code=status.HTTP_201_CREATED,
    tags=["admin"],
)
async def create_participant(
    request: Request, body: ParticipantCreate, _: OperatorCaller, services: ServicesDep
) -> Participant:
    """Register an organisation."""
    actor = audit_events.actor(request)
    return await admin_changes(services).create_participant(actor, body, now=datetime.now(UTC))


@router.get("/v1/admin/participants/{participant_id}", response_model=Participant, tags=["admin"])
async def get_participant(
    participant_id: str, _: OperatorCaller, services: ServicesDep
) -> Participant:
    """One participant."""
    return await services.participants.get(participant_id)


@router.patch("/v1/admin/participants/{participant_id}", response_model=Participant, tags=["admin"])
async def update_participant(
    request: Request,
    participant_id: str,
    body: ParticipantUpdate,
    _: OperatorCaller,
    services: ServicesDep,
) -> Participant:
    """Change a participant's name, roles or status (suspend / reactivate)."""
    actor = audit_events.actor(request)
    admin = admin_changes(services)
    return await admin.update_participant(actor, participant_id, body, now=datetime.now(UTC))
