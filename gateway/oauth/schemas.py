"""OAuth client wire formats (admin API, CLI). Fields are only ever appended."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from certs import ORGANIZATION_ID_PATTERN
from gateway.auth.jose import import_public

AuthMethod = Literal["tls_client_auth", "private_key_jwt", "ishare"]
Profile = Literal["fapi2", "ishare"]
ClientStatus = Literal["active", "disabled"]
SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,128}$")  # RFC 6749 §3.3 scope-token
#: What the OpenAPI document says of a scope list (checked by _check_scopes).
SCOPES_SCHEMA: dict[str, Any] = {"items": {"type": "string", "pattern": SCOPE_TOKEN.pattern}}
#: A JWK set's shape (each key is checked by importing it: key material no schema can state).
JWKS_SHAPE: dict[str, Any] = {
    "required": ["keys"],
    "properties": {
        "keys": {"type": "array", "minItems": 1, "maxItems": 10, "items": {"type": "object"}}
    },
}
#: The cross-field rules of ClientCreate (checked by ClientCreate._consistent), as JSON Schema.
CLIENT_RULES: dict[str, Any] = {
    "allOf": [
        {
            "if": {"properties": {"auth_method": {"const": "ishare"}}},
            "then": {"properties": {"profile": {"const": "ishare"}}, "required": ["profile"]},
            "else": {"properties": {"profile": {"const": "fapi2"}}},
        },
        {
            "if": {"properties": {"auth_method": {"const": "private_key_jwt"}}},
            "then": {"properties": {"jwks": {"type": "object"}}, "required": ["jwks"]},
            "else": {"properties": {"jwks": {"type": "null"}}},
        },
    ]
}


def _check_scopes(scopes: list[str]) -> list[str]:
    for scope in scopes:
        if not SCOPE_TOKEN.match(scope):
            raise ValueError(f"invalid scope {scope!r}")
    return sorted(set(scopes))


def _check_jwks(jwks: dict[str, Any] | None) -> dict[str, Any] | None:
    if jwks is None:
        return None
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not keys or len(keys) > 10:  # noqa: PLR2004 - sane bound
        raise ValueError("jwks must be {'keys': [...]} with 1 to 10 public keys")
    for jwk in keys:
        if not isinstance(jwk, dict):
            raise ValueError("each key must be a JWK object")  # noqa: TRY004 - pydantic wants ValueError
        import_public(jwk)
    return jwks


class ClientCreate(BaseModel):
    """Register a participant as an OAuth client."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=CLIENT_RULES)

    client_id: str = Field(
        max_length=64, description="the participant id",
        json_schema_extra={"pattern": ORGANIZATION_ID_PATTERN},
    )  # fmt: skip
    auth_method: AuthMethod
    profile: Profile = "fapi2"
    scopes: list[str] = Field(default_factory=list, max_length=200,
                              json_schema_extra=SCOPES_SCHEMA)  # fmt: skip
    jwks: dict[str, Any] | None = Field(default=None, json_schema_extra=JWKS_SHAPE)

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str]) -> list[str]:
        return _check_scopes(value)

    @field_validator("jwks")
    @classmethod
    def _jwks(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _check_jwks(value)

    @model_validator(mode="after")
    def _consistent(self) -> ClientCreate:
        if (self.profile == "ishare") != (self.auth_method == "ishare"):
            raise ValueError("the ishare profile goes with the ishare auth method, and only it")
        if (self.auth_method == "private_key_jwt") != (self.jwks is not None):
            raise ValueError("private_key_jwt needs jwks; other methods take none")
        return self


class ClientUpdate(BaseModel):
    """Change scopes, keys or status."""

    model_config = ConfigDict(extra="forbid")

    scopes: list[str] | None = Field(default=None, max_length=200,
                                     json_schema_extra=SCOPES_SCHEMA)  # fmt: skip
    jwks: dict[str, Any] | None = Field(default=None, json_schema_extra=JWKS_SHAPE)
    status: ClientStatus | None = None

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _check_scopes(value)

    @field_validator("jwks")
    @classmethod
    def _jwks(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _check_jwks(value)


class Client(BaseModel):
    """A registered OAuth client."""

    client_id: str
    auth_method: AuthMethod
    profile: Profile
    scopes: list[str]
    jwks: dict[str, Any] | None
    status: ClientStatus
    created_at: datetime
    updated_at: datetime
