"""Agreement wire formats.

States: requested -> active | rejected; active -> revoked (provider) | terminated (consumer).
``requested`` and ``active`` are live: a consumer has at most one live agreement per dataset.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

AgreementState = Literal["requested", "active", "rejected", "revoked", "terminated"]
FINAL_STATES = frozenset({"rejected", "revoked", "terminated"})
LIVE_STATES = frozenset({"requested", "active"})


class AgreementRequest(BaseModel):
    """A consumer asks for access to a dataset for a declared purpose (an IRI)."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(max_length=128)
    purpose: str = Field(min_length=3, max_length=512, pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")


class AgreementDecision(BaseModel):
    """A provider's (or consumer's) reason for a transition."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=2000)


class Agreement(BaseModel):
    """An agreement and where it stands."""

    id: str
    dataset_id: str
    consumer_id: str
    purpose: str
    state: AgreementState
    policy_hash: str
    reason: str | None
    use_count: int  # uses under the policy version, by this and earlier agreements (usage state)
    created_at: datetime
    updated_at: datetime
    decided_at: datetime | None
