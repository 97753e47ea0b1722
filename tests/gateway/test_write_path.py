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
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select, text, update

from connectors import Format
from gateway.agreements import usage
from gateway.audit.checkpoint import verify_checkpoint
from gateway.audit.repository import EntryFilter
from gateway.errors import Forbidden
from gateway.storage import StorageUnavailable
from gateway.storage.db import Database
from gateway.storage.models import (
    GatewayInstanceRow,
    OpenExchangeRow,
    UsageBucketRow,
    UsageEventRow,
    UsageStateRow,
)
from gateway.storage.sql import insert_or_add
from tests.audit.logs import ORIGIN, SIGNER, assert_consistent
from tests.gateway.write_crash_child import OWNER
from tests.support.databases import database_url
from tests.support.exchange_world import (
    ASK,
    CALLER,
    LIMIT,
    PROVIDER,
    Replica,
    party,
    replicas,
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as found:
        yield found


async def _entries(replica: Replica) -> list[Any]:
    return [r.entry for r in await replica.log.entries(EntryFilter(limit=1000))]


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
        async with replicas(url) as (first, second):
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
        async with replicas(url, 1) as (replica,):
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


def test_a_count_remembered_by_one_replica_never_lets_it_overspend(url: str) -> None:
    """A replica decides on the use count it last saw committed (no read per request); the
    other replica spends the rest of the limit meanwhile: the first one's next request is
    refused by the conditional UPDATE at commit, denied and audited, and nothing more is
    spent. The refusal drops what it remembered: the next request reads the count and the
    policy refuses it before any UPDATE."""

    async def run() -> None:
        async with replicas(url) as (first, second):
            await first.query("limited")  # remembers 1
            for _ in range(LIMIT - 1):
                await second.query("limited")
            assert await _used(first.db, "limited") == LIMIT
            with pytest.raises(Forbidden) as refused:
                await first.query("limited")  # decided at 1, refused at commit
            assert refused.value.code == "policy-denied"
            seen: list[str] = []

            def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
                seen.append(" ".join(statement.split()).upper())

            spends: list[object] = []
            real_spend = usage.spend

            async def spend(*args: Any, **kwargs: Any) -> int | None:
                spends.append(args)  # on SQLite its UPDATE is one hop no statement hook sees
                return await real_spend(*args, **kwargs)

            engine = first.db.engine.sync_engine
            event.listen(engine, "before_cursor_execute", record)
            try:
                with pytest.MonkeyPatch.context() as patch:
                    patch.setattr(usage, "spend", spend)
                    with pytest.raises(Forbidden) as again:
                        await first.query("limited")
            finally:
                event.remove(engine, "before_cursor_execute", record)
            assert again.value.code == "policy-denied"
            assert any(s.startswith("SELECT") and "USAGE_STATE" in s for s in seen), seen
            assert not any(s.startswith("UPDATE USAGE_STATE") for s in seen), seen
            assert not spends  # refused by the policy before any spend was tried
            assert await _used(first.db, "limited") == LIMIT
            decisions = await _decisions(first, "limited")
            assert decisions.count("permit") == LIMIT
            assert decisions[-2:] == ["deny", "deny"]
            await assert_consistent(first.log)

    asyncio.run(run())


def test_a_policy_without_rates_reads_no_usage_in_the_steady_state(url: str) -> None:
    """Once a replica committed a use, its next requests under a policy without a rate
    limit or a privacy budget read nothing of the usage state: the count they decide on
    is the one it saw committed, and the spend's UPDATE enforces the limit (on SQLite one
    hop to the driver's thread, which no statement hook sees: the count shows it)."""

    async def run() -> tuple[list[str], int]:
        async with replicas(url, 1) as (replica,):
            await replica.query("limited")
            await replica.log.settled()
            before = await _used(replica.db, "limited")
            seen: list[str] = []

            def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
                seen.append(" ".join(statement.split()))

            engine = replica.db.engine.sync_engine
            event.listen(engine, "before_cursor_execute", record)
            try:
                await replica.query("limited")
                await replica.log.settled()
            finally:
                event.remove(engine, "before_cursor_execute", record)
            return seen, await _used(replica.db, "limited") - before

    seen, spent = asyncio.run(run())
    reads = [s for s in seen if s.upper().startswith("SELECT") and "usage_state" in s]
    assert not reads, reads
    assert spent == 1  # still spent


_OUTAGE = {
    "sqlite": [
        "CREATE TRIGGER outage BEFORE INSERT ON audit_entries "
        "BEGIN SELECT RAISE(ABORT, 'audit store down'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION outage() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'audit store down'; END $$",
        "CREATE TRIGGER outage BEFORE INSERT ON audit_entries "
        "FOR EACH ROW EXECUTE FUNCTION outage()",
    ],
}


def test_no_use_is_spent_when_the_decision_entry_cannot_be_written(url: str) -> None:
    """The audit store refuses the batch: 503, and the use and the open exchange with it."""

    async def run() -> None:
        async with replicas(url, 1) as (replica,):
            async with replica.db.session() as session:
                for statement in _OUTAGE[session.get_bind().dialect.name]:
                    await session.execute(text(statement))
            with pytest.raises(StorageUnavailable):
                await replica.query("open")
            assert await _used(replica.db, "open") == 0
            async with replica.db.session() as session:
                assert await session.scalar(select(func.count()).select_from(OpenExchangeRow)) == 0

    asyncio.run(run())


def test_an_exchange_a_crash_cut_off_is_recorded_at_the_next_start(url: str) -> None:
    """Permitted, started, never ended (no completion queued): the next start names it."""

    async def run() -> None:
        async with replicas(url, 1, owner="gw-1") as (replica,):
            outcome = await replica.exchange.query(CALLER, "open", ASK, Format.JSONL, source=None)
            assert outcome.first  # the data started; the process "dies" here
            async with replicas(url, 1, owner="gw-2", fresh=False) as (other,):
                assert await other.exchange.close_interrupted(now=datetime.now(UTC)) == 0
            async with replicas(url, 1, owner="gw-1", fresh=False) as (restarted,):
                assert await restarted.exchange.close_interrupted(now=datetime.now(UTC)) == 1
                assert await restarted.exchange.close_interrupted(now=datetime.now(UTC)) == 0
                entries = await _entries(restarted)
            permit = next(e for e in entries if e.event == "access-decision")
            (ended,) = [e for e in entries if e.event == "exchange-completed"]
            assert permit.request_id is not None
            assert ended.request_id == permit.request_id  # the entry names the decision
            assert ended.decision is not None
            assert ended.decision.reasons[0] == "interrupted"

    asyncio.run(run())


def test_the_exchanges_of_a_process_gone_for_good_are_recorded_by_another(url: str) -> None:
    """A process killed mid-exchange whose name never starts again (a replaced pod): any
    other replica's heartbeat records its open exchanges as interrupted once it has not been
    seen for ``instance_stale_after``, not before, and never a live process's."""
    stale = timedelta(minutes=5)

    async def run() -> None:
        async with replicas(url, 1, owner="gw-1") as (gone,):
            now = datetime.now(UTC)
            assert await gone.exchange.close_interrupted(now=now) == 0  # gw-1 seen now
            outcome = await gone.exchange.query(CALLER, "open", ASK, Format.JSONL, source=None)
            assert outcome.first  # the data started; the process "dies" here, for good
            async with (
                replicas(url, 1, owner="gw-2", fresh=False) as (other,),
                replicas(url, 1, owner="gw-3", fresh=False) as (alive,),
            ):
                live = await alive.exchange.query(CALLER, "open", ASK, Format.JSONL, source=None)
                assert live.first  # gw-3 keeps streaming, and keeps saying it is alive
                assert await other.exchange.heartbeat(now=now, stale_after=stale) == 0
                just_before = now + stale - timedelta(seconds=1)
                assert await other.exchange.heartbeat(now=just_before, stale_after=stale) == 0
                later = now + stale + timedelta(seconds=1)
                assert await alive.exchange.heartbeat(now=later, stale_after=stale) == 1
                assert await other.exchange.heartbeat(now=later, stale_after=stale) == 0  # once
                entries = await _entries(other)
                async with other.db.session() as session:
                    left = (await session.scalars(select(OpenExchangeRow.owner))).all()
                    seen = (await session.scalars(select(GatewayInstanceRow.name))).all()
            permits = [e for e in entries if e.event == "access-decision"]
            (ended,) = [e for e in entries if e.event == "exchange-completed"]
            assert ended.request_id == permits[0].request_id  # gw-1's, named by its decision
            assert ended.decision.reasons == (
                "interrupted",
                "its gateway process stopped being seen",
            )
            assert left == ["gw-3"]  # the live process's exchange stays open
            assert sorted(seen) == ["gw-2", "gw-3"]  # gw-1's row forgotten once stale

    asyncio.run(run())


def test_a_use_is_not_spent_once_the_agreement_ended(url: str) -> None:
    """A revocation that commits between the decision and its entry: no use, no permit."""

    async def run() -> None:
        async with replicas(url, 1) as (replica,):
            exchange = replica.exchange
            ctx = await exchange._prelude(CALLER, "open", None)
            decision, _, spend = await exchange._decide_and_spend(ctx, ASK, None)
            assert ctx.agreement is not None
            await replica.agreements.revoke(
                ctx.agreement.id, party(PROVIDER, "provider"), "", now=datetime.now(UTC)
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
        times = [now - timedelta(milliseconds=100 * i + 1) for i in range(n)]  # ~1,000 buckets
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


def test_statements_per_request_do_not_grow_with_earlier_uses(url: str) -> None:
    """10,000 earlier uses change nothing a request runs; a policy without a rate limit
    does not read use rows or rate buckets, one with a rate limit reads buckets only."""

    async def counted(replica: Replica, dataset: str) -> list[str]:
        seen: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if "registry_version" not in statement:  # the registry's poll: by time, not use
                seen.append(" ".join(statement.split()))

        engine = replica.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            await replica.query(dataset)
            await replica.log.settled()
        finally:
            event.remove(engine, "before_cursor_execute", record)
        return seen

    async def run() -> dict[str, tuple[list[str], list[str]]]:
        found: dict[str, tuple[list[str], list[str]]] = {}
        async with replicas(url, 1) as (replica,):
            for dataset in ("open", "rated"):
                await replica.query(dataset)  # warm: connector, compiled policy
                await replica.log.settled()  # its completion entry written
                before = await counted(replica, dataset)
                await _earlier_uses(replica.db, dataset, 10_000)
                found[dataset] = (before, await counted(replica, dataset))
        return found

    for dataset, (before, after) in asyncio.run(run()).items():
        assert len(after) == len(before), "\n".join([*before, "----", *after])
        reads = [s for s in before + after if s.upper().startswith("SELECT")]
        assert not any("usage_events" in s for s in reads)  # never read on the hot path
        buckets = any("usage_buckets" in s for s in reads)
        assert buckets is (dataset == "rated")  # rate counters only for a rate-limited policy


REPO = Path(__file__).resolve().parents[2]
ACKS_BEFORE_KILL = 60


def _run_and_kill(url: str) -> None:
    """The child exchanging under load, SIGKILLed once it finished enough requests."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.gateway.write_crash_child", url],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    try:
        for acks, _ in enumerate(child.stdout, start=1):
            if acks >= ACKS_BEFORE_KILL:
                os.kill(child.pid, signal.SIGKILL)
                break
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL


def test_kill_9_under_load_leaves_every_use_explained(url: str) -> None:
    """After a SIGKILL mid-load and a restart: each counted use has its permit entry, each
    permit one end (its completion, or the restart's ``interrupted``), the log verifies."""

    async def prepare() -> None:
        async with replicas(url, 1):
            pass

    async def after() -> None:
        async with replicas(url, 1, owner=OWNER, fresh=False) as (replica,):
            await replica.exchange.close_interrupted(now=datetime.now(UTC))
            entries = await _entries_all(replica)
            permits = [e for e in entries if e.event == "access-decision" and e.decision and
                       e.decision.result == "permit"]  # fmt: skip
            for dataset in ("open", "limited", "rated"):
                counted = await _used(replica.db, dataset)
                assert counted == sum(1 for e in permits if e.dataset == dataset), dataset
            ends = Counter(e.request_id for e in entries if e.event == "exchange-completed")
            assert all(ends[e.request_id] == 1 for e in permits)
            async with replica.db.session() as session:
                assert await session.scalar(select(func.count()).select_from(OpenExchangeRow)) == 0
            size = await assert_consistent(replica.log)
            latest = await replica.log.latest_checkpoint()
            assert latest is not None
            checkpoint = verify_checkpoint(latest.note, [SIGNER.verifier()], ORIGIN)
            assert checkpoint.root_hash == await replica.log.root_at(checkpoint.size)
            assert checkpoint.size <= size

    asyncio.run(prepare())
    _run_and_kill(url)
    asyncio.run(after())


async def _entries_all(replica: Replica) -> list[Any]:
    size = await replica.log.size()
    return [r.entry for r in await replica.log.entry_range(0, size)]
