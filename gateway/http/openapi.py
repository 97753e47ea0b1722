"""The OpenAPI document as the API behaves: problem+json errors, security, media types.

FastAPI's generated document is the base; this adds what it cannot see (issue 14):

- every operation declares its error answers (400, 401, 403, 404, 409, 413, 422, 429, 503
  and ``default``) as ``application/problem+json`` with the one ``Problem`` schema, which
  replaces FastAPI's ``HTTPValidationError`` (Sluis's 422 is problem+json);
- the security schemes: ``mutualTLS`` on every operation but the open ones (health, the
  well-known documents, the JWKS, iSHARE capabilities), and OAuth2 client credentials
  (certificate-bound tokens) besides on the data endpoints;
- the OAuth endpoints' form bodies (``application/x-www-form-urlencoded``);
- the data answers' media types (JSON lines, CSV, Parquet, Arrow).

Operation ids are unique and readable (the endpoint's package and function name, or the
one a route sets): ``openapi-spec-validator`` accepts the document (tests/gateway/test_openapi.py).
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

PROBLEM_JSON: Final = "application/problem+json"
PROBLEM_REF: Final = {"$ref": "#/components/schemas/Problem"}
PROBLEM_SCHEMA: Final = {
    "type": "object",
    "description": "RFC 9457 problem details; `type` is urn:sluis:problem:<code> (docs/errors.md)",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "additionalProperties": True,
}
ERRORS: Final = {
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
OPEN: Final = ("/healthz", "/readyz", "/.well-known/", "/oauth2/jwks", "/capabilities")
TOKEN_PATHS: Final = ("/v1/datasets/{dataset_id}/query", "/v1/datasets/{dataset_id}/data",
                      "/v1/datasets/{dataset_id}/api/{path}", "/v1/session")  # fmt: skip
DATA_MEDIA: Final = ("application/jsonl", "text/csv", "application/vnd.apache.parquet",
                     "application/vnd.apache.arrow.stream")  # fmt: skip
_FORM_FIELDS: Final = {
    "/oauth2/token": (
        ["grant_type"],
        ["grant_type", "client_id", "scope", "resource", "client_assertion_type",
         "client_assertion"],
    ),
    "/connect/token": (
        ["grant_type"],
        ["grant_type", "client_id", "scope", "client_assertion_type", "client_assertion"],
    ),
    "/oauth2/introspect": (["token"], ["token", "token_type_hint"]),
    "/oauth2/revoke": (["token"], ["token", "token_type_hint"]),
}  # fmt: skip


def unique_id(route: APIRoute) -> str:
    """A readable operation id: the endpoint's package and function (``oauth_revoke``,
    ``agreements_revoke``); a route may set its own."""
    parts = route.endpoint.__module__.split(".")
    return f"{parts[1] if len(parts) > 2 else parts[-1]}_{route.name}"  # noqa: PLR2004 - gateway.<package>.<module>


def _security(path: str) -> list[dict[str, list[str]]]:
    if path.startswith(OPEN):
        return []
    if path in TOKEN_PATHS:
        return [{"mutualTLS": [], "oauth2": []}]
    return [{"mutualTLS": []}]


def _errors(operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    for code, text in ERRORS.items():
        responses[code] = {"description": text, "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}


def _form(operation: dict[str, Any], required: list[str], fields: list[str]) -> None:
    schema = {
        "type": "object",
        "required": required,
        "properties": {name: {"type": "string", "minLength": 1} for name in fields},
        # RFC 6749 §3.2: unknown parameters are ignored, but none may be repeated
        "additionalProperties": {"type": "string"},
    }
    operation["requestBody"] = {
        "required": True,
        "content": {"application/x-www-form-urlencoded": {"schema": schema}},
    }


def _data(operation: dict[str, Any]) -> None:
    answer = operation.setdefault("responses", {}).setdefault("200", {"description": "Data"})
    answer["content"] = {media: {"schema": {"type": "string", "format": "binary"}}
                         for media in DATA_MEDIA}  # fmt: skip


def _components(doc: dict[str, Any]) -> None:
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA
    components["securitySchemes"] = {
        "mutualTLS": {"type": "mutualTLS", "description": "A participant's client certificate"},
        "oauth2": {
            "type": "oauth2",
            "description": "Client credentials; tokens are bound to the client certificate "
            "(RFC 8705, cnf.x5t#S256)",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": "/oauth2/token",
                    "scopes": {"dataset:{id}": "query the dataset {id} under its agreement"},
                }
            },
        },
        "ishare": {
            "type": "oauth2",
            "description": "iSHARE parties: client credentials with a signed client assertion "
            "(scope=iSHARE, mapped to the client's registered scopes); bound tokens as above",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": "/connect/token",
                    "scopes": {"iSHARE": "the client's registered scopes"},
                }
            },
        },
    }


def document(app: FastAPI) -> dict[str, Any]:
    """The gateway's OpenAPI document (built once)."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, routes=app.routes)
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            _errors(operation)
            operation["security"] = _security(path)
            if path in _FORM_FIELDS and method == "post":
                _form(operation, *_FORM_FIELDS[path])
            if path in TOKEN_PATHS[:2]:
                _data(operation)
            if path == "/oauth2/revoke":  # RFC 7009 §2.2: 200, no body (also for unknown tokens)
                operation["responses"]["200"] = {"description": "Revoked, or not a live token"}
    _components(doc)
    app.openapi_schema = doc
    return doc
