"""DSP 2025-1 HTTPS binding: the version object and the catalog (thin: see catalog.py).

Every DSP path needs a client certificate (the participant, as everywhere in Sluis); only
``/.well-known/dspace-version`` is open, as the specification requires.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gateway.dsp import catalog as dsp_catalog
from gateway.dsp import messages
from gateway.dsp.messages import DSP_PATH, VERSION
from gateway.http.deps import Caller, ServicesDep

router = APIRouter(tags=["dataspace protocol"])
JSON = "application/json"


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


@router.post(f"{DSP_PATH}/catalog/request", operation_id="dsp_catalog_request")
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
