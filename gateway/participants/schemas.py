"""Participant wire formats (admin API and whoami). Fields are only ever appended."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from certs import ORGANIZATION_ID_PATTERN, ROLES, PKIError, validate_organization_id

Role = Literal["provider", "consumer", "officer", "operator"]
Status = Literal["active", "suspended"]
#: A party collection, e.g. urn:group:universities (what ODRL policies assign to).
GroupIri = Annotated[
    str, Field(min_length=3, max_length=512, pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
]
assert set(get_args(Role)) == ROLES  # noqa: S101 - keep the literal in step with certs.ROLES


def _org_id(value: str) -> str:
    try:
        return validate_organization_id(value)
    except PKIError as exc:
        raise ValueError(exc.detail) from exc


class ParticipantCreate(BaseModel):
    """A new organisation."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        max_length=64,
        description="organizationIdentifier, e.g. EU.EORI.NL000000001",
        json_schema_extra={"pattern": ORGANIZATION_ID_PATTERN},  # checked by _check_id
    )
    name: str = Field(min_length=1, max_length=200)
    roles: list[Role] = Field(min_length=1)
    status: Status = "active"
    groups: list[GroupIri] = Field(default_factory=list, max_length=50)

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        return _org_id(value)


class ParticipantUpdate(BaseModel):
    """A partial change; omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    roles: list[Role] | None = Field(default=None, min_length=1)
    status: Status | None = None
    groups: list[GroupIri] | None = Field(default=None, max_length=50)


class Participant(BaseModel):
    """A registered organisation."""

    id: str
    name: str
    roles: list[Role]
    status: Status
    groups: list[str] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class CertificateInfo(BaseModel):
    """What whoami shows of the presented certificate."""

    subject: str
    issuer: str
    serial_number: str
    thumbprint_sha256: str
    not_after: datetime
    roles: list[str]
    source: Literal["tls", "proxy"]


class WhoAmI(BaseModel):
    """The participant resolved from the client certificate."""

    participant: Participant
    effective_roles: list[Role]
    certificate: CertificateInfo
