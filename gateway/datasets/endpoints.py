"""The catalog: every active dataset as DCAT-AP style JSON-LD, with schema and policy."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from connectors import ConnectorError
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
}
JSON_LD = "application/ld+json"


async def _entry(services: Services, dataset: Dataset) -> dict[str, Any]:
    base = services.settings.public_url
    available = True
    if services.datasets.is_passthrough(dataset):
        columns: list[dict[str, Any]] = []
        access = f"{base}/v1/datasets/{dataset.id}/api/"
    else:
        access = f"{base}/v1/datasets/{dataset.id}/query"
        try:
            lease = await services.datasets.lease_connector(dataset)
            try:
                info = await lease.value.describe()
            finally:
                await lease.release()
            columns = info.to_catalog()["columns"]
        except ConnectorError as exc:  # one source down must not hide the whole catalog
            log.warning("catalog: dataset %s has no schema now: %s", dataset.id, exc)
            columns, available = [], False
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


@router.get("/v1/catalog")
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


@router.get("/v1/datasets/{dataset_id}")
async def dataset(dataset_id: str, _: Caller, services: ServicesDep) -> JSONResponse:
    """One dataset's catalog entry."""
    entry = await _entry(services, await services.datasets.get(dataset_id))
    return JSONResponse({"@context": CONTEXT, **entry}, media_type=JSON_LD)
