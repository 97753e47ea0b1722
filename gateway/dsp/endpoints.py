"""DSP 2025-1 HTTPS binding (thin): the version object, the catalog (catalog.py) and the
provider's side of contract negotiation (negotiation.py) and of HTTP-pull transfers
(transfer.py).

Every DSP path needs a client certificate (the participant, as everywhere in Sluis); only
``/.well-known/dspace-version`` is open, as the specification requires.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse

from gateway.dsp import catalog as dsp_catalog
from gateway.dsp import messages, outgoing
from gateway.dsp.afterwards import after_answer
from gateway.dsp.messages import DSP_PATH, VERSION
from gateway.dsp.negotiation import NegotiationService
from gateway.dsp.openapi import request_body
from gateway.dsp.transfer import TransferService
from gateway.dsp.transfer import process as transfer_process
from gateway.dsp.transfer_states import TransferMove
from gateway.errors import ServiceUnavailable
from gateway.http import audit_events
from gateway.http.client_cert import STATE_KEY, PresentedCertificate
from gateway.http.deps import Caller, ServicesDep
from gateway.services import Services

router = APIRouter(tags=["dataspace protocol"])


JSON = "application/json"
NEGOTIATIONS = f"{DSP_PATH}/negotiations"
TRANSFERS = f"{DSP_PATH}/transfers"


def version_object() -> dict[str, Any]:
    """The protocol versions this gateway speaks (one: 2025-1 over HTTPS, under /dsp)."""
    return {
        "protocolVersions": [
            {
                "version": VERSION,
                "path": DSP_PATH,
                "binding": "HTTPS",
                "auth": {
                    "protocol": "OAuth",
                    "version": "2",
                    "profile": ["mtls-client-certificate", "certificate-bound-tokens"],
                },
            }
        ]
    }


@router.get("/.well-known/dspace-version", operation_id="dsp_version")
async def dspace_version() -> JSONResponse:
    """The DSP version object (unauthenticated, as DSP requires)."""
    return JSONResponse(version_object(), media_type=JSON)


@router.post(
    f"{DSP_PATH}/catalog/request",
    operation_id="dsp_catalog_request",
    openapi_extra=request_body("CatalogRequestMessage", optional=("filter",)),
)
async def catalog_request(request: Request, _: Caller, services: ServicesDep) -> JSONResponse:
    """A CatalogRequestMessage answered with the Catalog (``filter`` ignored)."""
    message = messages.read(await request.body(), "CatalogRequestMessage")
    if "filter" in message and not isinstance(message["filter"], list):
        raise messages.MalformedMessage("filter must be a list")
    return JSONResponse(await dsp_catalog.catalog(services), media_type=JSON)


@router.get(f"{DSP_PATH}/catalog/datasets/{{dataset_id}}", operation_id="dsp_catalog_dataset")
async def catalog_dataset(dataset_id: str, _: Caller, services: ServicesDep) -> JSONResponse:
    """One Dataset, with its Offer."""
    return JSONResponse(await dsp_catalog.dataset(services, dataset_id), media_type=JSON)


# -- contract negotiation, provider side ------------------------------------------------


def _negotiations(services: Services) -> NegotiationService:
    if services.dsp is None:  # built in the lifespan; absent only in a partial test wiring
        raise ServiceUnavailable("storage-unavailable", "the DSP service is not running")
    return services.dsp


@router.get(f"{NEGOTIATIONS}/{{pid}}", operation_id="dsp_negotiation_get")
async def negotiation_get(pid: str, caller: Caller, services: ServicesDep) -> JSONResponse:
    """The caller's negotiation (404 for an unknown one or someone else's)."""
    row = await _negotiations(services).get_for(caller, pid)
    return JSONResponse(outgoing.negotiation(row), media_type=JSON)


@router.post(
    f"{NEGOTIATIONS}/request",
    operation_id="dsp_negotiation_request",
    openapi_extra=request_body("ContractRequestMessage", "consumerPid", "offer", "callbackAddress"),
)
async def negotiation_request(
    request: Request, caller: Caller, services: ServicesDep, background: BackgroundTasks
) -> JSONResponse:
    """An initiating ContractRequestMessage: 201 with the negotiation, REQUESTED."""
    dsp = _negotiations(services)
    row = await dsp.request(
        caller, await request.body(), now=datetime.now(UTC), actor=audit_events.actor(request)
    )
    background.add_task(
        after_answer, dsp.follow, row.provider_pid
    )  # after the answer: the consumer has
    return JSONResponse(outgoing.negotiation(row), status_code=201, media_type=JSON)  # the pid


_CONSUMER_MESSAGES = {
    "request": "ContractRequestMessage",
    "events": "ContractNegotiationEventMessage",
    "agreement/verification": "ContractAgreementVerificationMessage",
    "termination": "ContractNegotiationTerminationMessage",
}


def _consumer_endpoint(path: str, kind: str) -> None:
    async def endpoint(
        pid: str,
        request: Request,
        caller: Caller,
        services: ServicesDep,
        background: BackgroundTasks,
    ) -> JSONResponse:
        dsp = _negotiations(services)
        row = await dsp.consumer_message(
            caller, pid, await request.body(), kind,
            now=datetime.now(UTC), actor=audit_events.actor(request),
        )  # fmt: skip
        background.add_task(after_answer, dsp.follow, row.provider_pid)
        return JSONResponse(outgoing.negotiation(row), media_type=JSON)

    endpoint.__doc__ = f"A {kind} from the consumer (200 with the negotiation)."
    name = "dsp_negotiation_" + ("counter_request" if path == "request" else path.replace("/", "_"))
    fields = ("providerPid", "consumerPid") + (("eventType",) if path == "events" else ())
    router.add_api_route(
        f"{NEGOTIATIONS}/{{pid}}/{path}", endpoint, methods=["POST"], operation_id=name, name=name,
        openapi_extra=request_body(kind, *fields),
    )  # fmt: skip


for _path, _kind in _CONSUMER_MESSAGES.items():
    _consumer_endpoint(_path, _kind)


# -- transfer process, provider side (HTTP-pull) --------------------------------------------


def _transfers(services: Services) -> TransferService:
    if services.transfers is None:  # built in the lifespan; absent only in a partial wiring
        raise ServiceUnavailable("storage-unavailable", "the DSP service is not running")
    return services.transfers


def _chain(request: Request) -> tuple[x509.Certificate, ...]:
    presented: PresentedCertificate = request.scope["state"][STATE_KEY]  # set by Caller
    return tuple(presented.chain)


@router.get(f"{TRANSFERS}/{{pid}}", operation_id="dsp_transfer_get")
async def transfer_get(pid: str, caller: Caller, services: ServicesDep) -> JSONResponse:
    """The caller's transfer process (404 for an unknown one or someone else's)."""
    row = await _transfers(services).get_for(caller, pid)
    return JSONResponse(transfer_process(row), media_type=JSON)


@router.post(
    f"{TRANSFERS}/request",
    operation_id="dsp_transfer_request",
    openapi_extra=request_body(
        "TransferRequestMessage", "consumerPid", "agreementId", "format", "callbackAddress"
    ),
)
async def transfer_request(
    request: Request, caller: Caller, services: ServicesDep, background: BackgroundTasks
) -> JSONResponse:
    """A TransferRequestMessage: 201, REQUESTED; then the start with a bound Sluis token."""
    dsp = _transfers(services)
    actor = audit_events.actor(request)
    row = await dsp.request(caller, await request.body(), now=datetime.now(UTC), actor=actor)
    background.add_task(after_answer, dsp.start, row, caller, _chain(request), actor=actor)
    return JSONResponse(transfer_process(row), status_code=201, media_type=JSON)


_TRANSFER_MESSAGES: dict[str, tuple[str, TransferMove]] = {
    "start": ("TransferStartMessage", "start"),
    "completion": ("TransferCompletionMessage", "completion"),
    "termination": ("TransferTerminationMessage", "termination"),
    "suspension": ("TransferSuspensionMessage", "suspension"),
}


def _transfer_endpoint(path: str, kind: str, move: TransferMove) -> None:
    async def endpoint(
        pid: str,
        request: Request,
        caller: Caller,
        services: ServicesDep,
        background: BackgroundTasks,
    ) -> JSONResponse:
        dsp = _transfers(services)
        actor = audit_events.actor(request)
        row = await dsp.consumer_message(caller, pid, await request.body(), kind, move, actor=actor)
        if move == "start":  # the consumer resumes: a new token, as at the first start
            background.add_task(after_answer, dsp.start, row, caller, _chain(request), actor=actor)
        return JSONResponse(transfer_process(row), media_type=JSON)

    endpoint.__doc__ = f"A {kind} from the consumer (200 with the transfer process)."
    name = f"dsp_transfer_{path}"
    router.add_api_route(
        f"{TRANSFERS}/{{pid}}/{path}", endpoint, methods=["POST"], operation_id=name, name=name,
        openapi_extra=request_body(kind, "providerPid", "consumerPid"),
    )  # fmt: skip


for _path, (_kind, _move) in _TRANSFER_MESSAGES.items():
    _transfer_endpoint(_path, _kind, _move)
