"""The OpenAPI document's additions (gateway/http/openapi.py), on a small app of known routes.

What each operation gains: every error answer as problem+json, its security (open, mutual
TLS, mutual TLS and OAuth2), the OAuth form bodies, the data media types, the revocation's
empty 200; the components replaced; the operation ids. Exact, so a changed word shows. The
whole gateway's document validated: test_openapi.py (it builds the app, seconds a run).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel

from gateway.http.openapi import PROBLEM_SCHEMA, document, unique_id

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
ERRORS = {
    "400": "Malformed request (also a malformed Dataspace Protocol message)",
    "401": "No, or an unusable, client certificate or access token",
    "403": "Authenticated, but not allowed (role, policy)",
    "404": "No such resource, or not one the caller may know of",
    "409": "The resource is in another state",
    "413": "Body too large",
    "422": "The body or parameters do not match the schema",
    "429": "Too many requests (Retry-After)",
    "503": "A dependency (database, audit log) is unavailable: nothing was served",
    "default": "Any other error, as problem+json",
}
BINARY = {"schema": {"type": "string", "format": "binary"}}
DATA = {"application/jsonl": BINARY, "text/csv": BINARY, "application/vnd.apache.parquet": BINARY,
        "application/vnd.apache.arrow.stream": BINARY}  # fmt: skip
MTLS = [{"mutualTLS": []}]
TOKEN = [{"mutualTLS": [], "oauth2": []}]


class Body(BaseModel):
    name: str


async def endpoint() -> None:
    return None


async def with_body(body: Body) -> str:
    return body.name


def _app(*, validation: bool = True) -> FastAPI:
    app = FastAPI(title="t", version="1", generate_unique_id_function=unique_id)
    gets = ["/healthz", "/readyz", "/.well-known/dspace-version", "/oauth2/jwks", "/capabilities",
            "/v1/catalog", "/v1/datasets/{dataset_id}/data", "/v1/datasets/{dataset_id}/api/{path}",
            "/oauth2/token", "/v1/healthz"]  # fmt: skip
    for number, path in enumerate(gets):
        app.add_api_route(path, endpoint, methods=["GET"], name=f"get{number}")
    posts = ["/v1/datasets/{dataset_id}/query", "/v1/session", "/oauth2/token", "/connect/token",
             "/oauth2/introspect", "/oauth2/revoke", "/v1/agreements"]  # fmt: skip
    for number, path in enumerate(posts):
        app.add_api_route(path, endpoint, methods=["POST"], name=f"post{number}")
    if validation:
        app.add_api_route("/v1/things", with_body, methods=["PUT"], name="put")
    return app


@pytest.fixture
def doc() -> dict[str, Any]:
    """Made per test: mutmut runs a mutant only against the tests that called its function,
    and a module fixture's calls count for the first test alone."""
    return document(_app())


def test_every_operation_answers_its_errors_as_problems(doc: dict[str, Any]) -> None:
    for item in doc["paths"].values():
        for operation in item.values():
            for code, text in ERRORS.items():
                assert operation["responses"][code] == {"description": text, "content": PROBLEM}


@pytest.mark.parametrize(
    ("path", "method", "security"),
    [("/healthz", "get", []), ("/readyz", "get", []), ("/.well-known/dspace-version", "get", []),
     ("/oauth2/jwks", "get", []), ("/capabilities", "get", []),
     ("/v1/catalog", "get", MTLS), ("/v1/healthz", "get", MTLS), ("/oauth2/token", "post", MTLS),
     ("/v1/agreements", "post", MTLS), ("/v1/things", "put", MTLS),
     ("/v1/datasets/{dataset_id}/query", "post", TOKEN),
     ("/v1/datasets/{dataset_id}/data", "get", TOKEN),
     ("/v1/datasets/{dataset_id}/api/{path}", "get", TOKEN), ("/v1/session", "post", TOKEN)],
)  # fmt: skip
def test_each_operations_security(
    doc: dict[str, Any], path: str, method: str, security: list[Any]
) -> None:
    assert doc["paths"][path][method]["security"] == security


def _form(required: list[str], fields: list[str]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": required,
                    "properties": {name: {"type": "string", "minLength": 1} for name in fields},
                    "additionalProperties": {"type": "string"},
                }
            }
        },
    }


def test_the_oauth_endpoints_take_form_bodies(doc: dict[str, Any]) -> None:
    paths = doc["paths"]
    assert paths["/oauth2/token"]["post"]["requestBody"] == _form(
        ["grant_type"],
        ["grant_type", "client_id", "scope", "resource", "client_assertion_type",
         "client_assertion"],
    )  # fmt: skip
    assert paths["/connect/token"]["post"]["requestBody"] == _form(
        ["grant_type"],
        ["grant_type", "client_id", "scope", "client_assertion_type", "client_assertion"],
    )
    for path in ("/oauth2/introspect", "/oauth2/revoke"):
        assert paths[path]["post"]["requestBody"] == _form(["token"], ["token", "token_type_hint"])
    assert "requestBody" not in paths["/oauth2/token"]["get"]
    assert "requestBody" not in paths["/v1/agreements"]["post"]


def test_the_data_answers_and_the_revocation(doc: dict[str, Any]) -> None:
    paths = doc["paths"]
    for path, method in (("/v1/datasets/{dataset_id}/query", "post"),
                         ("/v1/datasets/{dataset_id}/data", "get")):  # fmt: skip
        assert paths[path][method]["responses"]["200"] == {
            "description": "Successful Response",
            "content": DATA,
        }
    for path, method in (("/v1/datasets/{dataset_id}/api/{path}", "get"),
                         ("/v1/session", "post"), ("/v1/catalog", "get")):  # fmt: skip
        assert "application/jsonl" not in paths[path][method]["responses"]["200"]["content"]
    assert paths["/oauth2/revoke"]["post"]["responses"]["200"] == {
        "description": "Revoked, or not a live token"
    }
    assert paths["/oauth2/introspect"]["post"]["responses"]["200"]["description"] == (
        "Successful Response"
    )


def test_a_data_operation_without_a_200_gets_one() -> None:
    app = FastAPI()
    app.add_api_route("/v1/datasets/{dataset_id}/query", endpoint, methods=["POST"],
                      status_code=202)  # fmt: skip
    operation = document(app)["paths"]["/v1/datasets/{dataset_id}/query"]["post"]
    assert operation["responses"]["200"] == {"description": "Data", "content": DATA}


def test_the_components(doc: dict[str, Any]) -> None:
    components = doc["components"]
    assert components["schemas"]["Problem"] == PROBLEM_SCHEMA
    assert set(components["schemas"]) == {"Problem", "Body"}  # FastAPI's two are gone
    assert components["securitySchemes"] == {
        "mutualTLS": {"type": "mutualTLS", "description": "A participant's client certificate"},
        "oauth2": {
            "type": "oauth2",
            "description": "Client credentials; tokens are bound to the client certificate "
            "(RFC 8705, cnf.x5t#S256)",
            "flows": {"clientCredentials": {
                "tokenUrl": "/oauth2/token",
                "scopes": {"dataset:{id}": "query the dataset {id} under its agreement"},
            }},
        },
        "ishare": {
            "type": "oauth2",
            "description": "iSHARE parties: client credentials with a signed client assertion "
            "(scope=iSHARE, mapped to the client's registered scopes); bound tokens as above",
            "flows": {"clientCredentials": {
                "tokenUrl": "/connect/token",
                "scopes": {"iSHARE": "the client's registered scopes"},
            }},
        },
    }  # fmt: skip


def test_an_app_without_validation_errors_has_the_problem_schema_only() -> None:
    components = document(_app(validation=False))["components"]
    assert components["schemas"] == {"Problem": PROBLEM_SCHEMA}


def test_the_document_is_built_once() -> None:
    app = _app()
    first = document(app)
    assert app.openapi_schema is first
    assert document(app) is first
    assert first["info"] == {"title": "t", "version": "1"}


def _route(module: str, name: str) -> APIRoute:
    async def handler() -> None:
        return None

    handler.__module__ = module
    return APIRoute("/x", handler, name=name)


@pytest.mark.parametrize(
    ("module", "expected"),
    [("gateway.oauth.endpoints", "oauth_revoke"),
     ("gateway.agreements.endpoints", "agreements_revoke"),
     ("gateway.dsp.consumer.endpoints", "dsp_revoke"), ("gateway.app", "app_revoke"),
     ("main", "main_revoke")],
)  # fmt: skip
def test_an_operation_id_is_the_package_and_the_function(module: str, expected: str) -> None:
    assert unique_id(_route(module, "revoke")) == expected


def test_the_operation_ids_of_the_app(doc: dict[str, Any]) -> None:
    ids = {op["operationId"] for item in doc["paths"].values() for op in item.values()}
    assert "gateway_put" in ids  # this module is tests.gateway.test_openapi_document
