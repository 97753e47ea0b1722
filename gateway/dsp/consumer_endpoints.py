"""DSP consumer side (thin): the local participants' API and the provider's callbacks.

``/v1/dsp/...`` is for this gateway's own participants with the ``consumer`` role: browse a
provider's DSP catalog, negotiate, ask for a transfer, pull. ``/dsp/callback/...`` is the
callback address this gateway gives providers: each message is authenticated by the
provider's client certificate (the negotiation's ``provider_id``), read strictly (400 with
the DSP error, nothing changed) and answered with the process as this side sees it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import Receive, Scope, Send

from gateway.dsp.afterwards import after_answer
from gateway.dsp.consumer import CALLBACK_PATH, ConsumerNegotiations
from gateway.dsp.consumer_transfer import RECEIPT, ConsumerTransfers
from gateway.dsp.messages import context
from gateway.dsp.openapi import request_body
from gateway.errors import ServiceUnavailable
from gateway.http import audit_events
from gateway.http.deps import Caller, ServicesDep, require_role
from gateway.participants.service import AuthenticatedParticipant
from gateway.services import Services
from gateway.storage.models import DspConsumerNegotiationRow, DspConsumerTransferRow

router = APIRouter(tags=["dataspace protocol (consumer)"])
JSON = "application/json"
Consumer = Annotated[AuthenticatedParticipant, Depends(require_role("consumer"))]
_Url = Annotated[str, Field(min_length=8, max_length=2048, pattern=r"^https://")]
_Id = Annotated[str, Field(min_length=1, max_length=256)]


class ProviderIn(BaseModel):
    """A provider's gateway (its base URL; the DSP path comes from its version object)."""

    model_config = ConfigDict(extra="forbid")
    provider: _Url
    dataset: _Id | None = None


class NegotiateIn(BaseModel):
    """Ask ``provider`` for a contract on ``dataset`` (its current Offer)."""

    model_config = ConfigDict(extra="forbid")
    provider: _Url
    dataset: _Id
    provider_participant: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    purpose: (
        Annotated[
            str, Field(min_length=3, max_length=512, pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
        ]
        | None
    ) = None  # one IRI


class TransferIn(BaseModel):
    """An HTTP-pull transfer under a FINALIZED negotiation (its consumerPid)."""

    model_config = ConfigDict(extra="forbid")
    negotiation: _Id


def _services(services: Services) -> tuple[ConsumerNegotiations, ConsumerTransfers]:
    if services.dsp_consumer is None or services.dsp_consumer_transfers is None:
        raise ServiceUnavailable("storage-unavailable", "the DSP service is not running")
    return services.dsp_consumer, services.dsp_consumer_transfers


def negotiation_view(row: DspConsumerNegotiationRow) -> dict[str, Any]:
    """A consumer-side negotiation as the local API shows it."""
    return {
        "consumerPid": row.consumer_pid, "providerPid": row.provider_pid,
        "provider": row.provider_url, "providerParticipant": row.provider_id,
        "dataset": row.dataset_id, "offer": row.offer_id, "state": row.state,
        "agreementId": row.agreement_id, "reason": row.reason,
    }  # fmt: skip


def transfer_view(row: DspConsumerTransferRow) -> dict[str, Any]:
    """A consumer-side transfer as the local API shows it (never the token)."""
    expires = row.token_expires_at
    return {
        "consumerPid": row.consumer_pid, "providerPid": row.provider_pid,
        "negotiation": row.negotiation_pid, "provider": row.provider_url,
        "dataset": row.dataset_id, "agreementId": row.agreement_id, "state": row.state,
        "endpoint": row.endpoint, "tokenExpiresAt": expires.isoformat() if expires else None,
        "reason": row.reason,
    }  # fmt: skip


# -- the local participants' API --------------------------------------------------------


@router.post("/v1/dsp/catalog", operation_id="dsp_consumer_catalog")
async def catalog(body: ProviderIn, _: Consumer, services: ServicesDep) -> JSONResponse:
    """A provider's DSP Catalog, or one Dataset of it (``dataset``)."""
    negotiations, _transfers = _services(services)
    if body.dataset is None:
        found = await negotiations.catalog(body.provider)
    else:
        found = await negotiations.dataset(body.provider, body.dataset)
    return JSONResponse(found, media_type=JSON)


@router.post("/v1/dsp/negotiations", operation_id="dsp_consumer_negotiate", status_code=201)
async def negotiate(
    body: NegotiateIn, request: Request, caller: Consumer, services: ServicesDep
) -> JSONResponse:
    """Negotiate a contract with a provider: 201 with the negotiation (REQUESTED, or further
    when the provider's callbacks came first)."""
    negotiations, _transfers = _services(services)
    row = await negotiations.request(
        caller, body.provider, body.dataset, provider_id=body.provider_participant,
        purpose=body.purpose, actor=audit_events.actor(request),
    )  # fmt: skip
    return JSONResponse(negotiation_view(row), status_code=201, media_type=JSON)


@router.get("/v1/dsp/negotiations/{pid}", operation_id="dsp_consumer_negotiation")
async def negotiation(pid: str, caller: Consumer, services: ServicesDep) -> JSONResponse:
    """One of the caller's consumer-side negotiations."""
    negotiations, _transfers = _services(services)
    return JSONResponse(negotiation_view(await negotiations.get_for(caller, pid)), media_type=JSON)


@router.post("/v1/dsp/transfers", operation_id="dsp_consumer_transfer", status_code=201)
async def transfer(
    body: TransferIn, request: Request, caller: Consumer, services: ServicesDep
) -> JSONResponse:
    """Ask for an HTTP-pull transfer under a FINALIZED negotiation: 201 with the transfer."""
    negotiations, transfers = _services(services)
    row = await transfers.request(caller, negotiations, body.negotiation,
                                  actor=audit_events.actor(request))  # fmt: skip
    return JSONResponse(transfer_view(row), status_code=201, media_type=JSON)


@router.get("/v1/dsp/transfers/{pid}", operation_id="dsp_consumer_transfer_get")
async def transfer_get(pid: str, caller: Consumer, services: ServicesDep) -> JSONResponse:
    """One of the caller's consumer-side transfers."""
    _negotiations, transfers = _services(services)
    return JSONResponse(transfer_view(await transfers.get_for(caller, pid)), media_type=JSON)


@router.post("/v1/dsp/transfers/{pid}/completion", operation_id="dsp_consumer_complete")
async def complete(
    pid: str, request: Request, caller: Consumer, services: ServicesDep
) -> JSONResponse:
    """Tell the provider the transfer is done: COMPLETED (its token revoked there)."""
    _negotiations, transfers = _services(services)
    row = await transfers.complete(caller, pid, actor=audit_events.actor(request))
    return JSONResponse(transfer_view(row), media_type=JSON)


class TerminateIn(BaseModel):
    """Why the local participant ends a negotiation or transfer."""

    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(min_length=1, max_length=500)] = "terminated by the consumer"


@router.post("/v1/dsp/negotiations/{pid}/termination", operation_id="dsp_consumer_terminate")
async def terminate_negotiation(
    pid: str, body: TerminateIn, request: Request, caller: Consumer, services: ServicesDep
) -> JSONResponse:
    """End a negotiation before it is FINALIZED: TERMINATED, then the provider is told."""
    negotiations, _transfers = _services(services)
    row = await negotiations.terminate(caller, pid, body.reason, actor=audit_events.actor(request))
    return JSONResponse(negotiation_view(row), media_type=JSON)


@router.post("/v1/dsp/transfers/{pid}/termination", operation_id="dsp_consumer_transfer_end")
async def terminate_transfer(
    pid: str, body: TerminateIn, request: Request, caller: Consumer, services: ServicesDep
) -> JSONResponse:
    """End a transfer: TERMINATED (the token dropped), then the provider (it revokes it)."""
    _negotiations, transfers = _services(services)
    row = await transfers.terminate(caller, pid, body.reason, actor=audit_events.actor(request))
    return JSONResponse(transfer_view(row), media_type=JSON)


class _Relayed(StreamingResponse):
    """The provider's answer, relayed; the relay (and its entry) ends however this does."""

    def __init__(self, body: AsyncIterator[bytes], media_type: str | None,
                 headers: dict[str, str]) -> None:  # fmt: skip
        self.relay = body
        super().__init__(body, media_type=media_type, headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):  # also when the request task is cancelled
                await self.relay.aclose()  # type: ignore[attr-defined]  # an async generator


@router.post("/v1/dsp/transfers/{pid}/pull", operation_id="dsp_consumer_pull")
async def pull(
    pid: str, request: Request, caller: Consumer, services: ServicesDep
) -> StreamingResponse:
    """Run a Sluis query (the body) at the transfer's DataAddress; the provider's answer,
    with its audit receipt as ``Sluis-Provider-Audit-*`` headers."""
    _negotiations, transfers = _services(services)
    response, body = await transfers.pull(caller, pid, await request.body(),
                                          actor=audit_events.actor(request))  # fmt: skip
    headers = {h.replace("sluis-", "sluis-provider-", 1): response.headers[h]
               for h in RECEIPT if h in response.headers}  # fmt: skip
    headers["cache-control"] = "no-store"
    return _Relayed(body, response.headers.get("content-type"), headers)


# -- the provider's callbacks --------------------------------------------------------------

_NEGOTIATION_CALLBACKS = {
    "offers": "ContractOfferMessage",
    "agreement": "ContractAgreementMessage",
    "events": "ContractNegotiationEventMessage",
    "termination": "ContractNegotiationTerminationMessage",
}
_TRANSFER_CALLBACKS = {
    "start": "TransferStartMessage",
    "completion": "TransferCompletionMessage",
    "termination": "TransferTerminationMessage",
    "suspension": "TransferSuspensionMessage",
}


def _negotiation_callback(path: str, kind: str) -> None:
    async def endpoint(
        pid: str, request: Request, caller: Caller, services: ServicesDep,
        background: BackgroundTasks,
    ) -> JSONResponse:  # fmt: skip
        negotiations, _transfers = _services(services)
        row = await negotiations.provider_message(caller, pid, await request.body(), kind,
                                                  actor=audit_events.actor(request))  # fmt: skip
        if row.state in ("AGREED", "OFFERED"):  # this side's move, after the answer
            background.add_task(after_answer, negotiations.proceed, row.consumer_pid)
        body = {"@context": context(), "@type": "ContractNegotiation",
                "providerPid": row.provider_pid, "consumerPid": row.consumer_pid,
                "state": row.state}  # fmt: skip
        return JSONResponse(body, media_type=JSON)

    endpoint.__doc__ = f"A provider's {kind} (200 with the negotiation as the consumer sees it)."
    name = f"dsp_callback_negotiation_{path}"
    body = request_body(kind, "providerPid", "consumerPid")
    router.add_api_route(f"{CALLBACK_PATH}/negotiations/{{pid}}/{path}", endpoint,
                         methods=["POST"], operation_id=name, name=name,
                         openapi_extra=body)  # fmt: skip


def _transfer_callback(path: str, kind: str) -> None:
    async def endpoint(pid: str, request: Request, caller: Caller,
                       services: ServicesDep) -> JSONResponse:  # fmt: skip
        _negotiations, transfers = _services(services)
        row = await transfers.provider_message(caller, pid, await request.body(), kind,
                                               actor=audit_events.actor(request))  # fmt: skip
        body = {"@context": context(), "@type": "TransferProcess",
                "providerPid": row.provider_pid, "consumerPid": row.consumer_pid,
                "state": row.state}  # fmt: skip
        return JSONResponse(body, media_type=JSON)

    endpoint.__doc__ = f"A provider's {kind} (200 with the transfer as the consumer sees it)."
    name = f"dsp_callback_transfer_{path}"
    body = request_body(kind, "providerPid", "consumerPid")
    router.add_api_route(f"{CALLBACK_PATH}/transfers/{{pid}}/{path}", endpoint,
                         methods=["POST"], operation_id=name, name=name,
                         openapi_extra=body)  # fmt: skip


for _path, _kind in _NEGOTIATION_CALLBACKS.items():
    _negotiation_callback(_path, _kind)
for _path, _kind in _TRANSFER_CALLBACKS.items():
    _transfer_callback(_path, _kind)
