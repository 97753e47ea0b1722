"""Audit API: checkpoints and proofs for any participant, entries for officers (thin).

Hashes in proof bodies are standard base64 with padding, as in checkpoints. The
checkpoint is served as the C2SP signed note itself (``text/plain``), byte for byte.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from gateway.audit.cursor import MAX_CURSOR, CursorError, decode_cursor, encode_cursor
from gateway.audit.entry import EventType
from gateway.audit.errors import ProofError
from gateway.audit.log import AuditLog
from gateway.audit.repository import CountFilter, EntryFilter, SortColumn
from gateway.audit.schemas import (
    ActivityOut,
    ConsistencyOut,
    CountsOut,
    EntryOut,
    EntryPage,
    InclusionOut,
)
from gateway.errors import BadRequest, NotFound, ServiceUnavailable
from gateway.http.deps import Caller, NoStore, require_role
from gateway.participants.service import AuthenticatedParticipant

router = APIRouter(prefix="/v1/audit", tags=["audit"])
NOTE_MEDIA_TYPE = "text/plain; charset=utf-8"
MAX_PAGE = 1000


async def get_audit(request: Request) -> AuditLog:
    """The running gateway's audit log; 503 (fail closed) when there is none."""
    audit = getattr(request.app.state.services, "audit", None)
    if not isinstance(audit, AuditLog):
        raise ServiceUnavailable("audit-unavailable", "the audit log is not running")
    return audit


AuditDep = Annotated[AuditLog, Depends(get_audit)]
OfficerCaller = Annotated[AuthenticatedParticipant, Depends(require_role("officer"))]
Size = Annotated[int, Query(ge=0, le=2**63 - 1)]
TreeSize = Annotated[int, Query(ge=1, le=2**63 - 1)]  # a proof needs a tree of one entry at least
#: Asked beyond the log (a tree size it has not reached, an index not in the tree): the
#: request is well formed, the thing is not there (yet), so 404 with the proof's own code.
NOT_THERE = frozenset({"size-out-of-range", "index-out-of-range"})
Index = Annotated[int, Path(ge=0, le=2**63 - 2)]


@router.get("/checkpoint", response_class=Response)
async def checkpoint(_: Caller, audit: AuditDep, at_least: Size | None = None) -> Response:
    """The newest signed checkpoint (C2SP tlog-checkpoint as a signed note).

    With ``at_least``: the smallest stored one of at least that many entries (a key
    rotation's hand-over checkpoint is the first of at least its entry's index + 1).
    """
    if at_least is None:
        signed = await audit.current_checkpoint()
    else:
        found = await audit.checkpoint_at_least(at_least)
        if found is None:
            raise NotFound("size-out-of-range", f"no checkpoint of {at_least} entries yet")
        signed = found
    return Response(signed.note, media_type=NOTE_MEDIA_TYPE, headers={"Cache-Control": "no-store"})


#: An RFC 3339 date-time with its zone (``2026-12-02T10:00:00Z``, ``...+01:00``). Pydantic
#: would also read a bare number as Unix time (``until=0.5``); the API documents a time zone.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})")


def _rfc3339(value: object) -> object:
    if isinstance(value, str) and not _RFC3339.fullmatch(value):
        raise ValueError("a date-time with a time zone, e.g. 2026-12-02T10:00:00Z")
    return value


Rfc3339 = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]


class EntryQuery(BaseModel):
    """Filters of ``GET /v1/audit/entries``: time window ``[since, until)`` and more."""

    model_config = ConfigDict(extra="forbid")

    since: Rfc3339 | None = None
    until: Rfc3339 | None = None
    participant: str | None = Field(default=None, max_length=512)
    dataset: str | None = Field(default=None, max_length=512)
    decision: Literal["permit", "deny"] | None = None
    event: EventType | None = None
    after: int | None = Field(default=None, ge=-1, le=2**63 - 1,
                              description="Only indices above this.")  # fmt: skip
    before: int | None = Field(default=None, ge=0, le=2**63 - 1,
                               description="Only indices below this.")  # fmt: skip
    order: Literal["asc", "desc"] = "asc"
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)
    # appended (issue 15): links between entries, and sorting by a column
    agreement: str | None = Field(default=None, max_length=256, description="target agreement:<id>")
    target: str | None = Field(default=None, max_length=512)
    trace_id: str | None = Field(default=None, max_length=512)
    request_id: str | None = Field(default=None, max_length=512)
    sort: SortColumn = "index"
    cursor: str | None = Field(default=None, max_length=MAX_CURSOR)

    def filter(self) -> EntryFilter:
        """The repository's filter; BadRequest for a cursor or target that cannot hold."""
        target = self.target
        if self.agreement is not None:
            if target is not None and target != f"agreement:{self.agreement}":
                raise BadRequest("conflicting-filters", "give agreement or target, not both")
            target = f"agreement:{self.agreement}"
        cursor = None
        if self.cursor is not None:
            if self.sort == "index":
                raise BadRequest("bad-cursor", "sorted by index, page with after or before")
            try:
                cursor = decode_cursor(self.cursor, self.sort, self.order)
            except CursorError as exc:
                raise BadRequest(exc.code, exc.detail) from exc
        fields = self.model_dump(exclude={"order", "agreement", "target", "cursor"})
        return EntryFilter(
            **fields, target=target, cursor=cursor, newest_first=self.order == "desc"
        )


class CountQuery(BaseModel):
    """The time window ``[since, until)`` of ``GET /v1/audit/counts``."""

    model_config = ConfigDict(extra="forbid")

    since: Rfc3339 | None = None
    until: Rfc3339 | None = None


@router.get("/entries", response_model=EntryPage, dependencies=[NoStore])
async def entries(
    _: OfficerCaller, audit: AuditDep, query: Annotated[EntryQuery, Query()]
) -> EntryPage:
    """Entries by index, filtered; page on by passing ``next_after`` as ``after``.

    With ``order=desc``: newest first, paged on by passing ``next_before`` as ``before``.
    With ``sort`` a column: by that column then index, paged on by passing ``next_cursor``
    as ``cursor`` (with the same sort, order and filters).
    """
    records, last_value = await audit.entry_page(query.filter())
    last = records[-1].index if len(records) == query.limit else None
    entries = [EntryOut.of(r) for r in records]
    if query.sort != "index":
        cursor = None
        if last is not None:
            cursor = encode_cursor(query.sort, query.order, last_value, last)
        return EntryPage(entries=entries, next_after=None, next_cursor=cursor)
    if query.order == "desc":
        return EntryPage(entries=entries, next_after=None, next_before=last)
    return EntryPage(entries=entries, next_after=last)


@router.get("/entries/{index}", response_class=Response)
async def entry(_: OfficerCaller, audit: AuditDep, index: Index) -> Response:
    """One entry's stored canonical bytes (RFC 8785), byte for byte: what its leaf hashes.

    A verifier hashes these, not a re-serialisation of the parsed entry.
    """
    found = await audit.entry_range(index, index + 1)
    if not found:
        raise NotFound("entry-not-found", f"no entry {index} in the log")
    return Response(
        found[0].data, media_type="application/json", headers={"Cache-Control": "no-store"}
    )


@router.get("/counts", response_model=CountsOut, dependencies=[NoStore])
async def counts(
    _: OfficerCaller, audit: AuditDep, query: Annotated[CountQuery, Query()]
) -> CountsOut:
    """Entries in ``[since, until)`` by event type and by decision, counted in SQL."""
    rows = await audit.counts(CountFilter(**query.model_dump()))
    return CountsOut.of(rows)


@router.get("/activity", response_model=ActivityOut, dependencies=[NoStore])
async def activity(
    _: OfficerCaller, audit: AuditDep, query: Annotated[CountQuery, Query()]
) -> ActivityOut:
    """Access decisions per dataset in ``[since, until)``, with the top 5 consumers of each."""
    return ActivityOut.of(await audit.activity(CountFilter(**query.model_dump())), top=5)


@router.get("/proofs/inclusion", response_model=InclusionOut)
async def inclusion(_: Caller, audit: AuditDep, index: Size, tree_size: TreeSize) -> InclusionOut:
    """The audit path of entry ``index`` in the tree of ``tree_size`` entries (404 for an
    index not in that tree or a tree the log has not reached)."""
    try:
        return InclusionOut.of(await audit.inclusion_proof(index, tree_size))
    except ProofError as exc:
        raise _refusal(exc) from exc


@router.get("/proofs/consistency", response_model=ConsistencyOut)
async def consistency(
    _: Caller, audit: AuditDep, size1: TreeSize, size2: TreeSize
) -> ConsistencyOut:
    """The proof that the tree of ``size2`` entries extends the one of ``size1`` (404 when
    ``size1`` exceeds ``size2`` or the log has not reached ``size2``)."""
    try:
        return ConsistencyOut.of(await audit.consistency_proof(size1, size2))
    except ProofError as exc:
        raise _refusal(exc) from exc


def _refusal(exc: ProofError) -> BadRequest | NotFound:
    if exc.code in NOT_THERE:
        return NotFound(exc.code, exc.detail)
    return BadRequest(exc.code, exc.detail)
