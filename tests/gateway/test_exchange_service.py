"""The audited exchange's own contract, entry by entry (issue 18: mutation testing).

``ExchangeService`` on a real SQLite database and audit log, called in process (no HTTP):
what each permit, denial and completion entry holds, field by field; the refusals' codes
and sentences; the use count it remembers; how a stream ends exactly once. The end-to-end
tests (``test_exchange.py``, over mTLS) show the same paths through the API; these pin the
details a refactor could change without any of those noticing.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import event, text

from certs import participant_uri
from connectors import Connector, ConnectorError, Format, Query, narrow
from connectors.errors import SourceRejected, UnknownColumn
from connectors.query import AggFunc, Aggregate, Op, Predicate
from connectors.testing import InMemoryConnector
from gateway.agreements import usage
from gateway.agreements.schemas import AgreementRequest
from gateway.agreements.service import AgreementService, key_of
from gateway.audit.entry import Actor, AuditEntry, PrivacyRecord
from gateway.audit.log import AuditLog
from gateway.audit.repository import EntryFilter
from gateway.auth.tokens import AccessClaims, TokenRejected
from gateway.datasets.cache import ClosingCache
from gateway.datasets.factory import create_connector
from gateway.datasets.service import DatasetService
from gateway.errors import BadRequest, Forbidden, NotFound
from gateway.exchange import private, repository
from gateway.exchange.service import ExchangeService, Rest, _Stats
from gateway.oauth.service import TokenCaller
from gateway.storage import StorageUnavailable
from gateway.storage.db import Database
from gateway.telemetry import SPAN_AUDIT, SPAN_CONNECTOR, SPAN_POLICY, configure
from policies import DataLimits
from tests.audit.logs import ORIGIN, SIGNER
from tests.support.exchange_world import party
from tests.support.registry import register_dataset, register_participants
from tests.support.upstream import Upstream

PROVIDER, CONSUMER = "NTRNL-20000001", "NTRNL-20000002"
PURPOSE = "https://w3id.org/dpv#AcademicResearch"
ROWS = {
    "machine": ["X200", "X300", "X400"],
    "temp_c": [61.5, 70.25, 80.0],
    "owner": ["a", "b", "c"],
    "site": ["s1", "s2", "s3"],
}
COLUMNS = """
uid: urn:sluis:policy:columns
type: Offer
target: urn:sluis:dataset:columns
permissions:
  - action: read
    constraints: [[count, lteq, 2], [purpose, isAnyOf, ["https://w3id.org/dpv#AcademicResearch"]]]
    data: {columns: [machine, temp_c]}
"""
AGGREGATES = """
uid: urn:sluis:policy:aggregates
type: Offer
target: urn:sluis:dataset:aggregates
permissions:
  - action: read
    data: {columns: [machine, temp_c], min_group_size: 2}
"""
MISFIT = """
uid: urn:sluis:policy:misfit
type: Offer
target: urn:sluis:dataset:misfit
permissions: [{action: read, data: {row_filter: "nosuch = 'x'"}}]
"""
DOWN = """
uid: urn:sluis:policy:down
type: Offer
target: urn:sluis:dataset:down
permissions: [{action: read}]
"""
ORDERS = [{"order": 1, "customer": "Secret BV"}, {"order": 2, "customer": "Hidden NV"}]
API = """
uid: urn:sluis:policy:api
type: Offer
target: urn:sluis:dataset:api
permissions: [{action: read, data: {columns: [order, kind]}}]
"""
RATED = """
uid: urn:sluis:policy:rated
type: Offer
target: urn:sluis:dataset:rated
permissions: [{action: read, data: {rate_limit: 2/PT1H, max_rows: 5}}]
"""
PRIVATE = """
uid: urn:sluis:policy:private
type: Offer
target: urn:sluis:dataset:private
permissions:
  - action: read
    data:
      columns: [machine, temp_c]
      min_group_size: 1
      privacy_unit: owner
      privacy_budget: 1.0/P30D
      query_epsilon: 0.25
      query_delta: 1.0e-6
      bounds: {temp_c: [0, 100]}
"""
MANY = "uid: urn:sluis:policy:many\ntype: Offer\ntarget: urn:sluis:dataset:many\n" + (
    "permissions:\n"
    + "".join(
        f"  - {{uid: 'urn:sluis:policy:many#{i}', action: read, constraints: [[count, lteq, 1]]}}\n"
        for i in range(30)
    )
)  # one use, then 30 permissions explain why not
POLICIES = {
    "columns": COLUMNS, "aggregates": AGGREGATES, "rated": RATED, "private": PRIVATE, "many": MANY,
}  # fmt: skip
ASK = Query(columns=("machine", "temp_c"))


def _caller(*datasets: str) -> TokenCaller:
    return TokenCaller(
        party(CONSUMER, "consumer"),
        AccessClaims(
            issuer="i", subject=CONSUMER, client_id="client-7", audience=("a",),
            scopes=frozenset(f"dataset:{d}" for d in datasets), jti="j", issued_at=0,
            expires_at=2**40, thumbprint="t",
        ),
    )  # fmt: skip


CALLER = _caller(*POLICIES, "missing", "unagreed", "api", "bare", "down", "misfit")


@dataclass
class World:
    db: Database
    log: AuditLog
    agreements: AgreementService
    exchange: ExchangeService
    upstream: Upstream
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader

    def decisions(self) -> dict[tuple[str, str], int]:
        """The ``sluis.decisions`` counter by (result, reason)."""
        found: dict[tuple[str, str], int] = {}
        data = self.metrics.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == "sluis.decisions":
                        for point in metric.data.data_points:
                            attrs = dict(point.attributes or {})
                            key = (str(attrs.get("result")), str(attrs.get("reason")))
                            found[key] = int(point.value)  # type: ignore[union-attr]
        return found

    async def entries(self) -> list[AuditEntry]:
        return [r.entry for r in await self.log.entries(EntryFilter(limit=1000))]

    async def last(self, event: str = "access-decision") -> AuditEntry:
        await self.log.settled()
        return [e for e in await self.entries() if e.event == event][-1]


@dataclass(frozen=True)
class Seed:
    """A database of its own for one test, copied from the module's template."""

    url: str
    upstream: Upstream


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Upstream]]:
    """The world, set up once: migrated, registered and agreed (seconds); each test starts
    from a copy of its database file."""
    home = tmp_path_factory.mktemp("exchange-service")
    upstream = _upstream()
    try:
        asyncio.run(_set_up(home, upstream))
        yield home / "sluis.db", upstream
    finally:
        upstream.close()


@pytest.fixture
def seed(template: tuple[Path, Upstream], tmp_path: Path) -> Seed:
    database, upstream = template
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{database}{suffix}").exists():
            shutil.copyfile(f"{database}{suffix}", tmp_path / f"sluis.db{suffix}")
    upstream.hits.clear()
    return Seed(f"sqlite+aiosqlite:///{tmp_path / 'sluis.db'}", upstream)


async def _set_up(home: Path, upstream: Upstream) -> None:
    """The datasets over one Parquet file, agreed by the consumer; ``unagreed`` too,
    without an agreement; ``api`` over the loopback upstream."""
    pq.write_table(pa.table(ROWS), home / "rows.parquet")
    connector = {"type": "files", "root": str(home), "path": "rows.parquet", "format": "parquet"}
    url = f"sqlite+aiosqlite:///{home / 'sluis.db'}"
    setup = Database(url)
    await setup.upgrade()
    await register_participants(
        setup, [(PROVIDER, "P", ["provider"]), (CONSUMER, "C", ["consumer"])]
    )
    for dataset, policy in {
        **POLICIES,
        "unagreed": COLUMNS.replace(":columns", ":unagreed"),
    }.items():
        await register_dataset(
            setup, dataset, provider=PROVIDER, policy=policy, connector=connector
        )
    pq.write_table(pa.table(ROWS), home / "down.parquet")
    down = {**connector, "path": "down.parquet"}
    await register_dataset(setup, "down", provider=PROVIDER, policy=DOWN, connector=down)
    (home / "down.parquet").unlink()  # the source is gone after registration
    await register_dataset(setup, "misfit", provider=PROVIDER, policy=MISFIT, connector=connector)
    api = {
        "type": "http-passthrough", "base_url": upstream.url, "allow_networks": ["127.0.0.1/32"],
        "routes": [
            *({"method": "GET", "path": p} for p in ("/orders", "/gone", "/broken")),
            {"method": "POST", "path": "/echo"},
        ],
    }  # fmt: skip
    await register_dataset(setup, "api", provider=PROVIDER, policy=API, connector=api)
    bare = API.replace(":api", ":bare").replace(", data: {columns: [order, kind]}", "")
    await register_dataset(setup, "bare", provider=PROVIDER, policy=bare, connector=api)
    await setup.dispose()
    async with world(Seed(url, upstream)) as w:
        for dataset in (*POLICIES, "api", "bare", "down", "misfit"):
            asked = await w.agreements.request(
                party(CONSUMER, "consumer"), AgreementRequest(dataset=dataset, purpose=PURPOSE),
                now=datetime.now(UTC),
            )  # fmt: skip
            assert asked.agreement.state == "active"


@asynccontextmanager
async def world(seed: Seed, *, owner: str = "gw-1") -> AsyncIterator[World]:
    """The services on ``seed``'s database, as one gateway process holds them."""
    db = Database(seed.url)
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    telemetry = configure(span_exporter=spans, metric_reader=reader)
    datasets = DatasetService(db, create_connector)
    log = AuditLog(db, SIGNER, ORIGIN)
    agreements = AgreementService(db, datasets, log)
    exchange = ExchangeService(db, datasets, agreements, log, telemetry, owner=owner)
    try:
        yield World(db, log, agreements, exchange, seed.upstream, spans, reader)
    finally:
        await log.close()
        await db.dispose()
        telemetry.shutdown()


def _upstream() -> Upstream:
    """A loopback API: ``/orders`` answers two orders, ``/gone`` 404, ``/broken`` 500,
    ``POST /echo`` what it was sent."""
    upstream: Upstream

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            upstream.hits.append(self.path)
            status = {"/orders": 200, "/gone": 404}.get(self.path, 500)
            body = json.dumps(ORDERS if status == 200 else {"error": "db password=x"}).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            """``/echo``: the body it was sent and its type, as one order."""
            upstream.hits.append(self.path)
            sent = self.rfile.read(int(self.headers.get("content-length", "0"))).decode()
            kind = self.headers.get("content-type", "")
            body = json.dumps([{"order": sent, "kind": kind, "customer": "x"}]).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    upstream = Upstream(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
    threading.Thread(target=upstream.server.serve_forever, daemon=True).start()
    return upstream


def _run(seed: Seed, body: Callable[[World], Awaitable[None]]) -> None:
    async def run() -> None:
        async with world(seed) as w:
            await body(w)

    asyncio.run(run())


async def _drain(rest: Rest) -> bytes:
    got = b""
    async for chunk in rest:
        got += chunk
    await rest.aclose()
    return got


def test_a_permit_and_its_completion_hold_every_field(seed: Seed) -> None:
    """The decision entry names who, what, under which agreement and policy; the completion
    names the same exchange with its rows, bytes and duration."""

    async def body(w: World) -> None:
        outcome = await w.exchange.query(CALLER, "columns", ASK, Format.JSONL, source="10.1.2.3")
        assert outcome.media_type == Format.JSONL.media_type
        assert outcome.checkpoint.startswith(ORIGIN.encode())
        assert outcome.headers == {}
        sent = outcome.first + await _drain(outcome.rest)
        assert sent.count(b"\n") == 3
        assert b"X400" in sent
        assert b"owner" not in sent
        permit = await w.last()
        agreement = await w.agreements.active(CONSUMER, "columns")
        assert agreement is not None
        assert permit.actor == Actor(
            participant=CONSUMER, client="client-7", certificate="t", source="10.1.2.3"
        )
        assert (permit.dataset, permit.action, permit.purpose) == ("columns", "read", PURPOSE)
        assert permit.decision is not None
        assert permit.decision.result == "permit"
        assert permit.decision.policy_id == "urn:sluis:policy:columns"
        assert permit.decision.policy_hash == agreement.policy_hash
        assert permit.decision.reasons == ()
        assert permit.target == f"agreement:{agreement.id}"
        assert permit.privacy is None
        assert permit.request_id is not None
        assert re.fullmatch("[0-9a-f]{32}", permit.request_id)
        assert (permit.rows, permit.bytes) == (None, None)
        assert outcome.receipt.index == len(await w.entries()) - 2  # the completion came after
        done = await w.last("exchange-completed")
        assert done.request_id == permit.request_id
        assert done.actor == permit.actor
        assert (done.dataset, done.action, done.purpose) == ("columns", "read", None)
        assert (done.rows, done.bytes) == (3, len(sent))
        assert outcome.stats.rows == 3
        assert outcome.stats.bytes == len(sent)
        assert done.decision is not None
        assert done.decision.result == "permit"
        assert done.decision.policy_id is None
        assert len(done.decision.reasons) == 2
        assert done.decision.reasons[0] == "permit"
        assert re.fullmatch(r"seconds=\d+\.\d{3}", done.decision.reasons[1])

    _run(seed, body)


def test_each_query_is_a_new_exchange_and_spends_one_use(seed: Seed) -> None:
    """Two uses, then the count limit denies; each permit has its own exchange id."""

    async def body(w: World) -> None:
        ids = []
        for _ in range(2):
            outcome = await w.exchange.query(CALLER, "columns", ASK, Format.JSONL, source=None)
            await _drain(outcome.rest)
            ids.append((await w.last()).request_id)
        assert ids[0] != ids[1]
        with pytest.raises(Forbidden) as refused:
            await w.exchange.query(CALLER, "columns", ASK, Format.JSONL, source=None)
        assert refused.value.code == "policy-denied"
        assert refused.value.detail == (
            "the usage policy does not allow this (no_active_permission)"
        )
        denial = await w.last()
        assert denial.decision is not None
        assert denial.decision.result == "deny"
        assert denial.decision.reasons[0] == "no_active_permission"
        assert len(denial.decision.reasons) > 1  # the explanation follows the reason
        assert denial.decision.policy_id == "urn:sluis:policy:columns"
        assert denial.request_id is None
        assert denial.privacy is None
        assert denial.purpose == PURPOSE

    _run(seed, body)


def test_a_column_the_policy_keeps_is_named_in_the_refusal(seed: Seed) -> None:
    async def body(w: World) -> None:
        ask = Query(columns=("machine", "owner"))
        with pytest.raises(Forbidden) as refused:
            await w.exchange.query(CALLER, "columns", ask, Format.JSONL, source=None)
        assert refused.value.code == "column-not-allowed"
        assert refused.value.detail == "the usage policy does not release the column(s) 'owner'"

    _run(seed, body)


def test_rows_of_an_aggregates_only_dataset_are_refused(seed: Seed) -> None:
    async def body(w: World) -> None:
        with pytest.raises(Forbidden) as refused:
            await w.exchange.query(CALLER, "aggregates", ASK, Format.JSONL, source=None)
        assert refused.value.code == "aggregate-required"
        assert refused.value.detail == (
            "the usage policy allows aggregates only: group by columns and ask for functions"
        )

    _run(seed, body)


def test_an_unknown_column_is_a_400_audited_with_its_name(seed: Seed) -> None:
    """The raw name is kept in the entry, cut at 500 characters like every reason."""

    async def body(w: World) -> None:
        name = "n" * 600
        ask = Query(columns=("machine", name))
        with pytest.raises(UnknownColumn):
            await w.exchange.query(CALLER, "columns", ask, Format.JSONL, source=None)
        denial = await w.last()
        assert denial.decision is not None
        assert denial.decision.result == "deny"
        assert denial.decision.policy_id is None
        said = str(UnknownColumn(name))  # the error's own text is short; the raw name is not
        assert denial.decision.reasons == ("unknown_column", said, name[:500])

    _run(seed, body)


def test_without_an_agreement_the_denial_names_no_agreement(seed: Seed) -> None:
    async def body(w: World) -> None:
        with pytest.raises(Forbidden) as refused:
            await w.exchange.query(CALLER, "unagreed", ASK, Format.JSONL, source="s")
        assert refused.value.code == "no-agreement"
        assert refused.value.detail == "no active agreement for dataset unagreed"
        denial = await w.last()
        assert denial.decision is not None
        assert denial.decision.result == "deny"
        assert denial.decision.reasons == ("no-agreement",)
        assert (denial.dataset, denial.purpose, denial.target) == ("unagreed", None, None)
        assert denial.actor.source == "s"

    _run(seed, body)


def test_a_token_without_the_scope_is_refused_before_anything(seed: Seed) -> None:
    """403 insufficient_scope for a dataset that exists, 404 for one that does not; neither
    is an exchange, so nothing is written."""

    async def body(w: World) -> None:
        before = len(await w.entries())
        with pytest.raises(TokenRejected) as refused:
            await w.exchange.query(_caller("aggregates"), "columns", ASK, Format.JSONL, source=None)
        assert refused.value.code == "insufficient-scope"
        assert refused.value.detail == "the token lacks the scope dataset:columns"
        assert refused.value.error == "insufficient_scope"
        with pytest.raises(NotFound):
            await w.exchange.query(_caller("columns"), "nowhere", ASK, Format.JSONL, source=None)
        assert len(await w.entries()) == before

    _run(seed, body)


def test_the_wrong_kind_of_call_is_refused_by_name(seed: Seed) -> None:
    async def body(w: World) -> None:
        with pytest.raises(BadRequest) as refused:
            await w.exchange.call_api(CALLER, "columns", "GET", "x", None, source=None)
        assert refused.value.code == "not-an-api"
        assert refused.value.detail == "columns is a table: use /query or /data"
        with pytest.raises(NotFound) as missing:
            await w.exchange.privacy_budget(CALLER, "columns", source=None)
        assert missing.value.code == "no-privacy-budget"
        assert missing.value.detail == "dataset columns has no privacy budget"

    _run(seed, body)


def test_a_stream_ends_once_and_stops(seed: Seed) -> None:
    """Read to its end, then closed, then read again: one completion, ``permit``."""

    async def body(w: World) -> None:
        outcome = await w.exchange.query(CALLER, "columns", ASK, Format.CSV, source=None)
        await _drain(outcome.rest)
        await outcome.rest.aclose()
        with pytest.raises(StopAsyncIteration):
            await anext(outcome.rest)
        await w.log.settled()
        done = [e for e in await w.entries() if e.event == "exchange-completed"]
        assert len(done) == 1
        assert done[0].decision is not None
        assert done[0].decision.reasons[0] == "permit"
        # the completion closed the open exchange: a restart finds nothing to record
        assert await w.exchange.close_interrupted(now=datetime.now(UTC)) == 0

    _run(seed, body)


def test_a_stream_closed_early_is_interrupted(seed: Seed) -> None:
    async def body(w: World) -> None:
        outcome = await w.exchange.query(CALLER, "columns", ASK, Format.JSONL, source=None)
        await outcome.rest.aclose()
        done = await w.last("exchange-completed")
        assert done.decision is not None
        assert done.decision.reasons[0] == "interrupted"
        assert done.rows == 3  # the first chunk was pulled: the batch it came from counted
        assert done.bytes == len(outcome.first)

    _run(seed, body)


class _Broken(ConnectorError):
    code = "source_broke"
    public_reason = "p" * 600


async def _failing() -> AsyncIterator[bytes]:
    yield b"abc"
    raise _Broken("host db.internal said no")


def test_a_stream_that_fails_ends_with_the_code_and_public_reason() -> None:
    """``failed: <code>`` and the public sentence (cut at 500), never the private text."""
    ended: list[tuple[str, ConnectorError | None]] = []

    async def finish(result: str, failure: ConnectorError | None) -> None:
        ended.append((result, failure))

    async def run() -> _Stats:
        stats = _Stats()
        rest = Rest(_failing(), stats, finish)
        assert await anext(rest) == b"abc"
        with pytest.raises(_Broken):
            await anext(rest)
        await rest.aclose()
        return stats

    stats = asyncio.run(run())
    assert stats.bytes == 3
    assert len(ended) == 1
    assert ended[0][0] == "failed: source_broke"
    assert isinstance(ended[0][1], _Broken)


def test_a_remembered_count_never_goes_down(seed: Seed) -> None:
    async def body(w: World) -> None:
        key = ("c", "d", "h")
        start = datetime.now(UTC)
        w.exchange._remember(key, 2, None)  # type: ignore[arg-type]
        assert key not in w.exchange._seen
        w.exchange._remember(key, 2, start)  # type: ignore[arg-type]
        w.exchange._remember(key, 1, start)  # type: ignore[arg-type]
        assert w.exchange._seen[key] == (2, start)  # type: ignore[index]
        w.exchange._remember(key, 3, start)  # type: ignore[arg-type]
        assert w.exchange._seen[key] == (3, start)  # type: ignore[index]

    _run(seed, body)


def test_a_restart_closes_only_its_own_open_exchanges(seed: Seed) -> None:
    """Each open exchange of this owner gets one ``interrupted`` completion naming it."""

    async def body(w: World) -> None:
        first = await w.exchange.query(CALLER, "columns", ASK, Format.JSONL, source=None)
        second = await w.exchange.query(CALLER, "columns", ASK, Format.JSONL, source=None)
        assert first.first
        assert second.first
        now = datetime.now(UTC)
        other = ExchangeService(w.db, w.exchange.datasets, w.agreements, w.log,
                                w.exchange.telemetry, owner="gw-2")  # fmt: skip
        assert await other.close_interrupted(now=now) == 0
        assert await w.exchange.close_interrupted(now=now) == 2
        assert await w.exchange.close_interrupted(now=now) == 0
        entries = await w.entries()
        permits = {e.request_id for e in entries if e.event == "access-decision"}
        ended = [e for e in entries if e.event == "exchange-completed"]
        assert {e.request_id for e in ended} == permits
        assert len(ended) == 2
        for entry in ended:
            assert entry.time == now
            assert entry.actor == Actor(participant=CONSUMER)
            assert (entry.dataset, entry.action) == ("columns", "read")
            assert entry.decision is not None
            assert entry.decision.result == "permit"
            assert entry.decision.reasons == (
                "interrupted",
                "the gateway stopped before the exchange ended",
            )

    _run(seed, body)


def test_a_count_is_remembered_only_for_a_policy_without_rates(seed: Seed) -> None:
    """After a committed use the replica knows the count (the next decision reads nothing);
    under a rate-limited policy the usage is read for every decision."""

    async def body(w: World) -> None:
        for dataset in ("columns", "rated"):
            outcome = await w.exchange.query(CALLER, dataset, ASK, Format.JSONL, source=None)
            await _drain(outcome.rest)
        columns = await w.agreements.active(CONSUMER, "columns")
        assert columns is not None
        assert w.exchange._seen[key_of(columns)] == (1, columns.decided_at)
        rated = await w.agreements.active(CONSUMER, "rated")
        assert rated is not None
        seen: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            seen.append(" ".join(statement.split()).upper())

        engine = w.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            for dataset in ("columns", "rated"):
                seen.clear()
                outcome = await w.exchange.query(CALLER, dataset, ASK, Format.JSONL, source=None)
                await _drain(outcome.rest)
                reads = [s for s in seen if s.startswith("SELECT") and "USAGE_STATE" in s]
                assert bool(reads) == (dataset == "rated"), (dataset, seen)
                begun = [s for s in seen if s.startswith("INSERT") and "USAGE_STATE" in s]
                assert not begun, (dataset, seen)  # the usage began already: not again
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert w.exchange._seen[key_of(columns)] == (2, columns.decided_at)

    _run(seed, body)


def test_a_rate_limit_spent_meanwhile_refuses_the_use_at_commit(seed: Seed) -> None:
    """Two requests decided on the same rate window's count (one use left); the first
    commits, the second is asked again at the fresh count: denied, audited, not spent."""

    async def body(w: World) -> None:
        outcome = await w.exchange.query(CALLER, "rated", ASK, Format.JSONL, source=None)
        await _drain(outcome.rest)
        ctxs = [await w.exchange._prelude(CALLER, "rated", None) for _ in range(2)]
        decided = [await w.exchange._decide_and_spend(c, ASK, None) for c in ctxs]
        assert [d[2].counts for d in decided] == [(1,), (1,)]
        await w.exchange._permit(ctxs[0], decided[0][0], decided[0][2])
        assert decided[0][2].spent == 2
        with pytest.raises(Forbidden) as refused:
            await w.exchange._permit(ctxs[1], decided[1][0], decided[1][2])
        assert refused.value.code == "policy-denied"
        assert decided[1][2].spent is None
        results = [e.decision.result for e in await w.entries() if e.dataset == "rated"
                   and e.event == "access-decision" and e.decision]  # fmt: skip
        assert results == ["permit", "permit", "deny"]
        with pytest.raises(Forbidden):  # the window is full: refused before any spend
            await w.exchange.query(CALLER, "rated", ASK, Format.JSONL, source=None)

    _run(seed, body)


SUM = Query(aggregates=(Aggregate(AggFunc.SUM, "temp_c"),))


def test_a_private_query_spends_its_epsilon_with_the_use(seed: Seed) -> None:
    """Each permit records the epsilon and the budget spent with it; the response tells the
    consumer what is left; the budget's end is the plain denial."""

    async def body(w: World) -> None:
        budget = await w.exchange.privacy_budget(CALLER, "private", source=None)
        assert (budget.epsilon, budget.spent, budget.period) == (Decimal(1), 0, "P30D")
        left = []
        for _ in range(4):
            outcome = await w.exchange.query(CALLER, "private", SUM, Format.JSONL, source=None)
            await _drain(outcome.rest)
            assert outcome.headers["Sluis-Privacy-Epsilon"] == "0.25"
            assert outcome.headers["Sluis-Privacy-Noise-Scale"] == "sum_temp_c=400"
            left.append(outcome.headers["Sluis-Privacy-Budget-Remaining"])
            permit = await w.last()
            assert permit.privacy is not None
            assert permit.privacy.epsilon == "0.25"
            assert permit.privacy.delta == "0.000001"
            assert (permit.privacy.budget, permit.privacy.period) == ("1", "P30D")
        assert left == ["0.75/P30D", "0.5/P30D", "0.25/P30D", "0/P30D"]
        spent = [e.privacy.spent for e in await w.entries() if e.privacy is not None]
        assert spent == ["0.25", "0.5", "0.75", "1"]
        budget = await w.exchange.privacy_budget(CALLER, "private", source=None)
        assert budget.spent == Decimal(1)
        with pytest.raises(Forbidden) as refused:
            await w.exchange.query(CALLER, "private", SUM, Format.JSONL, source=None)
        assert refused.value.code == "policy-denied"
        denial = await w.last()
        assert denial.privacy is None
        assert denial.request_id is None

    _run(seed, body)


def test_a_budget_spent_meanwhile_refuses_the_query_at_commit(seed: Seed) -> None:
    """Two queries decided with one query's epsilon left: the second, asked again at the
    spends the first committed, is denied and audited, and spends nothing."""

    async def body(w: World) -> None:
        for _ in range(3):
            outcome = await w.exchange.query(CALLER, "private", SUM, Format.JSONL, source=None)
            await _drain(outcome.rest)
        ctxs = [await w.exchange._prelude(CALLER, "private", None) for _ in range(2)]
        decided = [await w.exchange._decide_and_spend(c, SUM, None) for c in ctxs]
        await w.exchange._permit(ctxs[0], decided[0][0], decided[0][2])
        with pytest.raises(Forbidden) as refused:
            await w.exchange._permit(ctxs[1], decided[1][0], decided[1][2])
        assert refused.value.code == "policy-denied"
        assert decided[1][2].spent is None
        denial = await w.last()  # decided as a spend, refused at commit: it spent nothing
        assert (denial.decision.result if denial.decision else None) == "deny"
        assert denial.privacy is None
        budget = await w.exchange.privacy_budget(CALLER, "private", source=None)
        assert budget.spent == Decimal(1)
        results = [e.decision.result for e in await w.entries() if e.dataset == "private"
                   and e.event == "access-decision" and e.decision]  # fmt: skip
        assert results == ["permit"] * 4 + ["deny"]

    _run(seed, body)


def test_an_api_call_is_decided_audited_and_narrowed(seed: Seed) -> None:
    """The answer holds only the fields the policy lists; the completion counts its bytes;
    an upstream 404 is recorded as ``upstream-refused: 404``."""

    async def body(w: World) -> None:
        began = time.perf_counter()
        proxied, receipt, checkpoint = await w.exchange.call_api(
            CALLER, "api", "get", "orders", None, source="10.0.0.9"
        )
        took = time.perf_counter() - began
        assert json.loads(proxied.body) == [{"order": 1}, {"order": 2}]
        assert checkpoint.startswith(ORIGIN.encode())
        permit = await w.last()
        assert receipt.index == [e.event for e in await w.entries()].index("exchange-completed") - 1
        assert permit.decision is not None
        assert permit.decision.result == "permit"
        assert permit.actor.source == "10.0.0.9"
        assert permit.decision.policy_id == "urn:sluis:policy:api"
        assert permit.decision.policy_hash is not None
        done = await w.last("exchange-completed")
        assert done.request_id == permit.request_id
        assert (done.rows, done.bytes) == (0, len(proxied.body))
        assert done.decision is not None
        assert done.decision.reasons[0] == "permit"
        assert len(done.decision.reasons) == 2
        # the duration recorded is of the call itself: within what the caller measured
        assert 0 <= float(done.decision.reasons[1].removeprefix("seconds=")) <= took + 0.001
        gone, _, _ = await w.exchange.call_api(CALLER, "api", "GET", "gone", None, source=None)
        assert (gone.status, gone.body) == (404, b"")
        done = await w.last("exchange-completed")
        assert done.decision is not None
        assert done.decision.reasons[0] == "upstream-refused: 404"
        assert w.upstream.hits == ["/orders", "/gone"]

    _run(seed, body)


def test_an_api_call_outside_the_routes_is_denied_before_anything(seed: Seed) -> None:
    """Refused by the route list: a denial naming the refusal, no use, no upstream call."""

    async def body(w: World) -> None:
        with pytest.raises(ConnectorError) as refused:
            await w.exchange.call_api(CALLER, "api", "GET", "secret", None, source="s")
        denial = await w.last()
        assert denial.decision is not None
        assert denial.decision.result == "deny"
        assert denial.decision.reasons == (refused.value.code, str(refused.value))
        assert denial.actor.source == "s"
        assert w.upstream.hits == []
        with pytest.raises(BadRequest) as table:
            await w.exchange.query(CALLER, "api", ASK, Format.JSONL, source=None)
        assert table.value.code == "not-a-table"
        assert table.value.detail == "api is an API: call /v1/datasets/api/api/..."

    _run(seed, body)


def test_an_api_call_the_upstream_fails_is_completed_as_failed(seed: Seed) -> None:
    async def body(w: World) -> None:
        with pytest.raises(ConnectorError) as failed:
            await w.exchange.call_api(CALLER, "api", "GET", "broken", None, source=None)
        assert failed.value.code
        done = await w.last("exchange-completed")
        assert done.decision is not None
        assert done.decision.reasons[0] == f"failed: {failed.value.code}"
        assert done.decision.reasons[2] == failed.value.public_reason
        assert "password" not in " ".join(done.decision.reasons)

    _run(seed, body)


def test_two_starts_at_once_close_each_exchange_once(seed: Seed) -> None:
    """Both read the same open exchanges; each is closed by whichever commits first, and
    the other start skips it without failing."""

    async def body(w: World) -> None:
        for _ in range(2):
            outcome = await w.exchange.query(CALLER, "columns", ASK, Format.JSONL, source=None)
            assert outcome.first
        now = datetime.now(UTC)
        twin = ExchangeService(w.db, w.exchange.datasets, w.agreements, w.log,
                               w.exchange.telemetry, owner="gw-1")  # fmt: skip
        closed = await asyncio.gather(
            w.exchange.close_interrupted(now=now), twin.close_interrupted(now=now)
        )
        assert sum(closed) == 2
        ended = [e for e in await w.entries() if e.event == "exchange-completed"]
        assert len(ended) == 2
        assert len({e.request_id for e in ended}) == 2

    _run(seed, body)


def test_a_restart_that_cannot_write_fails_loudly(seed: Seed) -> None:
    """The audit store refuses the interruption's entry: the start fails (nothing is
    recorded as closed), and the exchange stays open for the next start."""

    async def body(w: World) -> None:
        outcome = await w.exchange.query(CALLER, "columns", ASK, Format.JSONL, source=None)
        assert outcome.first
        async with w.db.session() as session:
            await session.execute(text(
                "CREATE TRIGGER outage BEFORE INSERT ON audit_entries "
                "BEGIN SELECT RAISE(ABORT, 'audit store down'); END"
            ))  # fmt: skip
        with pytest.raises(StorageUnavailable):
            await w.exchange.close_interrupted(now=datetime.now(UTC))
        async with w.db.session() as session:
            await session.execute(text("DROP TRIGGER outage"))
        assert await w.exchange.close_interrupted(now=datetime.now(UTC)) == 1

    _run(seed, body)


def test_an_agreement_ended_before_the_use_is_named_in_the_denial(seed: Seed) -> None:
    async def body(w: World) -> None:
        ctx = await w.exchange._prelude(CALLER, "columns", None)
        decision, _, spend = await w.exchange._decide_and_spend(ctx, ASK, None)
        assert ctx.agreement is not None
        await w.agreements.revoke(
            ctx.agreement.id, party(PROVIDER, "provider"), "", now=datetime.now(UTC)
        )
        with pytest.raises(Forbidden) as refused:
            await w.exchange._permit(ctx, decision, spend)
        assert refused.value.code == "no-agreement"
        assert refused.value.detail == "the agreement ended while this request was decided"
        denial = await w.last()
        assert denial.decision is not None
        assert denial.decision.reasons == ("no-agreement", "the agreement ended before the use")

    _run(seed, body)


def test_an_api_call_carries_its_body_and_type_upstream(seed: Seed) -> None:
    async def body(w: World) -> None:
        sent = b'{"q": 1}'
        proxied, _, _ = await w.exchange.call_api(
            CALLER, "api", "POST", "echo", sent, source=None, content_type="application/json"
        )
        assert json.loads(proxied.body) == [{"order": sent.decode(), "kind": "application/json"}]

    _run(seed, body)


def test_an_api_whose_policy_lists_no_fields_passes_none(seed: Seed) -> None:
    """Fail closed: no ``columns`` in the permit, no field of the answer."""

    async def body(w: World) -> None:
        proxied, _, _ = await w.exchange.call_api(
            CALLER, "bare", "GET", "orders", None, source=None
        )
        assert json.loads(proxied.body) == [{}, {}]

    _run(seed, body)


def test_each_step_is_a_span_and_every_entry_names_the_trace(seed: Seed) -> None:
    """The policy, the audit append and the source call each a span under the request's;
    the decision and the completion entries carry the request's trace id."""

    async def body(w: World) -> None:
        telemetry = w.exchange.telemetry
        with telemetry.span("request") as request:
            outcome = await w.exchange.query(CALLER, "columns", ASK, Format.JSONL, source=None)
        await _drain(outcome.rest)
        with telemetry.span("request"):
            await w.exchange.call_api(CALLER, "api", "GET", "orders", None, source=None)
        trace_id = format(request.get_span_context().trace_id, "032x")
        permit, done = (await w.last()), (await w.last("exchange-completed"))
        entries = await w.entries()
        first_permit = next(e for e in entries if e.event == "access-decision")
        first_done = next(e for e in entries if e.event == "exchange-completed")
        assert first_permit.trace_id == trace_id
        assert first_done.trace_id == trace_id
        assert permit.trace_id not in (None, trace_id)  # the second request's own
        assert done.trace_id == permit.trace_id
        seen = [(s.name, dict(s.attributes or {})) for s in w.spans.get_finished_spans()]
        assert (SPAN_POLICY, {"sluis.dataset": "columns"}) in seen
        assert (SPAN_AUDIT, {"sluis.event": "access-decision"}) in seen
        assert (SPAN_CONNECTOR, {"sluis.dataset": "columns", "sluis.kind": "files"}) in seen
        api = {"sluis.dataset": "api", "sluis.kind": "http-passthrough"}
        assert (SPAN_CONNECTOR, api) in seen
        with pytest.raises(Forbidden):
            await w.exchange.query(CALLER, "aggregates", ASK, Format.JSONL, source=None)
        assert w.decisions() == {
            ("permit", "permitted"): 2, ("deny", "no_active_permission"): 1,
        }  # fmt: skip

    _run(seed, body)


def test_a_denial_keeps_the_reason_and_50_lines_of_explanation(seed: Seed) -> None:
    async def body(w: World) -> None:
        outcome = await w.exchange.query(CALLER, "many", ASK, Format.JSONL, source=None)
        await _drain(outcome.rest)
        with pytest.raises(Forbidden):
            await w.exchange.query(CALLER, "many", ASK, Format.JSONL, source=None)
        denial = await w.last()
        assert denial.decision is not None
        assert denial.decision.reasons[0] == "no_active_permission"
        assert denial.decision.reasons[1] == "DENY (no_active_permission)"
        assert len(denial.decision.reasons) == 1 + 50

    _run(seed, body)


def test_every_withheld_column_is_named(seed: Seed) -> None:
    async def body(w: World) -> None:
        ask = Query(columns=("owner", "machine", "site"))
        with pytest.raises(Forbidden) as refused:
            await w.exchange.query(CALLER, "columns", ask, Format.JSONL, source=None)
        assert refused.value.detail == (
            "the usage policy does not release the column(s) 'owner', 'site'"
        )

    _run(seed, body)


def test_a_stream_counts_every_chunk_and_closes_its_source() -> None:
    """Bytes add up over the chunks; ending early closes the connector's stream at once."""
    ended: list[str] = []
    closed: list[bool] = []

    async def chunks() -> AsyncIterator[bytes]:
        try:
            for chunk in (b"ab", b"cde", b"f"):
                yield chunk
        finally:
            closed.append(True)

    async def finish(result: str, _failure: ConnectorError | None) -> None:
        ended.append(result)

    async def run() -> _Stats:
        stats = _Stats()
        rest = Rest(chunks(), stats, finish)
        assert [await anext(rest), await anext(rest)] == [b"ab", b"cde"]
        await rest.aclose()
        assert closed == [True]  # now, not when the loop shuts its generators down
        return stats

    stats = asyncio.run(run())
    assert stats.bytes == 5
    assert closed == [True]
    assert ended == ["interrupted"]


def test_a_stream_ended_by_a_cancelled_consumer_still_completes() -> None:
    """The consumer's task is cancelled (it went away): closing the source and writing the
    completion still run to their end, shielded."""
    ended: list[str] = []
    closed: list[bool] = []

    async def chunks() -> AsyncIterator[bytes]:
        try:
            yield b"ab"
        finally:
            await asyncio.sleep(0)  # the upstream's close takes a turn of the loop
            closed.append(True)

    async def finish(result: str, _failure: ConnectorError | None) -> None:
        await asyncio.sleep(0)  # the audit log's queue takes a turn of the loop
        ended.append(result)

    async def run() -> None:
        rest = Rest(chunks(), _Stats(), finish)
        assert await anext(rest) == b"ab"
        with anyio.CancelScope() as scope:
            scope.cancel()
            await rest.aclose()

    asyncio.run(run())
    assert closed == [True]
    assert ended == ["interrupted"]


def test_a_source_that_is_down_is_denied_with_its_code_and_nothing_spent(seed: Seed) -> None:
    async def body(w: World) -> None:
        with pytest.raises(ConnectorError) as down:
            await w.exchange.query(CALLER, "down", ASK, Format.JSONL, source="s")
        denial = await w.last()
        assert denial.dataset == "down"
        assert denial.actor.source == "s"
        assert denial.decision is not None
        assert denial.decision.result == "deny"
        assert denial.decision.reasons == (down.value.code, str(down.value))
        assert not [e for e in await w.entries() if e.event == "exchange-completed"]
        assert not w.exchange._seen

    _run(seed, body)


def test_a_use_refused_at_commit_forgets_the_remembered_count(seed: Seed) -> None:
    """Two requests decided at the same count with one use left: the second is refused by
    the store at commit, and the count this replica remembered is dropped (read next time)."""

    async def body(w: World) -> None:
        outcome = await w.exchange.query(CALLER, "columns", ASK, Format.JSONL, source=None)
        await _drain(outcome.rest)
        ctxs = [await w.exchange._prelude(CALLER, "columns", None) for _ in range(2)]
        decided = [await w.exchange._decide_and_spend(c, ASK, None) for c in ctxs]
        await w.exchange._permit(ctxs[0], decided[0][0], decided[0][2])
        agreement = ctxs[0].agreement
        assert agreement is not None
        assert w.exchange._seen[key_of(agreement)][0] == 2
        with pytest.raises(Forbidden) as refused:
            await w.exchange._permit(ctxs[1], decided[1][0], decided[1][2])
        assert refused.value.code == "policy-denied"
        assert key_of(agreement) not in w.exchange._seen

    _run(seed, body)


def test_a_permit_the_query_cannot_fit_is_a_denial_with_the_decision(seed: Seed) -> None:
    """The policy permits, but its row filter names no column of the data: the provider's
    error, denied and audited with the policy that decided and the refusal's code."""

    async def body(w: World) -> None:
        with pytest.raises(ConnectorError) as misfit:
            await w.exchange.query(CALLER, "misfit", ASK, Format.JSONL, source="s")
        denial = await w.last()
        assert denial.actor.source == "s"
        assert denial.decision is not None
        assert denial.decision.result == "deny"
        assert denial.decision.policy_id == "urn:sluis:policy:misfit"
        assert denial.decision.reasons == (misfit.value.code, str(misfit.value))
        decided = [e for e in await w.entries() if e.event == "access-decision"]
        assert [e.dataset for e in decided] == ["misfit"]  # no permit before the denial

    _run(seed, body)


class _FailsAtOnce(InMemoryConnector):
    """Its schema answers; its first batch breaks (the source went down after the permit)."""

    async def _source(self, query: Query) -> AsyncIterator[pa.RecordBatch]:  # noqa: ARG002 - the hook's signature
        raise SourceRejected("/srv/sluis/data/x.parquet: garbage at byte 7")
        yield  # pragma: no cover - an async generator that fails at once


def test_a_source_failing_before_the_first_byte_completes_as_failed(seed: Seed) -> None:
    """Permitted, then the first chunk fails: the error reaches the caller (502/504), the
    completion says ``failed: <code>`` with the public sentence, the lease stays the
    caller's to release, and no byte was counted."""

    async def body(w: World) -> None:
        cache: ClosingCache[_FailsAtOnce] = ClosingCache(lambda c: c.aclose())
        table = pa.table({"v": [1, 2, 3]})
        lease = await cache.lease("x", "v1", lambda: _FailsAtOnce("x", table))
        ctx = await w.exchange._prelude(CALLER, "columns", "s")
        permitted = narrow(Query(columns=("v",)), DataLimits(), await lease.value.schema())
        began = time.perf_counter()
        with pytest.raises(SourceRejected):
            await w.exchange._start(ctx, lease.value, permitted, Format.JSONL, lease)
        took = time.perf_counter() - began
        await lease.release()
        done = await w.last("exchange-completed")
        assert done.request_id == ctx.exchange_id
        assert done.trace_id == ctx.trace_id
        assert done.actor.source == "s"
        assert (done.rows, done.bytes) == (0, 0)
        assert done.decision is not None
        reasons = done.decision.reasons
        assert reasons[0] == "failed: source_rejected"
        assert 0 <= float(reasons[1].removeprefix("seconds=")) <= took + 0.001
        assert reasons[2:] == (SourceRejected.fixed_public,)

    _run(seed, body)


def test_a_query_asking_for_more_rows_than_allowed_is_refused(seed: Seed) -> None:
    async def body(w: World) -> None:
        greedy = Query(columns=("machine",), limit=6)
        with pytest.raises(Forbidden) as refused:
            await w.exchange.query(CALLER, "rated", greedy, Format.JSONL, source=None)
        assert refused.value.code == "policy-denied"
        outcome = await w.exchange.query(
            CALLER, "rated", Query(columns=("machine",), limit=5), Format.JSONL, source=None
        )
        await _drain(outcome.rest)

    _run(seed, body)


def test_a_privacy_budget_asked_without_an_agreement_is_an_audited_denial(seed: Seed) -> None:
    """The budget is read under the active agreement only; asked without one, the refusal
    is audited like a query's, with the caller's address."""

    async def body(w: World) -> None:
        with pytest.raises(Forbidden) as refused:
            await w.exchange.privacy_budget(CALLER, "unagreed", source="10.9.8.7")
        assert refused.value.code == "no-agreement"
        denial = await w.last()
        assert denial.dataset == "unagreed"
        assert denial.actor == Actor(
            participant=CONSUMER, client="client-7", certificate="t", source="10.9.8.7"
        )
        assert denial.decision is not None
        assert denial.decision.reasons == ("no-agreement",)

    _run(seed, body)


def test_a_private_spend_is_stored_with_its_use_epsilon_and_delta(seed: Seed) -> None:
    """Each private query's spend is a row under its use's number, with the query's epsilon
    and delta; a second spend for the same use is refused as a broken invariant."""

    async def body(w: World) -> None:
        for _ in range(2):
            outcome = await w.exchange.query(CALLER, "private", SUM, Format.JSONL, source=None)
            await _drain(outcome.rest)
        async with w.db.session() as session:
            rows = (
                await session.execute(
                    text("SELECT seq, epsilon_nano, delta FROM privacy_spends ORDER BY seq")
                )
            ).all()
        assert [tuple(r) for r in rows] == [(1, 250_000_000, 1e-6), (2, 250_000_000, 1e-6)]
        agreement = await w.agreements.active(CONSUMER, "private")
        assert agreement is not None
        limits = private.budgeted(await w.exchange.datasets.compiled(agreement.policy_hash))
        assert limits is not None
        with pytest.raises(StorageUnavailable) as broken:
            async with w.db.session() as session:
                await private.spend(session, key_of(agreement), 2, limits, datetime.now(UTC))
        assert str(broken.value) == "use 2 has a privacy spend already"

    _run(seed, body)


def test_the_open_exchanges_are_read_oldest_first(seed: Seed) -> None:
    """A restart reads its own open exchanges by when they started, not as stored."""

    async def body(w: World) -> None:
        base = datetime(2026, 1, 1, tzinfo=UTC)
        async with w.db.session() as session:
            for n, minute in enumerate((30, 10, 20)):
                opened = (f"x{n}", "gw-9", CONSUMER, "columns")
                await repository.open_exchange(
                    session, opened, started_at=base.replace(minute=minute)
                )
        async with w.db.session() as session:
            rows = await repository.left_open(session, "gw-9")
        assert [r.id for r in rows] == ["x1", "x2", "x0"]

    _run(seed, body)


def test_a_missing_usage_state_is_begun_at_the_agreements_approval(seed: Seed) -> None:
    """An agreement whose usage was never begun (made before the usage state existed) is
    counted from its approval on its first use, not from that use."""

    async def body(w: World) -> None:
        agreement = await w.agreements.active(CONSUMER, "rated")
        assert agreement is not None
        assert agreement.decided_at is not None
        async with w.db.session() as session:
            await session.execute(text("DELETE FROM usage_state WHERE dataset_id = 'rated'"))
        outcome = await w.exchange.query(CALLER, "rated", ASK, Format.JSONL, source=None)
        await _drain(outcome.rest)
        async with w.db.session() as session:
            found = await usage.current(session, key_of(agreement), (), datetime.now(UTC))
        assert found == (1, agreement.decided_at, ())

    _run(seed, body)


def test_a_remembered_count_decides_on_the_same_state_as_a_read_one(seed: Seed) -> None:
    """The state built from the count this replica remembers (no read) is the state read
    from the store: the consumer, its groups (the registry's, carried by the caller), the
    count and the usage's start."""

    async def body(w: World) -> None:
        member = CALLER.participant.participant.model_copy(
            update={"groups": ["urn:group:universities"]}
        )
        caller = TokenCaller(replace(CALLER.participant, participant=member), CALLER.claims)
        ctx = await w.exchange._prelude(caller, "columns", None)
        assert ctx.groups == ("urn:group:universities",)
        agreement = ctx.agreement
        assert agreement is not None
        key, now = key_of(agreement), datetime.now(UTC)
        read, _ = await w.exchange._usage(ctx, key, agreement, (), now)
        assert key in w.exchange._seen  # remembered by the read
        remembered, counts = await w.exchange._usage(ctx, key, agreement, (), now)
        assert counts == ()
        assert remembered == read
        assert dict(remembered.broader) == {
            participant_uri(CONSUMER): frozenset({"urn:group:universities"})
        }
        assert (remembered.use_count, remembered.agreement_start) == (0, agreement.decided_at)

    _run(seed, body)


def test_a_stream_of_several_batches_counts_every_row(seed: Seed) -> None:
    async def body(w: World) -> None:
        cache: ClosingCache[Connector] = ClosingCache(lambda c: c.aclose())
        table = pa.table({"v": list(range(5))})
        lease = await cache.lease("x", "v1", lambda: InMemoryConnector("x", table, batch_size=2))
        ctx = await w.exchange._prelude(CALLER, "columns", None)
        permitted = narrow(Query(columns=("v",)), DataLimits(), await lease.value.schema())
        _, rest, stats = await w.exchange._start(ctx, lease.value, permitted, Format.JSONL, lease)
        await _drain(rest)
        assert stats.rows == 5
        done = await w.last("exchange-completed")
        assert done.rows == 5

    _run(seed, body)


def test_the_noise_of_each_column_is_named_in_one_header(seed: Seed) -> None:
    """Two aggregates share the query's epsilon (each half of it: twice the scale)."""

    async def body(w: World) -> None:
        both = Query(aggregates=(Aggregate(AggFunc.SUM, "temp_c"), Aggregate(AggFunc.COUNT, None)))
        outcome = await w.exchange.query(CALLER, "private", both, Format.JSONL, source=None)
        await _drain(outcome.rest)
        assert outcome.headers["Sluis-Privacy-Noise-Scale"] == "sum_temp_c=800, count_rows=8"

    _run(seed, body)


def test_a_count_read_for_a_refused_request_is_remembered(seed: Seed) -> None:
    """The count read for a decision is remembered even when the policy refuses (a policy
    without rate limit or budget): the next decision on that key reads nothing."""

    async def body(w: World) -> None:
        ask = Query(columns=("machine", "owner"))
        with pytest.raises(Forbidden):
            await w.exchange.query(CALLER, "columns", ask, Format.JSONL, source=None)
        agreement = await w.agreements.active(CONSUMER, "columns")
        assert agreement is not None
        assert w.exchange._seen == {key_of(agreement): (0, agreement.decided_at)}

    _run(seed, body)


def test_a_private_permit_without_a_delta_records_none(seed: Seed) -> None:
    """A budget of epsilon alone: the entry names the query's epsilon and no delta."""

    async def body(w: World) -> None:
        ctx = await w.exchange._prelude(CALLER, "private", None)
        decision, _, _ = await w.exchange._decide_and_spend(ctx, SUM, None)
        limits = decision.limits
        assert limits is not None
        assert limits.privacy is not None
        pure = replace(limits, privacy=replace(limits.privacy, query_delta=None))
        record = private.record(replace(decision, limits=pure), (), datetime.now(UTC))
        assert record == PrivacyRecord(
            epsilon="0.25", delta=None, spent="0.25", budget="1", period="P30D"
        )

    _run(seed, body)


def test_a_query_matching_no_rows_starts_with_an_empty_chunk(seed: Seed) -> None:
    """No row matches: the first chunk is empty (not an error), and the exchange completes
    as permitted with nothing sent."""

    async def body(w: World) -> None:
        none = Query(columns=("machine",), where=(Predicate("machine", Op.EQ, "X999"),))
        outcome = await w.exchange.query(CALLER, "columns", none, Format.JSONL, source=None)
        assert outcome.first == b""
        assert await _drain(outcome.rest) == b""
        done = await w.last("exchange-completed")
        assert (done.rows, done.bytes) == (0, 0)
        assert done.decision is not None
        assert done.decision.reasons[0] == "permit"

    _run(seed, body)


def test_a_streams_completion_records_its_own_duration(seed: Seed) -> None:
    async def body(w: World) -> None:
        began = time.perf_counter()
        outcome = await w.exchange.query(CALLER, "columns", ASK, Format.JSONL, source=None)
        await _drain(outcome.rest)
        took = time.perf_counter() - began
        done = await w.last("exchange-completed")
        assert done.decision is not None
        assert 0 <= float(done.decision.reasons[1].removeprefix("seconds=")) <= took + 0.001

    _run(seed, body)


def test_a_failures_public_reason_is_cut_at_500_in_the_completion(seed: Seed) -> None:
    async def body(w: World) -> None:
        ctx = await w.exchange._prelude(CALLER, "columns", None)
        await w.exchange._complete(ctx, _Stats(), 0.25, "failed: source_broke", _Broken("x"))
        done = await w.last("exchange-completed")
        assert done.decision is not None
        assert done.decision.reasons == ("failed: source_broke", "seconds=0.250", "p" * 500)

    _run(seed, body)


def test_a_use_refused_at_commit_before_this_replica_remembered_any(seed: Seed) -> None:
    """Another replica spent the window's last use: this one, which never remembered a
    count for the key (a rate-limited policy), refuses with the policy's denial."""

    async def body(w: World) -> None:
        twin = ExchangeService(w.db, w.exchange.datasets, w.agreements, w.log,
                               w.exchange.telemetry, owner="gw-2")  # fmt: skip
        outcome = await twin.query(CALLER, "rated", ASK, Format.JSONL, source=None)
        await _drain(outcome.rest)
        ctxs = [await w.exchange._prelude(CALLER, "rated", None) for _ in range(2)]
        decided = [await w.exchange._decide_and_spend(c, ASK, None) for c in ctxs]
        await twin._permit(ctxs[0], decided[0][0], decided[0][2])
        assert not w.exchange._seen
        with pytest.raises(Forbidden) as refused:
            await w.exchange._permit(ctxs[1], decided[1][0], decided[1][2])
        assert refused.value.code == "policy-denied"

    _run(seed, body)


def test_abandoned_exchanges_are_those_of_processes_not_seen_since_the_cutoff(
    seed: Seed,
) -> None:
    """Another process's open exchanges, started before the cutoff, when that process was
    last seen before it (or never), oldest first; seen at the cutoff itself is alive. Then
    the instances not seen since the cutoff are forgotten, the one seen at it kept."""

    async def body(w: World) -> None:
        cutoff = datetime(2026, 1, 1, 12, tzinfo=UTC)
        async with w.db.session() as session:
            await repository.seen(session, "gw-live", cutoff)
            await repository.seen(session, "gw-dead", cutoff - timedelta(seconds=1))
            for name, owner, before in (
                ("a", "gw-dead", timedelta(minutes=10)),
                ("b", "gw-dead", timedelta(minutes=20)),
                ("c", "gw-live", timedelta(minutes=30)),  # its process is alive
                ("d", "gw-dead", timedelta(0)),  # started at the cutoff: too new to judge
                ("e", "gw-me", timedelta(minutes=5)),  # the asking process's own
                ("f", "gw-never", timedelta(minutes=1)),  # a process never recorded
            ):
                opened = (name, owner, CONSUMER, "columns")
                await repository.open_exchange(session, opened, started_at=cutoff - before)
        async with w.db.session() as session:
            rows = await repository.abandoned(session, "gw-me", cutoff)
            assert [r.id for r in rows] == ["b", "a", "f"]
            await repository.forget_instances(session, cutoff)
        async with w.db.session() as session:
            names = (await session.execute(text("SELECT name FROM gateway_instances"))).all()
        assert [n for (n,) in names] == ["gw-live"]

    _run(seed, body)


def test_a_heartbeat_records_what_a_gone_process_left_open(seed: Seed) -> None:
    """This process is recorded alive at ``now``; another's exchange, left open by a process
    last seen longer than ``stale_after`` ago, gets its ``interrupted`` entry (every field),
    once; a process seen within it keeps its exchange; the gone process is forgotten."""

    async def body(w: World) -> None:
        gone = ExchangeService(w.db, w.exchange.datasets, w.agreements, w.log,
                               w.exchange.telemetry, owner="gw-gone")  # fmt: skip
        alive = ExchangeService(w.db, w.exchange.datasets, w.agreements, w.log,
                                w.exchange.telemetry, owner="gw-alive")  # fmt: skip
        start = datetime.now(UTC)
        assert await gone.close_interrupted(now=start) == 0  # gw-gone seen at start
        left = await gone.query(CALLER, "columns", ASK, Format.JSONL, source=None)
        kept = await alive.query(CALLER, "columns", ASK, Format.JSONL, source=None)
        assert left.first
        assert kept.first
        stale = timedelta(seconds=60)
        later = start + stale + timedelta(seconds=2)
        assert await alive.heartbeat(now=start + stale / 2, stale_after=stale) == 0
        assert await w.exchange.heartbeat(now=later, stale_after=stale) == 1
        assert await w.exchange.heartbeat(now=later, stale_after=stale) == 0
        async with w.db.session() as session:
            seen = dict(
                (await session.execute(text("SELECT name, seen_at FROM gateway_instances"))).all()
            )
            still = (await session.execute(text("SELECT owner FROM open_exchanges"))).all()
        assert sorted(seen) == ["gw-1", "gw-alive"]  # gw-gone forgotten, this one recorded
        assert [o for (o,) in still] == ["gw-alive"]
        entries = await w.entries()
        permits = [e for e in entries if e.event == "access-decision"]
        (ended,) = [e for e in entries if e.event == "exchange-completed"]
        assert ended.request_id == permits[0].request_id
        assert ended.time == later
        assert ended.actor == Actor(participant=CONSUMER)
        assert (ended.dataset, ended.action) == ("columns", "read")
        assert ended.decision is not None
        assert ended.decision.result == "permit"
        assert ended.decision.reasons == ("interrupted", "its gateway process stopped being seen")

    _run(seed, body)
