"""The participant registry on the real SQLite and PostgreSQL, with Alembic migrations."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect

from certs import CertificateIdentity
from gateway.errors import Conflict, Forbidden, NotFound
from gateway.participants.schemas import ParticipantCreate, ParticipantUpdate
from gateway.participants.service import ParticipantService
from gateway.storage import StorageUnavailable
from gateway.storage.db import Database
from tests.support.databases import database_url

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as value:
        yield value


def _identity(org_id: str, roles: frozenset[str]) -> CertificateIdentity:
    return CertificateIdentity(
        organization_id=org_id,
        organization_name="x",
        participant_uri=f"urn:sluis:participant:{org_id}",
        roles=roles,
        thumbprint_sha256="t",
        serial_number=1,
        subject="CN=x",
        issuer="CN=ca",
        not_after=NOW + timedelta(days=1),
    )


def test_migrations_create_the_schema_and_are_idempotent(url: str) -> None:
    async def run() -> set[str]:
        db = Database(url)
        await db.upgrade()
        await db.upgrade()
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        await db.dispose()
        return tables

    assert {"participants", "alembic_version"} <= asyncio.run(run())


def test_registry_lifecycle(url: str) -> None:
    async def run() -> None:
        db = Database(url)
        await db.upgrade()
        service = ParticipantService(db)
        created = await service.create(
            ParticipantCreate(
                id="EU.EORI.NL000000001", name="Maker", roles=["provider", "provider"]
            ),
            now=NOW,
        )
        assert created.roles == ["provider"]
        assert created.created_at == NOW
        fetched = await service.get("EU.EORI.NL000000001")
        assert fetched.created_at == NOW
        assert fetched.created_at.tzinfo is not None
        with pytest.raises(Conflict):
            await service.create(
                ParticipantCreate(id="EU.EORI.NL000000001", name="Again", roles=["consumer"]),
                now=NOW,
            )
        later = NOW + timedelta(hours=1)
        changed = await service.update(
            "EU.EORI.NL000000001",
            ParticipantUpdate(roles=["provider", "operator"], status="suspended"),
            now=later,
        )
        assert changed.roles == ["operator", "provider"]
        assert changed.updated_at == later
        assert changed.name == "Maker"
        assert [p.id for p in await service.list()] == ["EU.EORI.NL000000001"]
        with pytest.raises(NotFound):
            await service.get("NTRNL-00000000")
        with pytest.raises(NotFound):
            await service.update("NTRNL-00000000", ParticipantUpdate(name="x"), now=NOW)
        with pytest.raises(Forbidden) as suspended:
            await service.authenticate(_identity("EU.EORI.NL000000001", frozenset()), "tls")
        assert suspended.value.code == "participant-suspended"
        await service.update("EU.EORI.NL000000001", ParticipantUpdate(status="active"), now=NOW)
        bound = await service.authenticate(
            _identity("EU.EORI.NL000000001", frozenset({"provider", "officer"})), "tls"
        )
        assert bound.effective_roles == {"provider"}
        with pytest.raises(Forbidden) as unknown:
            await service.authenticate(_identity("NTRNL-12345678", frozenset()), "proxy")
        assert unknown.value.code == "unknown-participant"
        await db.dispose()

    asyncio.run(run())


def test_unreachable_database_fails_closed() -> None:
    async def run() -> None:
        db = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")
        with pytest.raises(StorageUnavailable):
            await db.ping()
        with pytest.raises(StorageUnavailable):
            await ParticipantService(db).list()
        await db.dispose()

    asyncio.run(run())


@pytest.mark.parametrize("bad", ["", "NL000000001", "EU.EORI.", "../../etc", "ntrnl-1", "X" * 80])
def test_invalid_organisation_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="id"):
        ParticipantCreate(id=bad, name="x", roles=["consumer"])
