"""Seeding the registry for tests: participants and datasets, straight into the database."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gateway.datasets.factory import create_connector
from gateway.datasets.schemas import DatasetSpec
from gateway.datasets.service import DatasetService
from gateway.participants.schemas import ParticipantCreate
from gateway.participants.service import ParticipantService
from gateway.storage.db import Database
from tests.support.pki import NOW

Party = tuple[str, str, Sequence[str]]


@functools.cache
def files_root() -> Path:
    """A root holding ``x.parquet`` (one column ``machine``), for datasets nobody reads.

    Registration reads a files dataset once, so its file must exist; removed at exit.
    """
    root = Path(tempfile.mkdtemp(prefix="sluis-test-data-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    pq.write_table(pa.table({"machine": ["X200"]}), root / "x.parquet")
    return root


def files_connector() -> dict[str, Any]:
    """A files connector over :func:`files_root`."""
    return {"type": "files", "root": str(files_root()), "path": "x.parquet", "format": "parquet"}


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
