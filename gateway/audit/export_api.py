"""``GET /v1/audit/export``: a range of the log as a download, for officers (thin).

JSON lines, OCSF and syslog as ``sluis audit export`` writes them
(:mod:`gateway.audit.export`), and ``bundle``: a zip that ``sluis audit verify`` checks
offline with only the log's key (:mod:`gateway.audit.bundle`). Every format is streamed a
page at a time, so a range of any length is served in bounded memory.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway.audit import streams
from gateway.audit.endpoints import AuditDep, OfficerCaller
from gateway.audit.streams import AnyFormat
from gateway.errors import Conflict, NotFound

router = APIRouter(prefix="/v1/audit", tags=["audit"])
MAX_INDEX = 2**63 - 1
#: file name suffix and media type of each format
FORMATS = {
    "jsonl": ("jsonl", "application/jsonl"),
    "ocsf": ("ocsf.jsonl", "application/jsonl"),
    "syslog": ("syslog.log", "text/plain; charset=utf-8"),
    "bundle": ("zip", "application/zip"),
}


class ExportQuery(BaseModel):
    """The range ``[start, end)`` of entry indices (``end`` by default: the whole log)."""

    model_config = ConfigDict(extra="forbid")

    format: AnyFormat = "jsonl"
    start: int = Field(default=0, ge=0, le=MAX_INDEX)
    end: int | None = Field(default=None, ge=0, le=MAX_INDEX)


@router.get("/export", response_class=StreamingResponse)
async def export(
    _: OfficerCaller, audit: AuditDep, query: Annotated[ExportQuery, Query()]
) -> StreamingResponse:
    """Entries ``[start, end)`` as a download; a bundle runs on to the first signed
    checkpoint at or after ``end``, so that it verifies."""
    try:
        found = await streams.open_export(
            audit, query.format, query.start, query.end, now=datetime.now(UTC)
        )
    except streams.RangeError as exc:  # well formed: not in this log (404), not signed yet (409)
        problem = Conflict if exc.code == "range-not-signed" else NotFound
        raise problem(exc.code, exc.detail) from exc
    suffix, media_type = FORMATS[query.format]
    name = f"sluis-audit-{found.start}-{found.end}.{suffix}"
    headers = {
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(found.body, media_type=media_type, headers=headers)
