"""Dataset wire formats: the operator's spec file and what the API shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Approval = Literal["manual", "automatic"]
DATASET_ID = r"^[a-z0-9][a-z0-9._-]{0,127}$"


class DatasetSpec(BaseModel):
    """A dataset spec file (YAML), kept by the operator: connectors touch the gateway host.

    ``policy`` is a path relative to the spec file (``.yaml``, ``.ttl``, ``.jsonld``).
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=DATASET_ID)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    provider: str = Field(max_length=64, description="the provider's participant id")
    policy: str = Field(min_length=1, max_length=512)
    asset: str | None = Field(
        default=None, max_length=512, description="the policy's target IRI; urn:sluis:dataset:<id>"
    )
    approval: Approval = "manual"
    connector: dict[str, Any]


class Dataset(BaseModel):
    """A registered dataset."""

    id: str
    title: str
    description: str
    provider_id: str
    asset: str
    connector: dict[str, Any]
    policy_hash: str
    approval: Approval
    status: Literal["active", "withdrawn"]
    created_at: datetime
    updated_at: datetime
