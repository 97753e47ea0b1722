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

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from connectors import Format
from gateway.audit.records import Receipt
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

    headers = _receipt_headers(outcome.receipt, outcome.checkpoint)
    return StreamingResponse(body(), media_type=outcome.media_type, headers=headers)


def _receipt_headers(receipt: Receipt, checkpoint: bytes) -> dict[str, str]:
    return {
        "Sluis-Audit-Index": str(receipt.index),
        "Sluis-Audit-Tree-Size": str(receipt.tree_size),
        "Sluis-Audit-Checkpoint": base64.b64encode(checkpoint).decode(),
        "Cache-Control": "no-store",
    }


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


@router.api_route(
    "/{dataset_id}/api/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"]
)
async def api(
    request: Request, dataset_id: str, path: str, caller: TokenCallerDep, services: ServicesDep
) -> Response:
    """A pass-through API dataset: allowed routes only, JSON fields outside the policy removed."""
    source = request.client.host if request.client else None
    body = await request.body() if request.method in {"POST", "PUT", "PATCH"} else None
    proxied, receipt, checkpoint = await services.exchange.call_api(
        caller, dataset_id, request.method, path, body, source=source
    )
    headers = _receipt_headers(receipt, checkpoint)
    return Response(proxied.body, status_code=proxied.status, media_type=proxied.content_type,
                    headers=headers)  # fmt: skip
