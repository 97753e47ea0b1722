"""``GET /v1/audit/export``: a range of the log as a download, for officers (thin).

JSON lines, OCSF and syslog as ``sluis audit export`` writes them
(:mod:`gateway.audit.export`), and ``bundle``: a zip that ``sluis audit verify`` checks
offline with only the log's key (:mod:`gateway.audit.bundle`). Every format is streamed a
page at a time, so a range of any length is served in bounded memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway.audit.bundle import (
    CHECKPOINTS_FILE,
    ENTRIES_FILE,
    START_FILE,
    ZipStream,
    start_json,
)
from gateway.audit.endpoints import AuditDep, OfficerCaller
from gateway.audit.export import ExportFormat, render
from gateway.audit.handover import find_rotations
from gateway.audit.log import AuditReader
from gateway.audit.records import SignedCheckpoint
from gateway.audit.verify import ExportedCheckpoint, checkpoint_line, entry_line
from gateway.errors import BadRequest

router = APIRouter(prefix="/v1/audit", tags=["audit"])
PAGE = 1000
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

    format: ExportFormat | Literal["bundle"] = "jsonl"
    start: int = Field(default=0, ge=0, le=MAX_INDEX)
    end: int | None = Field(default=None, ge=0, le=MAX_INDEX)


@router.get("/export", response_class=StreamingResponse)
async def export(
    _: OfficerCaller, audit: AuditDep, query: Annotated[ExportQuery, Query()]
) -> StreamingResponse:
    """Entries ``[start, end)`` as a download; a bundle runs on to the first signed
    checkpoint at or after ``end``, so that it verifies."""
    size = await audit.size()
    end = size if query.end is None else query.end
    if not query.start <= end <= size:
        raise BadRequest(
            "range-out-of-range", f"the log holds {size} entries: give 0 <= start <= end <= {size}"
        )
    if query.format == "bundle":
        signed = await audit.checkpoint_at_least(max(end, 1))
        if signed is None:
            raise BadRequest(
                "range-not-signed",
                f"no signed checkpoint covers entry {end - 1} yet: try again in a few seconds",
            )
        end = signed.size
        frontier = await audit.frontier_hashes(query.start)
        body = _bundle(audit, query.start, signed, frontier, datetime.now(UTC))
    else:
        body = _records(audit, query.format, query.start, end)
    suffix, media_type = FORMATS[query.format]
    name = f"sluis-audit-{query.start}-{end}.{suffix}"
    headers = {
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(body, media_type=media_type, headers=headers)


async def _records(
    audit: AuditReader, fmt: ExportFormat, start: int, end: int
) -> AsyncIterator[bytes]:
    for begin in range(start, end, PAGE):
        records = await audit.entry_range(begin, min(begin + PAGE, end))
        yield "".join(render(fmt, r.index, r.data) + "\n" for r in records).encode()


async def _bundle(
    audit: AuditReader,
    start: int,
    signed: SignedCheckpoint,
    frontier: list[bytes],
    now: datetime,
) -> AsyncIterator[bytes]:
    """entries.jsonl, then the checkpoints (the range's key hand-overs are known by then)."""
    stream = ZipStream(now)
    handed_over: list[int] = []
    with stream.member(ENTRIES_FILE) as out:
        for begin in range(start, signed.size, PAGE):
            records = await audit.entry_range(begin, min(begin + PAGE, signed.size))
            handed_over += [r.index for r in find_rotations((r.index, r.data) for r in records)]
            out.write("".join(entry_line(r.index, r.data) + "\n" for r in records).encode())
            yield stream.drain()
    chain = await _checkpoints(audit, signed, handed_over)
    with stream.member(CHECKPOINTS_FILE) as out:
        for cp in chain:
            out.write((checkpoint_line(cp.size, cp.note, cp.consistency) + "\n").encode())
    if start:
        with stream.member(START_FILE) as out:
            out.write(start_json(start, frontier))
    yield stream.drain()
    yield stream.close()


async def _checkpoints(
    audit: AuditReader, signed: SignedCheckpoint, rotations: list[int]
) -> list[ExportedCheckpoint]:
    """The range's checkpoint and each hand-over checkpoint in it, each with the
    consistency proof from the one before (as ``sluis audit export --gateway`` takes them)."""
    notes = {signed.size: signed.note}
    for index in rotations:
        handover = await audit.checkpoint_at_least(index + 1)
        if handover is not None and handover.size <= signed.size:
            notes.setdefault(handover.size, handover.note)
    chain: list[ExportedCheckpoint] = []
    previous = 0
    for size in sorted(notes):
        proof: tuple[bytes, ...] = ()
        if previous:
            proof = (await audit.consistency_proof(previous, size)).hashes
        chain.append(ExportedCheckpoint(size, notes[size], proof))
        previous = size
    return chain
