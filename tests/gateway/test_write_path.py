"""The exchange's write path (issue 10): one use and its decision entry commit together.

Real SQLite and PostgreSQL; two replicas are two connection pools, two audit logs and two
exchange services on one database. The use is the decision entry's effect: a conditional
increment in the log's batch transaction, so parallel requests never get a 409, a limit of
N spends exactly N across replicas, and a use the store refuses at commit is a denial that
is itself audited. The statement count of a request does not grow with earlier uses, and a
policy without a rate limit never reads usage rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import metrics, trace
from sqlalchemy import event, func, insert, select, update

from certs import CertificateIdentity
from connectors import Format, Query
from gateway.agreements.schemas import AgreementRequest
from gateway.agreements.service import AgreementService
from gateway.audit.log import AuditLog
from gateway.audit.repository import EntryFilter
from gateway.auth.tokens import AccessClaims
from gateway.datasets.factory import create_connector
from gateway.datasets.service import DatasetService
from gateway.errors import Forbidden
from gateway.exchange.service import ExchangeService
from gateway.oauth.service import TokenCaller
from gateway.participants.schemas import Participant
from gateway.participants.service import AuthenticatedParticipant
from gateway.storage.db import Database
from gateway.storage.models import UsageBucketRow, UsageEventRow, UsageStateRow
from gateway.storage.sql import insert_or_add
from gateway.telemetry import Telemetry
from tests.audit.logs import ORIGIN, SIGNER, assert_consistent
from tests.support.databases import database_url
from tests.support.pki import NOW
from tests.support.registry import files_connector, register_dataset, register_participants

PROVIDER, CONSUMER = "NTRNL-10000001", "NTRNL-10000002"
PURPOSE = "https://w3id.org/dpv#AcademicResearch"
LIMIT = 5
LIMITED = f"""
uid: urn:sluis:policy:limited
type: Offer
target: urn:sluis:dataset:limited
permissions: [{{action: read, constraints: [[count, lteq, {LIMIT}]]}}]
"""
OPEN = """
uid: urn:sluis:policy:open
type: Offer
target: urn:sluis:dataset:open
permissions: [{action: read}]
"""
RATED = """
uid: urn:sluis:policy:rated
type: Offer
target: urn:sluis:dataset:rated
permissions: [{action: read, data: {rate_limit: 100000/P1D}}]
"""
ASK = Query(columns=("machine",))
DATASETS = {"limited": LIMITED, "open": OPEN, "rated": RATED}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as found:
        yield found


def _party(pid: str, role: str) -> AuthenticatedParticipant:
    participant = Participant(
        id=pid, name=pid, roles=[role], status="active", created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    identity = CertificateIdentity(
        organization_id=pid, organization_name=pid, participant_uri=f"urn:sluis:participant:{pid}",
        roles=frozenset({role}), thumbprint_sha256="t", serial_number=1, subject="CN=x",
        issuer="CN=ca", not_after=NOW,
    )  # fmt: skip
    return AuthenticatedParticipant(participant, frozenset({role}), identity, "tls")


CALLER = TokenCaller(
    _party(CONSUMER, "consumer"),
    AccessClaims(
        issuer="i", subject=CONSUMER, client_id=CONSUMER, audience=("a",),
        scopes=frozenset(f"dataset:{d}" for d in DATASETS), jti="j", issued_at=0,
        expires_at=2**40, thumbprint="t",
    ),
)  # fmt: skip


@dataclass
class Replica:
    db: Database
    log: AuditLog
    agreements: AgreementService
    exchange: ExchangeService

    async def query(self, dataset: str) -> None:
        """One query, read to its end (the completion entry queued)."""
        outcome = await self.exchange.query(CALLER, dataset, ASK, Format.JSONL, source=None)
        async for _ in outcome.rest:
            pass
        await outcome.rest.aclose()


@asynccontextmanager
async def _replicas(url: str, count: int = 2) -> AsyncIterator[list[Replica]]:
    """``count`` replicas on one database, which gets the participants and datasets first."""
    setup = Database(url)
    await setup.upgrade()
    await register_participants(
        setup, [(PROVIDER, "P", ["provider"]), (CONSUMER, "C", ["consumer"])]
    )
    connector = files_connector()
    for dataset, policy in DATASETS.items():
        await register_dataset(
            setup, dataset, provider=PROVIDER, policy=policy, connector=connector
        )
    await setup.dispose()
    telemetry = Telemetry(trace.NoOpTracerProvider(), metrics.NoOpMeterProvider())
    replicas = []
    for _ in range(count):
        db = Database(url)
        datasets = DatasetService(db, create_connector)
        log = AuditLog(db, SIGNER, ORIGIN)
        agreements = AgreementService(db, datasets, log)
        replicas.append(
            Replica(db, log, agreements, ExchangeService(db, datasets, agreements, log, telemetry))
        )
    try:
        for dataset in DATASETS:
            asked = await replicas[0].agreements.request(
                _party(CONSUMER, "consumer"), AgreementRequest(dataset=dataset, purpose=PURPOSE),
                now=datetime.now(UTC),
            )  # fmt: skip
            assert asked.agreement.state == "active"
        yield replicas
    finally:
        for replica in replicas:
            await replica.log.close()
            await replica.db.dispose()


async def _decisions(replica: Replica, dataset: str) -> list[str]:
    entries = [r.entry for r in await replica.log.entries(EntryFilter(limit=1000))]
    return [
        e.decision.result
        for e in entries
        if e.event == "access-decision" and e.dataset == dataset and e.decision
    ]


async def _used(db: Database, dataset: str) -> int:
    async with db.session() as session:
        found = await session.scalar(
            select(UsageStateRow.use_count).where(UsageStateRow.dataset_id == dataset)
        )
    return int(found or 0)


def test_32_parallel_requests_on_two_replicas_spend_exactly_the_limit(url: str) -> None:
    """No 409, no 503: the policy's limit decides, once per use, across replicas."""

    async def run() -> list[object]:
        async with _replicas(url) as (first, second):
            outcomes = await asyncio.gather(
                *(r.query("limited") for r in (first, second) * 16), return_exceptions=True
            )
            assert await _used(first.db, "limited") == LIMIT
            results = await _decisions(first, "limited")
            assert results.count("permit") == LIMIT  # every counted use has its permit
            assert results.count("deny") == 32 - LIMIT  # and every refusal its entry
            await assert_consistent(first.log)
            return list(outcomes)

    outcomes = asyncio.run(run())
    assert outcomes.count(None) == LIMIT
    refused = [o for o in outcomes if o is not None]
    assert all(isinstance(o, Forbidden) and o.code == "policy-denied" for o in refused), refused


def test_a_use_refused_at_commit_is_a_denial_and_audited(url: str) -> None:
    """Decided at the same count, the one that commits second finds the limit reached."""

    async def run() -> None:
        async with _replicas(url, 1) as (replica,):
            for _ in range(LIMIT - 1):
                await replica.query("limited")
            exchange = replica.exchange
            ctxs = [await exchange._prelude(CALLER, "limited", None) for _ in range(2)]
            decided = [await exchange._decide_and_spend(c, ASK, None) for c in ctxs]
            await exchange._permit(ctxs[0], decided[0][0], decided[0][2])
            with pytest.raises(Forbidden) as refused:
                await exchange._permit(ctxs[1], decided[1][0], decided[1][2])
            assert refused.value.code == "policy-denied"
            assert await _used(replica.db, "limited") == LIMIT
            assert (await _decisions(replica, "limited"))[-2:] == ["permit", "deny"]

    asyncio.run(run())


def test_a_use_is_not_spent_once_the_agreement_ended(url: str) -> None:
    """A revocation that commits between the decision and its entry: no use, no permit."""

    async def run() -> None:
        async with _replicas(url, 1) as (replica,):
            exchange = replica.exchange
            ctx = await exchange._prelude(CALLER, "open", None)
            decision, _, spend = await exchange._decide_and_spend(ctx, ASK, None)
            assert ctx.agreement is not None
            await replica.agreements.revoke(
                ctx.agreement.id, _party(PROVIDER, "provider"), "", now=datetime.now(UTC)
            )
            with pytest.raises(Forbidden) as refused:
                await exchange._permit(ctx, decision, spend)
            assert refused.value.code == "no-agreement"
            assert await _used(replica.db, "open") == 0
            assert (await _decisions(replica, "open"))[-1] == "deny"

    asyncio.run(run())


async def _earlier_uses(db: Database, dataset: str, n: int) -> None:
    """``n`` uses spread over the last day, as the exchange would have left them."""
    now = datetime.now(UTC)
    async with db.session() as session:
        key = (await session.execute(select(UsageStateRow).where(
            UsageStateRow.dataset_id == dataset))).scalar_one()  # fmt: skip
        columns = {"consumer_id": key.consumer_id, "dataset_id": dataset,
                   "policy_hash": key.policy_hash}  # fmt: skip
        base = key.use_count
        times = [now - timedelta(seconds=8 * i + 1) for i in range(n)]
        events = [{**columns, "seq": base + i + 1, "at": t} for i, t in enumerate(times)]
        await session.execute(insert(UsageEventRow), events)
        buckets: dict[tuple[int, int], int] = {}
        for t in times:
            for width in (1, 60, 3600, 86400):
                at = (width, int(t.timestamp()) // width)
                buckets[at] = buckets.get(at, 0) + 1
        rows = [{**columns, "width": w, "bucket": b, "uses": u} for (w, b), u in buckets.items()]
        for first in range(0, len(rows), 1000):  # PostgreSQL takes at most 32767 parameters
            await insert_or_add(session, UsageBucketRow, rows[first : first + 1000], "uses")
        await session.execute(
            update(UsageStateRow).where(UsageStateRow.dataset_id == dataset)
            .values(use_count=UsageStateRow.use_count + n)
        )  # fmt: skip


@pytest.mark.parametrize("dataset", ["open", "rated"])
def test_statements_per_request_do_not_grow_with_earlier_uses(url: str, dataset: str) -> None:
    async def counted(replica: Replica) -> list[str]:
        seen: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            seen.append(" ".join(statement.split()))

        engine = replica.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            await replica.query(dataset)
            await replica.log.settled()
        finally:
            event.remove(engine, "before_cursor_execute", record)
        return seen

    async def run() -> tuple[list[str], list[str]]:
        async with _replicas(url, 1) as (replica,):
            await replica.query(dataset)  # warm: connector, compiled policy, first checkpoint
            await replica.log.settled()
            before = await counted(replica)
            await _earlier_uses(replica.db, dataset, 10_000)
            after = await counted(replica)
            async with replica.db.session() as session:
                total = await session.scalar(select(func.count()).select_from(UsageEventRow))
            assert (total or 0) > 10_000
            return before, after

    before, after = asyncio.run(run())
    assert len(after) == len(before), "\n".join([*before, "----", *after])
    reads = [s for s in before + after if s.upper().startswith("SELECT")]
    assert not any("usage_events" in s for s in reads)  # never read on the hot path
    buckets = any("usage_buckets" in s for s in reads)
    assert buckets is (dataset == "rated")  # rate counters only for a rate-limited policy
