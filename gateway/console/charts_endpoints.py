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
from gateway.audit.repository import CountFilter
from gateway.audit.schemas import ActivityOut
from gateway.console import repository as repo
from gateway.console import service
from gateway.console.api import MAX_AGREEMENTS
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


def _svg(body: str) -> Response:
    return Response(body.encode(), media_type=SVG_MEDIA_TYPE, headers=HEADERS)


@charts_router.get("/{name}.svg")
async def chart(
    _: OfficerCaller, name: str, period: Period, audit: AuditDep, services: ServicesDep
) -> Response:
    """One of the overview's charts over ``[since, until)``: requests per dataset over time,
    denials by reason, top consumers per dataset, agreements closest to their use limits."""
    window = repo.Window(period.since, period.until)
    if name == "requests":
        bucket = service.bucket_for(window, datetime.now(UTC))
        async with audit.db.session() as session:
            rows = await repo.timeline(session, window, bucket)
        timeline = service.timeline_of(rows, window, bucket, datetime.now(UTC))
        return _svg(service.timeline_chart(timeline, bucket))
    if name == "denials":
        async with audit.db.session() as session:
            found = await repo.denials(session, window, service.MAX_DENIALS)
        truncated = len(found) == service.MAX_DENIALS
        return _svg(service.denials_chart(service.denial_reasons(found), truncated))
    if name == "consumers":
        rows_ = await audit.activity(CountFilter(since=window.since, until=window.until))
        return _svg(service.consumers_chart(ActivityOut.of(rows_, top=5)))
    if name == "limits":
        agreements = await services.agreements.newest(MAX_AGREEMENTS)
        return _svg(service.limits_chart(await service.with_limits(services.datasets, agreements)))
    raise NotFound("not-found", f"no chart {name!r}; charts: {', '.join(CHARTS)}")


@officer_router.get("/agreements/{agreement_id}/history", response_model=list[AgreementEvent])
async def agreement_history(
    _: OfficerCaller, agreement_id: str, services: ServicesDep
) -> list[AgreementEvent]:
    """The agreement's own state changes, oldest first, with their reasons and log indices."""
    return await service.history(services.db, agreement_id)


router = APIRouter()
router.include_router(charts_router)
router.include_router(officer_router)
