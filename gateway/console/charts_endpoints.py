"""``/console/charts/*.svg`` and ``/v1/officer/agreements/{id}/history`` (thin; officers only).

The charts are SVG drawn here (:mod:`gateway.console.charts`), served under the console's
strict CSP; the page shows them as images. A chart's period is ``since`` / ``until``
(RFC 3339, as ``GET /v1/audit/counts``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from gateway.audit.endpoints import AuditDep, CountQuery
from gateway.console import repository as repo
from gateway.console import service
from gateway.console.endpoints import HEADERS
from gateway.console.schemas import AgreementEvent
from gateway.errors import NotFound
from gateway.http.deps import NoStore, ServicesDep, require_role
from gateway.participants.service import AuthenticatedParticipant

charts_router = APIRouter(prefix="/console/charts", tags=["console"], include_in_schema=False)
officer_router = APIRouter(prefix="/v1/officer", tags=["officer"], dependencies=[NoStore])
OfficerCaller = Annotated[AuthenticatedParticipant, Depends(require_role("officer"))]
Period = Annotated[CountQuery, Query()]
SVG_MEDIA_TYPE = "image/svg+xml; charset=utf-8"
CHARTS = ("requests", "denials", "consumers", "limits")


@charts_router.get("/{name}.svg")
async def chart(
    _: OfficerCaller, name: str, period: Period, audit: AuditDep, services: ServicesDep
) -> Response:
    """One of the overview's charts over ``[since, until)``: requests per dataset over time,
    denials by reason, top consumers per dataset, agreements closest to their use limits."""
    drawn = await service.draw(
        name,
        repo.Window(period.since, period.until),
        audit=audit,
        agreements=services.agreements,
        datasets=services.datasets,
        now=datetime.now(UTC),
    )
    if drawn is None:
        raise NotFound("not-found", f"no such chart; charts: {', '.join(CHARTS)}")
    return Response(drawn.encode(), media_type=SVG_MEDIA_TYPE, headers=HEADERS)


@officer_router.get("/agreements/{agreement_id}/history", response_model=list[AgreementEvent])
async def agreement_history(
    _: OfficerCaller, agreement_id: str, services: ServicesDep
) -> list[AgreementEvent]:
    """The agreement's own state changes, oldest first, with their reasons and log indices."""
    return await service.history(services.db, agreement_id)


router = APIRouter()
router.include_router(charts_router)
router.include_router(officer_router)
