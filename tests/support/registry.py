"""Seeding the registry for tests: participants and datasets, straight into the database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.datasets.factory import create_connector
from gateway.datasets.schemas import DatasetSpec
from gateway.datasets.service import DatasetService
from gateway.participants.schemas import ParticipantCreate
from gateway.participants.service import ParticipantService
from gateway.storage.db import Database
from tests.support.pki import NOW

Party = tuple[str, str, Sequence[str]]


async def register_participants(db: Database, parties: Sequence[Party]) -> None:
    """(id, name, roles) for each, active."""
    service = ParticipantService(db)
    for pid, name, roles in parties:
        data = ParticipantCreate(id=pid, name=name, roles=list(roles))  # type: ignore[arg-type]
        await service.create(data, now=NOW)


async def register_dataset(
    db: Database,
    dataset_id: str,
    *,
    provider: str,
    policy: str,
    connector: dict[str, Any],
    approval: str = "automatic",
) -> None:
    """A dataset with an inline YAML policy."""
    spec = DatasetSpec(
        id=dataset_id,
        title=dataset_id,
        provider=provider,
        policy="inline",
        approval=approval,  # type: ignore[arg-type]
        connector=connector,
    )
    await DatasetService(db, create_connector).register(spec, policy, "yaml", now=NOW)
