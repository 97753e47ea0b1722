"""Usage state and agreement lifecycle under concurrency, on SQLite and PostgreSQL.

Two replicas (two connection pools on one database) race: for the last use, to create the
consumer's agreement, to move one agreement. And the usage state outlives agreements: a new
agreement continues the count and the start that elapsedTime measures from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, column, func, insert, select, table

from certs import CertificateIdentity
from gateway.agreements import usage
from gateway.agreements.schemas import AgreementRequest
from gateway.agreements.service import AgreementService, key_of
from gateway.agreements.usage import UsageKey
from gateway.audit.log import AuditLog
from gateway.datasets.factory import create_connector
from gateway.datasets.service import DatasetService
from gateway.errors import Conflict
from gateway.participants.schemas import Participant
from gateway.participants.service import AuthenticatedParticipant
from gateway.storage.db import MIGRATIONS, Database
from gateway.storage.models import AgreementRow, PolicyVersionRow, UTCDateTime
from tests.audit.logs import ORIGIN, SIGNER
from tests.support.databases import database_url
from tests.support.pki import NOW
from tests.support.registry import files_connector, register_dataset, register_participants

PROVIDER, CONSUMER = "NTRNL-10000001", "NTRNL-10000002"
PURPOSE = "https://w3id.org/dpv#AcademicResearch"
POLICY = """
uid: urn:sluis:policy:uses
type: Offer
target: urn:sluis:dataset:d
permissions: [{action: read}]
"""
ONE_DAY = """
uid: urn:sluis:policy:one-day
type: Offer
target: urn:sluis:dataset:d
permissions: [{action: read, constraints: [[elapsedTime, lteq, P1D]]}]
"""
CONNECTOR = files_connector()  # registration reads the file: it must exist


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as value:
        yield value


def _party(pid: str, role: str) -> AuthenticatedParticipant:
    participant = Participant(
        id=pid,
        name=pid,
        roles=[role],
        status="active",
        created_at=NOW,
        updated_at=NOW,  # type: ignore[list-item]
    )
    identity = CertificateIdentity(
        organization_id=pid, organization_name=pid, participant_uri=f"urn:sluis:participant:{pid}",
        roles=frozenset({role}), thumbprint_sha256="t", serial_number=1, subject="CN=x",
        issuer="CN=ca", not_after=NOW,
    )  # fmt: skip
    return AuthenticatedParticipant(participant, frozenset({role}), identity, "tls")


async def _world(db: Database, policy: str = POLICY, approval: str = "automatic") -> None:
    await db.upgrade()
    await register_participants(db, [(PROVIDER, "P", ["provider"]), (CONSUMER, "C", ["consumer"])])
    await register_dataset(
        db, "d", provider=PROVIDER, policy=policy, connector=CONNECTOR, approval=approval
    )


_AUDITS: dict[int, AuditLog] = {}  # one audit log per replica (database), closed with it


def _service(db: Database) -> AgreementService:
    audit = _AUDITS.setdefault(id(db), AuditLog(db, SIGNER, ORIGIN))
    return AgreementService(db, DatasetService(db, create_connector), audit)


async def _close(db: Database) -> None:
    audit = _AUDITS.pop(id(db), None)
    if audit is not None:
        await audit.close()
    await db.dispose()


async def _live_rows(db: Database) -> int:
    async with db.session() as session:
        live = AgreementRow.state.in_(("requested", "active"))
        return int(await session.scalar(select(func.count()).where(live)) or 0)


def _replicas(url: str, body: Callable[[Database, Database], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        first, second = Database(url), Database(url)  # two replicas, two connection pools
        try:
            return await body(first, second)
        finally:
            await _close(first)
            await _close(second)

    return asyncio.run(run())


async def _active(db: Database) -> tuple[str, UsageKey]:
    """The consumer's agreement for 'd', approved automatically, and its usage key."""
    asked = await _service(db).request(
        _party(CONSUMER, "consumer"), AgreementRequest(dataset="d", purpose=PURPOSE), now=NOW
    )
    assert asked.agreement.state == "active"
    return asked.agreement.id, key_of(asked.agreement)


def test_two_replicas_cannot_both_spend_the_last_use(url: str) -> None:
    """Ten attempts, two replicas, a cap of 2: exactly two count, each once, no retry."""

    async def body(first: Database, second: Database) -> list[int | None]:
        await _world(first)
        agreement_id, key = await _active(first)

        async def spend(db: Database) -> int | None:
            async with db.session() as session:
                return await usage.spend(session, key, NOW, agreement_id=agreement_id, cap=2)

        results = list(await asyncio.gather(*(spend(db) for db in (first, second) * 5)))
        async with first.session() as session:
            state = await usage.read(session, key, NOW - timedelta(days=1))
        assert state is not None
        assert (state.use_count, state.request_times) == (2, (NOW, NOW))
        return results

    outcomes = _replicas(url, body)
    assert sorted(o for o in outcomes if o is not None) == [1, 2]  # use 1 and use 2, once each


def test_a_revoked_agreement_spends_nothing(url: str) -> None:
    """A query decided before the revocation cannot spend (and so release) after it."""

    async def body(db: Database, _: Database) -> int | None:
        await _world(db)
        agreement_id, key = await _active(db)
        await _service(db).revoke(agreement_id, _party(PROVIDER, "provider"), "", now=NOW)
        async with db.session() as session:
            return await usage.spend(session, key, NOW, agreement_id=agreement_id, cap=None)

    assert _replicas(url, body) is None


def test_concurrent_requests_make_one_live_agreement(url: str) -> None:
    async def body(first: Database, second: Database) -> set[str]:
        await _world(first)
        ask = AgreementRequest(dataset="d", purpose=PURPOSE)
        consumer = _party(CONSUMER, "consumer")
        answers = await asyncio.gather(
            *(_service(db).request(consumer, ask, now=NOW) for db in (first, second) * 5)
        )
        assert await _live_rows(first) == 1
        return {getattr(a, "agreement", a).id for a in answers}

    assert len(_replicas(url, body)) == 1  # every request answered with the same agreement


def test_concurrent_transitions_only_one_wins(url: str) -> None:
    """Approve, reject, revoke and terminate race for one requested agreement."""

    async def body(first: Database, second: Database) -> list[object]:
        await _world(first, approval="manual")
        consumer, provider = _party(CONSUMER, "consumer"), _party(PROVIDER, "provider")
        asked = await _service(first).request(
            consumer, AgreementRequest(dataset="d", purpose=PURPOSE), now=NOW
        )
        agreement_id = getattr(asked, "agreement", asked).id

        def moves(db: Database) -> list[Awaitable[object]]:
            service = _service(db)
            return [
                service.approve(agreement_id, provider, now=NOW),
                service.reject(agreement_id, provider, "no", now=NOW),
                service.revoke(agreement_id, provider, "no", now=NOW),
                service.terminate(agreement_id, consumer, "done", now=NOW),
            ]

        return list(await asyncio.gather(*moves(first), *moves(second), return_exceptions=True))

    outcomes = _replicas(url, body)
    assert all(isinstance(o, Conflict) for o in outcomes if isinstance(o, BaseException))
    won = [("approve", "reject", "revoke", "terminate")[i % 4] for i, o in enumerate(outcomes)
           if not isinstance(o, BaseException)]  # fmt: skip
    # Exactly one move out of "requested" wins. A revoke or terminate may win after an
    # approval, if it ran once the approval had committed: a later transition, not a lost race.
    allowed = [{"approve"}, {"reject"}, {"revoke"}, {"terminate"}]
    allowed += [{"approve", "revoke"}, {"approve", "terminate"}]
    assert len(won) == len(set(won)), won  # no move wins twice (the two replicas)
    assert set(won) in allowed, won


def test_a_new_agreement_does_not_restart_elapsed_time(url: str) -> None:
    """[elapsedTime, lteq, P1D]: the day runs from the first agreement, not from the newest."""

    async def body(first: Database, _: Database) -> list[str]:
        await _world(first, policy=ONE_DAY)
        service, consumer = _service(first), _party(CONSUMER, "consumer")
        ask = AgreementRequest(dataset="d", purpose=PURPOSE)
        states = []
        for day in (0, 2):
            asked = await service.request(consumer, ask, now=NOW + timedelta(days=day))
            agreement = getattr(asked, "agreement", asked)
            states.append(agreement.state)
            if agreement.state == "active":
                await service.terminate(
                    agreement.id, consumer, "", now=NOW + timedelta(days=day, hours=1)
                )
        return states

    assert _replicas(url, body) == ["active", "rejected"]


def _migrate(db: Database, revision: str) -> Awaitable[None]:
    def upgrade(connection: Connection) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async def run() -> None:
        async with db.engine.begin() as conn:
            await conn.run_sync(upgrade)

    return run()


def test_migration_carries_uses_over_and_keeps_one_live_agreement(url: str) -> None:
    """Data from before 0006: two live agreements (the old reset), three uses between them."""
    uses = table(
        "agreement_uses", column("agreement_id"), column("seq"), column("at", UTCDateTime())
    )

    async def body(db: Database, _: Database) -> None:
        await _migrate(db, "0005")
        await register_participants(
            db, [(PROVIDER, "P", ["provider"]), (CONSUMER, "C", ["consumer"])]
        )
        await register_dataset(db, "d", provider=PROVIDER, policy=POLICY, connector=CONNECTOR)
        async with db.session() as session:
            digest = str(await session.scalar(select(PolicyVersionRow.hash)))
            for n, (agreement_id, used) in enumerate([("agr-old", 2), ("agr-new", 1)]):
                await session.execute(insert(AgreementRow.__table__).values(
                    id=agreement_id, dataset_id="d", consumer_id=CONSUMER, purpose=PURPOSE,
                    state="active", policy_hash=digest, reason=None, use_count=used,
                    created_at=NOW + timedelta(hours=n), updated_at=NOW, decided_at=NOW,
                ))  # fmt: skip
            await session.execute(insert(uses), [
                {"agreement_id": "agr-old", "seq": 1, "at": NOW + timedelta(minutes=1)},
                {"agreement_id": "agr-new", "seq": 1, "at": NOW + timedelta(minutes=90)},
                {"agreement_id": "agr-old", "seq": 2, "at": NOW + timedelta(minutes=2)},
            ])  # fmt: skip
        await _migrate(db, "head")
        async with db.session() as session:
            states = dict(
                (await session.execute(select(AgreementRow.id, AgreementRow.state))).all()
            )
            assert states == {"agr-old": "terminated", "agr-new": "active"}
            state = await usage.read(session, UsageKey(CONSUMER, "d", digest), NOW)
        assert state is not None
        assert state.use_count == 3
        assert state.started_at == NOW  # the oldest agreement's start
        assert [t - NOW for t in state.request_times] == [timedelta(minutes=m) for m in (1, 2, 90)]
        consumer = _party(CONSUMER, "consumer")
        asked = await _service(db).request(
            consumer, AgreementRequest(dataset="d", purpose=PURPOSE), now=NOW
        )
        assert (asked.existing, asked.agreement.id, asked.agreement.use_count) == (
            True, "agr-new", 3,
        )  # fmt: skip

    _replicas(url, body)


def test_a_use_is_spent_in_one_hop_to_the_sqlite_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite the spend's conditional UPDATE is one call on the driver's thread (through
    SQLAlchemy's connection it was four: cursor, execute, fetch, close); it counts the same:
    the new count while below the cap, None (nothing changed) at the cap."""
    hops: list[str] = []
    real = aiosqlite.Connection._execute
    mine: list[aiosqlite.Connection] = []  # the spending session's: another task's hops aside

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if self in mine:
            hops.append(getattr(fn, "__name__", "?"))
        return await real(self, fn, *args, **kwargs)

    async def staged(*_: Any) -> None:  # the use's row: written with the batch, not counted here
        return None

    async def body(db: Database, _: Database) -> list[tuple[int | None, int]]:
        await _world(db)
        agreement_id, key = await _active(db)
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
        monkeypatch.setattr(usage, "stage", staged)
        found = []
        for _attempt in range(3):
            async with db.session() as session:
                connection = await session.connection()  # begun before the count starts
                mine[:] = [(await connection.get_raw_connection()).driver_connection]
                hops.clear()
                spent = await usage.spend(session, key, NOW, agreement_id=agreement_id, cap=2)
                found.append((spent, len(hops)))
                await session.commit()
        return found

    with database_url("sqlite", tmp_path) as url:
        assert _replicas(url, body) == [(1, 1), (2, 1), (None, 1)]
