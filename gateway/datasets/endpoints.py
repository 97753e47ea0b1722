"""The catalog: every active dataset as DCAT-AP style JSON-LD, with schema and policy."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from connectors import ConnectorError
from gateway.datasets import dcat
from gateway.datasets.schemas import Dataset
from gateway.http.deps import Caller, ServicesDep
from gateway.services import Services

log = logging.getLogger("sluis.catalog")
router = APIRouter(tags=["catalog"])
CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "odrl": "http://www.w3.org/ns/odrl/2/",
    "sluis": "https://w3id.org/sluis/odrl#",
    # the column objects in sluis:schema (without these they expanded to nothing)
    "name": "sluis:name",
    "type": "sluis:type",
    "nullable": "sluis:nullable",
}
JSON_LD = "application/ld+json"
TURTLE = "text/turtle"


async def _shape(services: Services, dataset: Dataset) -> tuple[list[dict[str, Any]], bool, str]:
    """(columns, available now, access URL) of a dataset."""
    base = services.settings.public_url
    if services.datasets.is_passthrough(dataset):
        return [], True, f"{base}/v1/datasets/{dataset.id}/api/"
    access = f"{base}/v1/datasets/{dataset.id}/query"
    try:
        lease = await services.datasets.lease_connector(dataset)
        try:
            info = await lease.value.describe()
        finally:
            await lease.release()
    except ConnectorError as exc:  # one source down must not hide the whole catalog
        log.warning("catalog: dataset %s has no schema now: %s", dataset.id, exc)
        return [], False, access
    return list(info.to_catalog()["columns"]), True, access


async def _entry(services: Services, dataset: Dataset) -> dict[str, Any]:
    base = services.settings.public_url
    columns, available, access = await _shape(services, dataset)
    text, fmt = await services.datasets.policy_document(dataset.policy_hash)
    return {
        "@id": f"{base}/v1/datasets/{dataset.id}",
        "@type": "dcat:Dataset",
        "dct:identifier": dataset.id,
        "dct:title": dataset.title,
        "dct:description": dataset.description,
        "dct:publisher": {"@id": f"urn:sluis:participant:{dataset.provider_id}"},
        "sluis:asset": {"@id": dataset.asset},
        "sluis:schema": columns,
        "sluis:available": available,
        "sluis:approval": dataset.approval,
        "odrl:hasPolicy": {
            "@id": f"{base}/v1/datasets/{dataset.id}#policy",
            "sluis:policyHash": dataset.policy_hash,
            "sluis:format": fmt,
            "sluis:document": text,
        },
        "dcat:distribution": {
            "@type": "dcat:Distribution",
            "dcat:accessURL": {"@id": access},
            "dcat:mediaType": ["application/jsonl", "text/csv", "application/vnd.apache.parquet",
                               "application/vnd.apache.arrow.stream"],
        },
    }  # fmt: skip


JSON_LD_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"content": {JSON_LD: {"schema": {"type": "object"}}}, "description": "JSON-LD"}
}


@router.get("/v1/catalog", responses=JSON_LD_ANSWER)
async def catalog(_: Caller, services: ServicesDep) -> JSONResponse:
    """Every active dataset (any authenticated participant may discover them)."""
    datasets = [await _entry(services, d) for d in await services.datasets.list()]
    body = {
        "@context": CONTEXT,
        "@id": f"{services.settings.public_url}/v1/catalog",
        "@type": "dcat:Catalog",
        "dcat:dataset": datasets,
    }
    return JSONResponse(body, media_type=JSON_LD)


@router.get(
    "/v1/catalog/dcat",
    responses={200: {"content": {JSON_LD: {}, TURTLE: {}}, "description": "DCAT-AP 3.0.1"}},
)
async def catalog_dcat(request: Request, _: Caller, services: ServicesDep) -> Response:
    """The catalog as DCAT-AP 3.0.1: JSON-LD, or Turtle for ``Accept: text/turtle``."""
    settings = services.settings
    info = dcat.CatalogInfo(
        base=settings.public_url,
        title=settings.catalog_title,
        description=settings.catalog_description,
        publisher=settings.catalog_publisher or urlsplit(settings.public_url).hostname or "",
    )
    found = [await _dcat_dataset(services, d) for d in await services.datasets.list()]
    document = dcat.catalog(info, found)
    if _wants_turtle(request.headers.get("accept", "")):
        return Response(dcat.turtle(document), media_type=TURTLE)
    return JSONResponse(document, media_type=JSON_LD)


def _wants_turtle(accept: str) -> bool:
    """Turtle only when asked for by name (the default answer is JSON-LD)."""
    return any(part.split(";")[0].strip() == TURTLE for part in accept.split(","))


async def _dcat_dataset(services: Services, dataset: Dataset) -> dcat.DatasetInfo:
    columns, _, access = await _shape(services, dataset)
    provider = await services.participants.get(dataset.provider_id)
    return dcat.DatasetInfo(
        id=dataset.id, title=dataset.title, description=dataset.description,
        provider_id=dataset.provider_id, provider_name=provider.name,
        policy_hash=dataset.policy_hash, access_url=access, columns=columns,
        tabular=not services.datasets.is_passthrough(dataset),
        issued=dataset.created_at, modified=dataset.updated_at,
    )  # fmt: skip


@router.get("/v1/datasets/{dataset_id}", responses=JSON_LD_ANSWER)
async def dataset(dataset_id: str, _: Caller, services: ServicesDep) -> JSONResponse:
    """One dataset's catalog entry."""
    entry = await _entry(services, await services.datasets.get(dataset_id))
    return JSONResponse({"@context": CONTEXT, **entry}, media_type=JSON_LD)
