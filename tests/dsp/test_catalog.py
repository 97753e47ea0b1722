"""DSP version object and catalog (issue 14, step 1): schema-valid answers over real mTLS."""

from __future__ import annotations

from typing import Any

import pytest

from tests.dsp.conftest import Provider
from tests.support.dsp import validate

CONTEXT = ["https://w3id.org/dspace/2025/1/context.jsonld"]
CATALOG_REQUEST = {"@context": CONTEXT, "@type": "CatalogRequestMessage", "filter": []}


def _catalog(provider: Provider, body: Any) -> Any:
    with provider.client("university") as client:
        return client.post("/dsp/catalog/request", json=body)


def test_the_version_object_is_open_and_schema_valid(provider: Provider) -> None:
    with provider.client(None) as client:
        response = client.get("/.well-known/dspace-version")
    assert response.status_code == 200, response.text
    validate(response.json(), "common/protocol-version-schema.json")
    assert response.json()["protocolVersions"][0]["path"] == "/dsp"


def test_the_catalog_carries_each_dataset_with_its_policy_as_an_offer(provider: Provider) -> None:
    response = _catalog(provider, CATALOG_REQUEST)
    assert response.status_code == 200, response.text
    catalog = response.json()
    validate(catalog, "catalog/catalog-schema.json")
    by_id = {d["@id"]: d for d in catalog["dataset"]}
    assert set(by_id) == {"machines", "machines-manual"}
    offer = by_id["machines"]["hasPolicy"][0]
    validate({"@context": CONTEXT, **by_id["machines"]}, "catalog/dataset-schema.json")
    assert offer["@type"] == "Offer"
    assert offer["@id"].startswith("urn:sluis:offer:machines:")
    permission = offer["permission"][0]
    assert permission["action"] == "odrl:read"
    operands = {c["leftOperand"]: c for c in permission["constraint"]}
    # ODRL terms compacted against the DSP context; the Sluis profile's under its namespace
    assert operands["odrl:purpose"]["rightOperand"] == {
        "@id": "https://w3id.org/dpv#AcademicResearch"
    }
    assert operands["odrl:count"]["rightOperand"] == {"@value": "6", "@type": "xsd:integer"}
    assert "https://w3id.org/sluis/odrl#columns" in operands
    assert "https://w3id.org/sluis/odrl#maxRows" in operands


def test_one_dataset(provider: Provider) -> None:
    with provider.client("lab") as client:
        response = client.get("/dsp/catalog/datasets/machines")
        missing = client.get("/dsp/catalog/datasets/nothing-here")
    assert response.status_code == 200, response.text
    validate(response.json(), "catalog/dataset-schema.json")
    assert missing.status_code == 404
    error = missing.json()
    validate(error, "catalog/catalog-error-schema.json")
    assert error["type"] == "urn:sluis:problem:dataset-not-found"
    assert missing.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "body",
    [
        {"@type": "CatalogRequestMessage"},  # no @context
        {"@context": CONTEXT},  # no @type
        {"@context": ["https://example.org/other"], "@type": "CatalogRequestMessage"},
        {"@context": CONTEXT, "@type": "DatasetRequestMessage"},
        {"@context": "https://w3id.org/dspace/2025/1/context.jsonld", "@type": "x"},
        {**CATALOG_REQUEST, "filter": "everything"},
        ["not", "an", "object"],
    ],
)
def test_a_malformed_catalog_request_is_a_dsp_error(provider: Provider, body: Any) -> None:
    response = _catalog(provider, body)
    assert response.status_code == 400, response.text
    error = response.json()
    validate(error, "catalog/catalog-error-schema.json")
    assert error["type"] == "urn:sluis:problem:dsp-malformed-message"
    assert error["code"] == "dsp-malformed-message"


def test_the_catalog_needs_a_client_certificate(provider: Provider) -> None:
    with provider.client(None) as client:
        response = client.post("/dsp/catalog/request", json=CATALOG_REQUEST)
    assert response.status_code == 401
    error = response.json()
    validate(error, "catalog/catalog-error-schema.json")
    assert error["type"] == "urn:sluis:problem:certificate-no-certificate"
