"""``/v1/officer/*``: what the console's agreements and participants page reads (thin).

Officers only. Read-only views of the registry, the agreements and the CRL, which the
audit API does not carry; how each came to be is in the log (``agreement-changed`` and
``admin-change`` entries), which the console links to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from certs import CertificateRejected
from gateway.console.schemas import OfficerAgreement
from gateway.console.service import with_limits
from gateway.errors import ServiceUnavailable
from gateway.http.deps import NoStore, ServicesDep, require_role
from gateway.participants.schemas import Participant
from gateway.participants.service import AuthenticatedParticipant

router = APIRouter(prefix="/v1/officer", tags=["officer"], dependencies=[NoStore])
OfficerCaller = Annotated[AuthenticatedParticipant, Depends(require_role("officer"))]
MAX_AGREEMENTS = 1000


class Revoked(BaseModel):
    """One revoked certificate, as the gateway's CRL lists it."""

    serial: str  # hex, as `sluis certs revoke` takes it
    revoked_at: datetime
    issuer: str


@router.get("/agreements", response_model=list[OfficerAgreement])
async def agreements(
    _: OfficerCaller,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=MAX_AGREEMENTS)] = 200,
) -> list[OfficerAgreement]:
    """Every consumer's agreements, most recently changed first, with the uses spent and
    the uses left under the use limit their policy version states."""
    return await with_limits(services.datasets, await services.agreements.newest(limit))


@router.get("/participants", response_model=list[Participant])
async def participants(_: OfficerCaller, services: ServicesDep) -> list[Participant]:
    """Every registered participant: roles, groups, status (suspended or active)."""
    return await services.participants.list()


@router.get("/revocations", response_model=list[Revoked])
async def revocations(_: OfficerCaller, services: ServicesDep) -> list[Revoked]:
    """The certificates the gateway's CRL revokes; 503 when the CRL cannot be read."""
    try:
        crls = services.trust.crls()
    except CertificateRejected as exc:  # not the caller's certificate: the gateway's CRL
        raise ServiceUnavailable("crl-unavailable", exc.detail) from exc
    return [
        Revoked(
            serial=format(entry.serial_number, "x"),
            revoked_at=entry.revocation_date_utc,
            issuer=crl.issuer.rfc4514_string(),
        )
        for crl in crls
        for entry in crl
    ]
