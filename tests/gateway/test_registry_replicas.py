"""Issue 10, across replicas: a change made through one applies in the other within the bound.

On SQLite (one file) and PostgreSQL. The writer is another engine whose URL is spelt
differently, so the in-process signal does not reach the reader: only the database's
``registry_version`` does, as for another process or another pod. Each change is made by
the storage function its service runs inside the audited commit. For each: a lookup the
reader begins later than ``bound`` after the commit sees the change (waited for in a
deadline loop; by construction that holds however loaded the machine is). And fail closed:
when the reader can no longer confirm its registry, lookups refuse after the bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession

from certs import CertificateIdentity
from gateway.agreements import repository as agreements
from gateway.auth.windows import TOKEN_LEEWAY
from gateway.datasets.factory import create_connector
from gateway.datasets.schemas import DatasetSpec
from gateway.datasets.service import DatasetService, parse, store_dataset
from gateway.errors import NotFound
from gateway.oauth import repository as oauth
from gateway.participants.schemas import ParticipantCreate, ParticipantUpdate
from gateway.participants.service import (
    ParticipantService,
    create_participant,
    update_participant,
)
from gateway.registry import Registry, Snapshot, registry_of
from gateway.storage import StorageUnavailable
from gateway.storage.db import Database
from gateway.storage.models import AgreementRow
from policies import policy_hash
from tests.support.databases import database_url
from tests.support.pki import NOW
from tests.support.registry import files_connector, register_dataset, register_participants

MAKER = "EU.EORI.NL000000011"
UNIVERSITY = "NTRNL-40000011"
POLICY = """
uid: urn:sluis:policy:maker:open
type: Offer
target: urn:sluis:dataset:open
permissions:
  - action: read
    assignee: urn:sluis:participant:NTRNL-40000011
"""
STRICTER = POLICY.replace("action: read", "action: read\n    constraints: [[count, lteq, 1]]")
Change = Callable[[AsyncSession], Awaitable[object]]


@dataclass(frozen=True)
class Store:
    url: str  # the reader's
    elsewhere: str  # the same database, spelt so that this process's signal does not match


def _elsewhere(url: str, home: Path) -> str:
    if url.startswith("sqlite"):
        return f"sqlite+aiosqlite:///{home}/./sluis.db"
    return url.replace("@127.0.0.1:", "@localhost:", 1)


async def _seed(url: str) -> None:
    db = Database(url)
    try:
        await db.upgrade()
        await register_participants(
            db, [(MAKER, "Maker", ["provider"]), (UNIVERSITY, "Uni", ["consumer"])]
        )
        await register_dataset(db, "open", provider=MAKER, policy=POLICY,
                               connector=files_connector())  # fmt: skip
    finally:
        await db.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    home = tmp_path_factory.mktemp(f"replicas-{request.param}")
    with database_url(request.param, home) as url:
        asyncio.run(_seed(url))
        yield Store(url, _elsewhere(url, home))


async def _write(url: str, change: Change) -> None:
    db = Database(url)
    try:
        async with db.session() as session:
            await change(session)
    finally:
        await db.dispose()


async def _applied_within_bound(
    store: Store, change: Change, seen: Callable[[Snapshot], bool]
) -> None:
    db = Database(store.url)
    replica = Registry(db)
    await replica.start()
    try:
        assert not seen(await replica.current())
        await _write(store.elsewhere, change)  # another replica's transaction, committed
        committed = time.monotonic()
        while True:
            begun = time.monotonic()
            if seen(await replica.current()):
                return
            assert begun - committed <= replica.bound, "an old registry served past the bound"
            await asyncio.sleep(0.02)
    finally:
        await replica.close()
        await db.dispose()


def test_a_suspension_applies_in_the_other_replica(store: Store) -> None:
    async def suspend(session: AsyncSession) -> object:
        data = ParticipantUpdate(status="suspended")
        return await update_participant(session, UNIVERSITY, data, now=NOW)

    def suspended(snapshot: Snapshot) -> bool:
        return snapshot.participants[UNIVERSITY].status == "suspended"

    asyncio.run(_applied_within_bound(store, suspend, suspended))
    back = ParticipantUpdate(status="active")
    asyncio.run(_write(store.url, lambda s: update_participant(s, UNIVERSITY, back, now=NOW)))


def test_a_token_revocation_applies_in_the_other_replica(store: Store) -> None:
    expires = datetime.now(UTC) + timedelta(minutes=5)

    async def revoke(session: AsyncSession) -> object:
        return await oauth.revoke(session, "jti-replicas", expires, datetime.now(UTC))

    asyncio.run(_applied_within_bound(store, revoke, lambda s: "jti-replicas" in s.revoked))


def test_a_revoked_token_past_exp_but_within_its_leeway_stays_revoked(store: Store) -> None:
    """A token is accepted until exp + TOKEN_LEEWAY: its revocation must be held that long."""
    expired = datetime.now(UTC) - timedelta(seconds=TOKEN_LEEWAY // 2)

    async def revoke(session: AsyncSession) -> object:
        return await oauth.revoke(session, "jti-leeway", expired, datetime.now(UTC))

    asyncio.run(_applied_within_bound(store, revoke, lambda s: "jti-leeway" in s.revoked))


def test_an_agreement_revocation_applies_in_the_other_replica(store: Store) -> None:
    asyncio.run(_write(store.url, _activate_agreement))

    async def revoke(session: AsyncSession) -> object:
        return await agreements.move(
            session, "agr-replicas", ("active",), "revoked", reason="ended", now=NOW
        )

    asyncio.run(
        _applied_within_bound(store, revoke, lambda s: (UNIVERSITY, "open") not in s.agreements)
    )


async def _activate_agreement(session: AsyncSession) -> None:
    digest = await session.execute(text("SELECT policy_hash FROM datasets WHERE id = 'open'"))
    session.add(
        AgreementRow(
            id="agr-replicas", dataset_id="open", consumer_id=UNIVERSITY, purpose="urn:x:y",
            state="active", policy_hash=digest.scalar_one(), reason=None, use_count=0,
            created_at=NOW, updated_at=NOW, decided_at=NOW,
        )
    )  # fmt: skip


def test_a_policy_change_applies_in_the_other_replica(store: Store) -> None:
    policy = parse(STRICTER, "yaml")
    spec = DatasetSpec(id="open", title="open", provider=MAKER, policy="inline",
                       connector=files_connector())  # fmt: skip

    async def change(session: AsyncSession) -> object:
        return await store_dataset(session, spec, STRICTER, "yaml", policy, now=NOW)

    def changed(snapshot: Snapshot) -> bool:
        return snapshot.datasets["open"].policy_hash == policy_hash(policy)

    asyncio.run(_applied_within_bound(store, change, changed))


def test_lookups_waiting_past_the_bound_share_one_confirmation(store: Store) -> None:
    """32 lookups finding the registry unconfirmed at once ask the database once or twice
    (each is served by a question begun after it asked), not once each: under load the
    poll runs late, and a question per lookup made every request pay a SELECT."""

    async def run() -> tuple[int, int]:
        db = Database(store.url)
        replica = Registry(db)  # not started: no poll, only the lookups ask
        asked: list[str] = []

        def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
            if "registry_version" in statement:
                asked.append(statement)

        try:
            await replica.current()
            event.listen(db.engine.sync_engine, "before_cursor_execute", count)
            replica.bound = 0.0  # every lookup from now on finds it unconfirmed
            served = await asyncio.gather(*(replica.current() for _ in range(32)))
            return len(asked), len({id(s) for s in served})
        finally:
            await db.dispose()

    questions, snapshots = asyncio.run(run())
    assert 1 <= questions <= 2
    assert snapshots == 1


def test_a_replica_that_cannot_confirm_its_registry_refuses_after_the_bound(store: Store) -> None:
    """Last in the module: the version row goes away (as if the database were unreachable)."""

    async def run() -> None:
        db = Database(store.url)
        replica = Registry(db)
        await replica.start()
        try:
            await replica.current()
            await _write(store.elsewhere, _hide_version)
            broken = time.monotonic()
            while True:
                begun = time.monotonic()
                try:
                    await replica.current()
                except StorageUnavailable:
                    return
                assert begun - broken <= replica.bound, "an unconfirmed registry served"
                await asyncio.sleep(0.02)
        finally:
            await replica.close()
            await db.dispose()
            await _write(store.elsewhere, _restore_version)

    asyncio.run(run())


async def _hide_version(session: AsyncSession) -> None:
    await session.execute(text("ALTER TABLE registry_version RENAME TO registry_version_away"))


async def _restore_version(session: AsyncSession) -> None:
    await session.execute(text("ALTER TABLE registry_version_away RENAME TO registry_version"))


def test_what_another_replica_granted_a_moment_ago_is_served_at_once(store: Store) -> None:
    """A lookup that would refuse asks the database first: no wait for the poll."""

    async def run() -> tuple[str, str]:
        db = Database(store.url)
        registry = registry_of(db)
        registry.bound = 3600.0  # and no poll: only the refusal's own question can see it
        try:
            datasets = DatasetService(db, create_connector)
            with pytest.raises(NotFound):
                await datasets.get("later")
            writer = Database(store.elsewhere)
            try:
                await register_dataset(
                    writer, "later", provider=MAKER,
                    policy=POLICY.replace("dataset:open", "dataset:later"),
                    connector=files_connector(),
                )  # fmt: skip
            finally:
                await writer.dispose()
            found = await datasets.get("later")
            holder = await ParticipantService(db).authenticate(_identity(LATE), "tls")
            return found.id, holder.participant.id
        finally:
            await db.dispose()

    asyncio.run(_write(store.elsewhere, _add_late_participant))
    assert asyncio.run(run()) == ("later", LATE)


LATE = "NTRNL-40000012"


async def _add_late_participant(session: AsyncSession) -> None:
    data = ParticipantCreate(id=LATE, name="Late", roles=["consumer"])
    await create_participant(session, data, now=NOW)


def _identity(org: str) -> CertificateIdentity:
    return CertificateIdentity(
        organization_id=org, organization_name="Late",
        participant_uri=f"urn:sluis:participant:{org}", roles=frozenset({"consumer"}),
        thumbprint_sha256="x" * 43, serial_number=1,
        subject="CN=Late", issuer="CN=CA", not_after=datetime.now(UTC) + timedelta(days=1),
    )  # fmt: skip
