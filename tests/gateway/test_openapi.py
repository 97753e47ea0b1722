"""The OpenAPI document validates and says what the API does (issue 14, OpenAPI findings):
unique operation ids (the pass-through route used one for five methods), every error as
problem+json (FastAPI's 422 HTTPValidationError is not what Sluis answers), the security
schemes, the OAuth form bodies and the data media types."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from gateway.app import create_app
from tests.support.pki import Pki
from tests.support.server import gateway_settings


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home: Path = tmp_path_factory.mktemp("openapi")
    settings = gateway_settings(Pki(home / "pki"), home, f"sqlite+aiosqlite:///{home}/x.db")
    return create_app(settings).openapi()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(p, m, op) for p, item in document["paths"].items() for m, op in item.items()]


def test_the_document_validates(document: dict[str, Any]) -> None:
    validate(document)  # raises, e.g. DuplicateOperationIDError
    ids = [op["operationId"] for _, _, op in _operations(document)]
    assert len(ids) == len(set(ids))
    assert {"passthrough_get", "passthrough_delete", "oauth_token"} <= set(ids)


def test_every_error_is_problem_json(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, method, op in _operations(document):
        for code in ("400", "401", "403", "404", "409", "422", "503", "default"):
            content = op["responses"][code]["content"]
            assert list(content) == ["application/problem+json"], (path, method, code)


def test_security_schemes_form_bodies_and_media_types(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["mutualTLS"]["type"] == "mutualTLS"
    assert "clientCredentials" in schemes["oauth2"]["flows"]
    paths = document["paths"]
    assert paths["/healthz"]["get"]["security"] == []
    assert paths["/v1/catalog"]["get"]["security"] == [{"mutualTLS": []}]
    query = paths["/v1/datasets/{dataset_id}/query"]["post"]
    assert query["security"] == [{"mutualTLS": [], "oauth2": []}]
    assert set(query["responses"]["200"]["content"]) == {
        "application/jsonl", "text/csv", "application/vnd.apache.parquet",
        "application/vnd.apache.arrow.stream",
    }  # fmt: skip
    form = paths["/oauth2/token"]["post"]["requestBody"]["content"]
    schema = form["application/x-www-form-urlencoded"]["schema"]
    assert {"grant_type", "client_id", "scope", "client_assertion"} <= set(schema["properties"])


def test_405_allows_every_method_of_the_path(tmp_path: Path) -> None:
    settings = gateway_settings(
        Pki(tmp_path / "pki"), tmp_path, f"sqlite+aiosqlite:///{tmp_path}/x.db"
    )
    transport = httpx.ASGITransport(app=create_app(settings))

    async def options() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="https://test") as client:
            return await client.options("/v1/admin/clients")

    response = asyncio.run(options())
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"  # was "GET": the first route only
    assert response.headers["content-type"] == "application/problem+json"
