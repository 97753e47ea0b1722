"""Queries: ``POST /v1/datasets/{id}/query`` (JSON) and ``GET /v1/datasets/{id}/data``.

Both need the client certificate and a token bound to it with the scope ``dataset:<id>``.
The response streams the rows and carries the audit receipt in its headers:
``Sluis-Audit-Index`` (the decision entry), ``Sluis-Audit-Tree-Size`` and
``Sluis-Audit-Checkpoint`` (the signed checkpoint that includes it, base64).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from connectors import Format
from gateway.errors import BadRequest
from gateway.exchange.schemas import FormatName, QueryIn, parse_where
from gateway.exchange.service import Outcome
from gateway.http.bearer import TokenCallerDep
from gateway.http.deps import ServicesDep

router = APIRouter(prefix="/v1/datasets", tags=["exchange"])


def _stream(outcome: Outcome) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        if outcome.first:
            yield outcome.first
        async for chunk in outcome.rest:
            yield chunk

    headers = {
        "Sluis-Audit-Index": str(outcome.receipt.index),
        "Sluis-Audit-Tree-Size": str(outcome.receipt.tree_size),
        "Sluis-Audit-Checkpoint": base64.b64encode(outcome.checkpoint).decode(),
        "Cache-Control": "no-store",
    }
    return StreamingResponse(body(), media_type=outcome.media_type, headers=headers)


@router.post("/{dataset_id}/query")
async def query(
    request: Request, dataset_id: str, body: QueryIn, caller: TokenCallerDep, services: ServicesDep
) -> StreamingResponse:
    """Run a typed query (columns, predicates, aggregates, order, limit) under the policy."""
    source = request.client.host if request.client else None
    outcome = await services.exchange.query(
        caller, dataset_id, body.to_query(), Format(body.format), source=source
    )
    return _stream(outcome)


@router.get("/{dataset_id}/data")
async def data(
    request: Request,
    dataset_id: str,
    *,
    caller: TokenCallerDep,
    services: ServicesDep,
    columns: Annotated[str, Query(max_length=4096)] = "",
    where: Annotated[list[str] | None, Query(max_length=64)] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000_000)] = None,
    format: Annotated[FormatName, Query()] = "jsonl",
) -> StreamingResponse:
    """The same as ``query`` from URL parameters: ``columns=a,b&where=col,op,value&format=csv``."""
    try:
        body = QueryIn(
            columns=[c for c in columns.split(",") if c],
            where=parse_where(where or []),
            limit=limit,
            format=format,
        )
    except (ValueError, ValidationError) as exc:
        raise BadRequest("bad-query", str(exc).splitlines()[0]) from exc
    source = request.client.host if request.client else None
    outcome = await services.exchange.query(
        caller, dataset_id, body.to_query(), Format(body.format), source=source
    )
    return _stream(outcome)
