"""Queries: ``POST /v1/datasets/{id}/query`` (JSON) and ``GET /v1/datasets/{id}/data``.

Both need the client certificate and a token bound to it with the scope ``dataset:<id>``.
The response streams the rows and carries the audit receipt in its headers:
``Sluis-Audit-Index`` (the decision entry), ``Sluis-Audit-Tree-Size`` and
``Sluis-Audit-Checkpoint`` (the signed checkpoint that includes it, base64). Under a
privacy budget also ``Sluis-Privacy-Epsilon`` (what the query spent),
``Sluis-Privacy-Budget-Remaining`` (``epsilon/period``) and ``Sluis-Privacy-Noise-Scale``
(the Laplace scale of each output column); ``GET /v1/datasets/{id}/privacy-budget`` shows
the budget without spending any.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from connectors import Chunk, Format
from gateway.audit.records import Receipt
from gateway.errors import BadRequest
from gateway.exchange.schemas import WHERE_SCHEMA, DataParams, FormatName, QueryIn, parse_where
from gateway.exchange.service import Outcome
from gateway.http.bearer import TokenCallerDep
from gateway.http.deps import ServicesDep
from gateway.http.problems import problem
from gateway.oauth.service import TokenCaller
from gateway.services import Services

router = APIRouter(prefix="/v1/datasets", tags=["exchange"])


class _Streamed(StreamingResponse):
    """A streamed outcome that ends its exchange however the response ends: sent, failed,
    or the consumer gone (even before the first byte), so the lease is released and the
    completion entry written.

    Under ASGI < 2.4 Starlette listens for the consumer's disconnect in a task of its own
    per response, to stop a stream nobody reads. The start and the first chunk are sent
    first, without it, and the next chunk pulled: an answer that ended there (a small one,
    in one piece) is finished with no such task, as there is nothing left to stop; only a
    longer one is streamed on with the listener. (A task group per response cost ~0.1 ms
    of CPU; the small audited query is one piece in CSV or JSONL.)
    """

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.head_sent = False
        headers = _receipt_headers(outcome.receipt, outcome.checkpoint) | outcome.headers
        super().__init__(
            _chain(outcome.first, outcome.rest), media_type=outcome.media_type, headers=headers
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            spec = scope.get("asgi", {}).get("spec_version", "2.0")
            if tuple(map(int, spec.split("."))) < (2, 4) and await self._send_head(send):
                return
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):  # also when the request task is cancelled
                await self.outcome.rest.aclose()

    async def _send_head(self, send: Send) -> bool:
        """Send the start, pull the chunk after the first, then send the first: True when
        that ended the answer (then sent with its end, one write), else the rest is left to
        ``stream_response``."""
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})  # fmt: skip
        self.head_sent = True
        first = self.outcome.first
        following = await anext(self.outcome.rest, None)
        if following is None:  # the whole answer: its one chunk and the end in one write
            await send({"type": "http.response.body", "body": first, "more_body": False})
            return True
        if first:
            await send({"type": "http.response.body", "body": first, "more_body": True})
        self.body_iterator = _chain(following, self.outcome.rest)
        return False

    async def stream_response(self, send: Send) -> None:
        """Starlette's, without the start when ``_send_head`` sent it."""
        if not self.head_sent:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})  # fmt: skip
        async for chunk in self.body_iterator:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _chain(first: Chunk, rest: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
    """``first`` (unless empty), then ``rest``."""
    if first:
        yield first
    async for chunk in rest:
        yield chunk


def _stream(outcome: Outcome) -> StreamingResponse:
    return _Streamed(outcome)


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


@router.get("/{dataset_id}/privacy-budget")
async def privacy_budget(
    request: Request, dataset_id: str, caller: TokenCallerDep, services: ServicesDep
) -> dict[str, object]:
    """The caller's privacy budget for the dataset: epsilon per period, spent, remaining."""
    source = request.client.host if request.client else None
    budget = await services.exchange.privacy_budget(caller, dataset_id, source=source)
    return budget.to_json()


@router.get("/{dataset_id}/data")
async def data(
    request: Request,
    dataset_id: str,
    *,
    caller: TokenCallerDep,
    services: ServicesDep,
    columns: Annotated[str, Query(max_length=4096)] = "",
    where: Annotated[
        list[str] | None, Query(max_length=64, json_schema_extra={"items": WHERE_SCHEMA})
    ] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000_000)] = None,
    format: Annotated[FormatName, Query()] = "jsonl",
) -> StreamingResponse:
    """The same as ``query`` from URL parameters: ``columns=a,b&where=col,op,value&format=csv``."""
    params = DataParams(columns=columns, where=where, limit=limit, format=format)
    return await data_response(request, dataset_id, caller, services, params)


async def data_response(
    request: Request, dataset_id: str, caller: TokenCaller, services: Services, params: DataParams
) -> StreamingResponse:
    """``data``'s answer, once its dependencies are resolved (also by ``fast_data``)."""
    try:
        body = QueryIn(
            columns=[c for c in params.columns.split(",") if c],
            where=parse_where(params.where or []),
            limit=params.limit,
            format=params.format,
        )
    except (ValueError, ValidationError) as exc:
        raise BadRequest("bad-query", str(exc).splitlines()[0]) from exc
    source = request.client.host if request.client else None
    outcome = await services.exchange.query(
        caller, dataset_id, body.to_query(), Format(body.format), source=source
    )
    return _stream(outcome)


async def api(
    request: Request, dataset_id: str, path: str, caller: TokenCallerDep, services: ServicesDep
) -> Response:
    """A pass-through API dataset: allowed routes only, JSON fields outside the policy removed."""
    source = request.client.host if request.client else None
    body = await request.body() if request.method in {"POST", "PUT", "PATCH"} else None
    proxied, receipt, checkpoint = await services.exchange.call_api(
        caller, dataset_id, request.method, path, body, source=source,
        content_type=request.headers.get("content-type") if body is not None else None,
    )  # fmt: skip
    headers = _receipt_headers(receipt, checkpoint)
    if proxied.refused:  # the upstream's 4xx: its status, with a problem of our own
        return problem(
            proxied.status, "upstream-refused", "The upstream refused the call",
            f"the upstream answered {proxied.status} to this call",
            instance=request.url.path, headers=headers,
        )  # fmt: skip
    return Response(proxied.body, status_code=proxied.status, media_type=proxied.content_type,
                    headers=headers)  # fmt: skip


for _method in ("GET", "POST", "PUT", "PATCH", "DELETE"):  # one operation id per method
    router.add_api_route(
        "/{dataset_id}/api/{path:path}",
        api,
        methods=[_method],
        operation_id=f"passthrough_{_method.lower()}",
        name=f"passthrough_{_method.lower()}",
    )
