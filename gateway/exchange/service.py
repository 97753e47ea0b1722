"""One exchange, in the order DESIGN.md draws it.

certificate and bound token (already checked) -> the token's scope for the dataset -> an
active agreement -> the policy decided against the usage so far -> the query narrowed by
the permit's limits (``connectors.narrow``, the only way to a PermittedQuery) -> one durable
write: the decision entry and the one use it spends, committed together by the audit log's
group commit (the use is the entry's effect: a conditional increment in the usage state of
(consumer, dataset, policy version), capped where the policy stops permitting and only
while the agreement is active; no entry, no use, no data: 503) -> the first bytes pulled
from the connector before the response starts (so a source that is down gets a 502/504
problem, not a broken stream) -> the rows streamed -> a completion entry with rows, bytes
and duration, queued into a later batch (the response does not wait for it; a crash before
it is written is recorded as ``interrupted`` at the next start).

A refusal at any step is a ``GatewayError`` with a stable code, and an audit entry.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import anyio
import pyarrow as pa
from sqlalchemy.ext.asyncio import AsyncSession

from connectors import (
    Chunk,
    Connector,
    ConnectorError,
    Format,
    PermittedQuery,
    Query,
    UnknownColumn,
    encode,
    narrow,
)
from connectors.http_passthrough import HttpPassThrough, Proxied
from connectors.validate import output_schema
from gateway.agreements import privacy, usage
from gateway.agreements.schemas import Agreement
from gateway.agreements.service import AgreementService, key_of
from gateway.agreements.usage import UsageKey
from gateway.audit.entry import Actor, AuditEntry, DecisionRecord, DecisionResult, PrivacyRecord
from gateway.audit.log import AuditLog, Unchanged
from gateway.audit.records import Receipt
from gateway.auth.tokens import TokenRejected
from gateway.datasets.cache import Lease
from gateway.datasets.schemas import Dataset
from gateway.datasets.service import DatasetService
from gateway.errors import BadRequest, Forbidden, NotFound
from gateway.exchange import private, repository
from gateway.exchange.policy_input import policy_request, policy_state
from gateway.oauth.service import TokenCaller
from gateway.storage.db import Database
from gateway.storage.models import OpenExchangeRow
from gateway.telemetry import SPAN_AUDIT, SPAN_CONNECTOR, SPAN_POLICY, Telemetry, current_trace_id
from policies import CompiledPolicy, Decision, PrivacyLimits, Request, State, evaluate, explain
from policies.bounds import count_cap, rate_limits
from policies.refusal import refusal_of


@dataclass(frozen=True)
class Outcome:
    """A permitted exchange, ready to stream: receipt, first chunk and the rest."""

    receipt: Receipt
    checkpoint: bytes
    media_type: str
    first: Chunk
    rest: Rest
    stats: _Stats
    headers: dict[str, str] = field(default_factory=dict)  # the privacy budget's, if any


@dataclass
class _Stats:
    rows: int = 0
    bytes: int = 0


class Rest:
    """The stream after the first chunk. The exchange ends exactly once, however it ends:
    the completion entry is written (``permit``, ``failed: <code>``, or ``interrupted`` when
    the consumer left, also before the stream started) and the connector lease released.
    Whoever sends the stream calls ``aclose`` when done, in any case."""

    def __init__(
        self,
        chunks: AsyncIterator[Chunk],
        stats: _Stats,
        finish: Callable[[str, ConnectorError | None], Awaitable[None]],
    ) -> None:
        self._chunks, self._stats, self._finish = chunks, stats, finish
        self._done = False

    def __aiter__(self) -> Rest:
        return self

    async def __anext__(self) -> Chunk:
        if self._done:
            raise StopAsyncIteration
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            await self._end("permit")
            raise
        except ConnectorError as exc:
            await self._end(f"failed: {exc.code}", exc)
            raise
        self._stats.bytes += len(chunk)
        return chunk

    async def aclose(self) -> None:
        """End the exchange as interrupted, unless it already ended."""
        await self._end("interrupted")

    async def _end(self, result: str, failure: ConnectorError | None = None) -> None:
        if self._done:
            return
        self._done = True
        with anyio.CancelScope(shield=True):  # a consumer gone cancels; this still runs
            try:
                close = getattr(self._chunks, "aclose", None)
                if close is not None:
                    await close()  # the connector's stream, and its upstream, closed now
            finally:
                await self._finish(result, failure)


@dataclass
class _Context:
    """Who asks for which dataset under which agreement: what every entry names."""

    actor: Actor
    dataset: Dataset
    agreement: Agreement | None = None
    trace_id: str | None = None  # of the request: the completion entry is written after it
    groups: tuple[str, ...] = ()  # the consumer's party collections, from the registry
    privacy: PrivacyRecord | None = None  # what a private query spent (issue 17)
    exchange_id: str = ""  # names the permit, its completion, or its interruption


class ExchangeService:
    """Queries against datasets, under agreements and policies, audited."""

    def __init__(
        self,
        db: Database,
        datasets: DatasetService,
        agreements: AgreementService,
        audit: AuditLog,
        telemetry: Telemetry,
        *,
        owner: str | None = None,
    ) -> None:
        self.db = db
        self.datasets = datasets
        self.agreements = agreements
        self.audit = audit
        self.telemetry = telemetry
        self.owner = owner or socket.gethostname()  # whose open exchanges a restart closes
        # Per usage key: a use count this process saw committed (a lower bound: counts only
        # grow, and other processes may have spent more) and the usage's start (fixed).
        self._seen: dict[UsageKey, tuple[int, datetime]] = {}

    async def close_interrupted(self, *, now: datetime) -> int:
        """At start: record every exchange this owner left open (cut off by a crash).

        Each gets an ``exchange-completed`` entry with the result ``interrupted`` and the
        decision's ``request_id``; the entry and the row's removal commit together, so an
        exchange is closed once, even by two starts at the same time. How many were closed.
        """
        async with self.db.session() as session:
            await repository.seen(session, self.owner, now)  # alive: not abandoned
            rows = await repository.left_open(session, self.owner)
        return await self._close_open(
            rows, ("interrupted", "the gateway stopped before the exchange ended"), now
        )

    async def heartbeat(self, *, now: datetime, stale_after: timedelta) -> int:
        """Say this process is alive; close the exchanges of processes that are not.

        An exchange whose process was not seen for ``stale_after`` (killed, and never
        started again under its ``instance_name``: a replaced Kubernetes pod) gets its
        ``interrupted`` entry here, from whichever replica looks first, once. How many.
        """
        cutoff = now - stale_after
        async with self.db.session() as session:
            await repository.seen(session, self.owner, now)
            rows = await repository.abandoned(session, self.owner, cutoff)
        closed = await self._close_open(
            rows, ("interrupted", "its gateway process stopped being seen"), now
        )
        async with self.db.session() as session:
            await repository.forget_instances(session, cutoff)
        return closed

    async def _close_open(
        self, rows: Sequence[OpenExchangeRow], why: tuple[str, str], now: datetime
    ) -> int:
        """An ``interrupted`` completion entry for each open exchange in ``rows``, each with
        its row's removal in one transaction (so each is closed once, whoever tries)."""
        entries = [
            AuditEntry(
                time=now,
                event="exchange-completed",
                actor=Actor(participant=row.consumer_id),
                dataset=row.dataset_id,
                action="read",
                request_id=row.id,
                decision=DecisionRecord(result="permit", reasons=why),
            )
            for row in rows
        ]
        done = await asyncio.gather(  # together: they share batches
            *(
                self.audit.append(entry, effect=_closing(row.id, strict=True))
                for entry, row in zip(entries, rows, strict=True)
            ),
            return_exceptions=True,
        )
        failed = [
            d for d in done if isinstance(d, BaseException) and not isinstance(d, _AlreadyClosed)
        ]
        if failed:
            raise failed[0]
        return sum(1 for d in done if not isinstance(d, BaseException))

    async def query(
        self, caller: TokenCaller, dataset_id: str, query: Query, fmt: Format, *, source: str | None
    ) -> Outcome:
        """Decide, audit and start one query (see the module docstring)."""
        ctx = await self._prelude(caller, dataset_id, source)
        if self.datasets.is_passthrough(ctx.dataset):
            raise BadRequest(
                "not-a-table", f"{dataset_id} is an API: call /v1/datasets/{dataset_id}/api/..."
            )
        lease = await self.datasets.lease_connector(ctx.dataset)
        try:
            connector = lease.value
            try:
                schema = await connector.schema()
            except ConnectorError as exc:  # the source is down or misconfigured: nothing decided
                await self._deny(ctx, (exc.code, str(exc)))
                raise
            decision, permitted, spend = await self._decide_and_spend(ctx, query, schema)
            assert permitted is not None  # noqa: S101 - narrowed because a schema was given
            receipt, checkpoint = await self._permit(ctx, decision, spend)
            first, rest, stats = await self._start(ctx, connector, permitted, fmt, lease)
        except BaseException:
            await lease.release()
            raise
        headers = private.headers(ctx.privacy, permitted.query)
        return Outcome(receipt, checkpoint, fmt.media_type, first, rest, stats, headers)

    async def privacy_budget(
        self, caller: TokenCaller, dataset_id: str, *, source: str | None
    ) -> privacy.Budget:
        """The consumer's privacy budget for the dataset, under its active agreement."""
        ctx = await self._prelude(caller, dataset_id, source)
        assert ctx.agreement is not None  # noqa: S101 - _prelude refuses without one
        limits = private.budgeted(await self.datasets.compiled(ctx.agreement.policy_hash))
        if limits is None:
            raise NotFound("no-privacy-budget", f"dataset {dataset_id} has no privacy budget")
        now = datetime.now(UTC)
        spent = await private.spends(self.db, key_of(ctx.agreement), limits, now)
        return privacy.budget_of(limits, spent, now)

    async def call_api(
        self, caller: TokenCaller, dataset_id: str, method: str, path: str, body: bytes | None,
        *, source: str | None, content_type: str | None = None,
    ) -> tuple[Proxied, Receipt, bytes]:  # fmt: skip
        """A pass-through API call: decided and audited like a query; JSON fields narrowed.

        The policy must list the fields (``columns``) that may pass; without that list no
        field passes (fail closed).
        """
        ctx = await self._prelude(caller, dataset_id, source)
        if not self.datasets.is_passthrough(ctx.dataset):
            raise BadRequest("not-an-api", f"{dataset_id} is a table: use /query or /data")
        lease = await self.datasets.lease_passthrough(ctx.dataset)
        try:
            sent = (body, content_type)
            return await self._call_api(ctx, lease.value, method, "/" + path, sent)
        finally:
            await lease.release()

    async def _call_api(
        self,
        ctx: _Context,
        proxy: HttpPassThrough,
        method: str,
        path: str,
        sent: tuple[bytes | None, str | None],  # the body and its Content-Type
    ) -> tuple[Proxied, Receipt, bytes]:
        try:
            proxy.check(method, path)  # before anything is decided or spent
        except ConnectorError as exc:
            await self._deny(ctx, (exc.code, str(exc)))
            raise
        decision, _, spend = await self._decide_and_spend(ctx, Query(), None)
        receipt, checkpoint = await self._permit(ctx, decision, spend)
        columns = decision.limits.columns if decision.limits and decision.limits.columns else ()
        stats, started, result = _Stats(), time.perf_counter(), "permit"
        failure: ConnectorError | None = None
        try:
            with self.telemetry.span(
                SPAN_CONNECTOR, dataset=ctx.dataset.id, kind="http-passthrough"
            ):
                proxied = await proxy.call(
                    method, path, tuple(columns), body=sent[0], content_type=sent[1]
                )
            stats.bytes = len(proxied.body)
            if proxied.refused:
                result = f"upstream-refused: {proxied.status}"
        except ConnectorError as exc:
            result, failure = f"failed: {exc.code}", exc
            raise
        finally:
            await self._complete(ctx, stats, time.perf_counter() - started, result, failure)
        return proxied, receipt, checkpoint

    async def _prelude(self, caller: TokenCaller, dataset_id: str, source: str | None) -> _Context:
        """The scope, the dataset and an active agreement, or the refusal (audited)."""
        consumer = caller.participant.participant.id
        actor = Actor(
            participant=consumer,
            client=caller.claims.client_id,
            certificate=caller.participant.certificate.thumbprint_sha256,
            source=source,
        )
        if f"dataset:{dataset_id}" not in caller.claims.scopes:
            # Any verified participant may read the catalog, so it may learn that a dataset
            # does not exist: 404 says that (the scope cannot help), 403 the scope it lacks.
            await self.datasets.get(dataset_id)
            raise TokenRejected(
                "insufficient-scope", f"the token lacks the scope dataset:{dataset_id}",
                error="insufficient_scope",
            )  # fmt: skip
        ctx = _Context(
            actor,
            await self.datasets.get(dataset_id),
            trace_id=current_trace_id(),
            groups=tuple(caller.participant.participant.groups),
            exchange_id=secrets.token_hex(16),
        )
        ctx.agreement = await self.agreements.active(consumer, dataset_id)  # in memory
        if ctx.agreement is None:
            await self._deny(ctx, ("no-agreement",))
            raise Forbidden("no-agreement", f"no active agreement for dataset {dataset_id}")
        return ctx

    async def _permit(
        self, ctx: _Context, decision: Decision, spend: _Spend
    ) -> tuple[Receipt, bytes]:
        """The decision entry and the use it spends, committed together before anything
        leaves (one transaction of the log's group commit), and its checkpoint.

        A use the store refuses at commit (the limit was reached by requests decided at the
        same time, or the agreement ended) writes no permit: it is denied, and audited so.
        """
        try:
            with self.telemetry.span(SPAN_AUDIT, event="access-decision"):
                receipt = await self.audit.append(
                    self._entry(ctx, decision, "permit"), effect=spend
                )
        except _SpendRefused as refused:
            self._seen.pop(spend.key, None)  # others spent meanwhile: read it next time
            await self._refuse_spend(ctx, refused)
            raise  # pragma: no cover - _refuse_spend always raises
        if spend.spent is not None:  # committed: the count is at least this now
            self._remember(spend.key, spend.spent, spend.state.agreement_start)
        return receipt, (await self.audit.checkpoint_for(receipt)).note

    def _remember(self, key: UsageKey, count: int, started_at: datetime | None) -> None:
        if started_at is None:
            return
        seen = self._seen.get(key)
        if seen is None or seen[0] < count:
            self._seen[key] = (count, started_at)

    async def _refuse_spend(self, ctx: _Context, refused: _SpendRefused) -> None:
        """The denial of a use refused at commit, audited; always raises."""
        if refused.decision is None:
            await self._deny(ctx, ("no-agreement", "the agreement ended before the use"))
            raise Forbidden("no-agreement", "the agreement ended while this request was decided")
        await self._refuse(ctx, refused.decision)

    async def _decide_and_spend(
        self, ctx: _Context, query: Query, schema: pa.Schema | None
    ) -> tuple[Decision, PermittedQuery | None, _Spend]:
        """Decide, narrow the query by the permit, and make the spend of one use.

        The spend is not run here: it is the decision entry's effect (see ``_permit``), a
        conditional increment that holds only while the policy still permits at the stored
        count (its cap) and the agreement is active. Uses are spent from the usage state of
        (consumer, dataset, policy version), which outlives the agreement. Nothing is spent
        for a request that is refused, by the policy or by ``narrow``.
        """
        agreement = ctx.agreement
        assert agreement is not None  # noqa: S101 - checked by the caller
        if schema is not None:
            await self._check_names(ctx, query, schema)
        policy = await self.datasets.compiled(agreement.policy_hash)  # compiled once per version
        rates = rate_limits(policy.policy)
        now = datetime.now(UTC)
        key = key_of(agreement)
        budget = private.budgeted(policy)
        state, counts = await self._usage(ctx, key, agreement, rates, now, budget=budget)
        request = policy_request(
            consumer_id=agreement.consumer_id, asset=ctx.dataset.asset, purpose=agreement.purpose,
            columns=query.source_columns(), aggregate=bool(query.aggregates), limit=query.limit,
        )  # fmt: skip
        decision = await self._decide(ctx, policy, request, state, now)
        assert decision.limits is not None  # noqa: S101 - a permit always carries limits
        permitted = None
        try:
            if schema is not None:
                permitted = narrow(query, decision.limits, schema)
        except ConnectorError as exc:
            await self._deny(ctx, (exc.code, str(exc)), decision)
            raise
        opened = (ctx.exchange_id, self.owner, agreement.consumer_id, ctx.dataset.id)
        ctx.privacy = private.record(decision, state.privacy_spends, now)  # for the entry
        spend = _Spend(
            policy, request, state, now, key, agreement.id, rates, counts, opened,
            decision.limits.privacy,
        )  # fmt: skip
        return decision, permitted, spend

    async def _check_names(self, ctx: _Context, query: Query, schema: pa.Schema) -> None:
        """A misspelt column is the consumer's 400 before the policy is asked (nothing spent).

        The dataset's column names are public (the catalog lists them), so this tells the
        consumer nothing the policy keeps; the policy still decides which it releases.
        """
        for column in query.source_columns():
            if column not in schema.names:
                exc = UnknownColumn(column)
                await self._deny(ctx, (exc.code, str(exc), column))  # raw: the log escapes
                raise exc

    async def _usage(
        self,
        ctx: _Context,
        key: UsageKey,
        agreement: Agreement,
        rates: tuple[tuple[int, str], ...],
        now: datetime,
        *,
        budget: PrivacyLimits | None = None,
    ) -> tuple[State, tuple[int, ...]]:
        """The state the decision is made against, and the uses in each rate window (begun
        at the agreement's approval, should it be missing). Rate buckets are read only for a
        policy with a rate limit, the privacy spends only for one with a budget (in the
        same session, after the use count); nothing read depends on how many uses there
        were."""
        windows = tuple(w for _, w in rates)
        seen = self._seen.get(key) if not rates and budget is None else None
        if seen is not None:  # no read: the spend's conditional UPDATE has the last word
            use_count, started_at = seen
            state = policy_state(
                consumer_id=agreement.consumer_id, groups=ctx.groups, use_count=use_count,
                request_times=(), agreement_start=started_at, privacy_spends=(),
            )  # fmt: skip
            return state, ()
        async with self.db.session() as session:
            found = await usage.current(session, key, windows, now)
            if found is None:
                await usage.start(session, key, agreement.decided_at or now)
                found = await usage.current(session, key, windows, now)
            spends = await private.read(session, key, budget, now) if budget else ()
        assert found is not None  # noqa: S101 - started just above
        use_count, started_at, counts = found
        if not rates and budget is None:
            self._remember(key, use_count, started_at)
        state = policy_state(
            consumer_id=agreement.consumer_id,
            groups=ctx.groups,
            use_count=use_count,
            request_times=_times(rates, counts, now),
            agreement_start=started_at,
            privacy_spends=spends,
        )
        return state, counts

    async def _decide(
        self, ctx: _Context, policy: CompiledPolicy, request: Request, state: State, now: datetime
    ) -> Decision:
        with self.telemetry.span(SPAN_POLICY, dataset=ctx.dataset.id):
            decision = evaluate(policy, request, state, now=now)
        self.telemetry.record_decision(
            "permit" if decision.permitted else "deny", reason=decision.reason
        )
        if not decision.permitted:
            await self._refuse(ctx, decision)
        return decision

    async def _refuse(self, ctx: _Context, decision: Decision) -> None:
        """The policy's denial, audited with its explanation; always raises."""
        why = (decision.reason, *explain(decision).splitlines()[:50])
        await self._deny(ctx, why, decision)
        raise _refused(decision)

    async def _start(
        self,
        ctx: _Context,
        connector: Connector,
        permitted: PermittedQuery,
        fmt: Format,
        lease: Lease[Connector],
    ) -> tuple[Chunk, Rest, _Stats]:
        stats = _Stats()
        started = time.perf_counter()
        schema = output_schema(permitted.query, await connector.schema())
        chunks = encode(self._counted(connector.stream(permitted), stats), fmt, schema)
        try:
            with self.telemetry.span(SPAN_CONNECTOR, dataset=ctx.dataset.id, kind=connector.kind):
                first = await anext(chunks, b"")  # a ConnectorError here becomes 502/504
        except ConnectorError as exc:
            seconds = time.perf_counter() - started
            await self._complete(ctx, stats, seconds, f"failed: {exc.code}", exc)
            raise
        stats.bytes += len(first)

        async def finish(result: str, failure: ConnectorError | None) -> None:
            try:
                await self._complete(ctx, stats, time.perf_counter() - started, result, failure)
            finally:
                await lease.release()

        return first, Rest(chunks, stats, finish), stats

    @staticmethod
    async def _counted(batches: AsyncIterator[object], stats: _Stats) -> AsyncIterator[object]:
        async for batch in batches:
            stats.rows += batch.num_rows  # type: ignore[attr-defined]  # pyarrow RecordBatch
            yield batch

    @staticmethod
    def _entry(
        ctx: _Context,
        decision: Decision | None,
        result: DecisionResult,
        reasons: tuple[str, ...] = (),
    ) -> AuditEntry:
        agreement = ctx.agreement
        return AuditEntry(
            time=datetime.now(UTC),
            event="access-decision",
            actor=ctx.actor,
            dataset=ctx.dataset.id,
            action="read",
            purpose=agreement.purpose if agreement else None,
            decision=DecisionRecord(
                result=result,
                policy_id=decision.policy_id if decision else None,
                policy_hash=decision.policy_hash if decision else None,
                reasons=tuple(r[:500] for r in reasons),
            ),
            target=f"agreement:{agreement.id}" if agreement else None,
            trace_id=current_trace_id(),
            privacy=ctx.privacy if result == "permit" else None,
            request_id=(ctx.exchange_id or None) if result == "permit" else None,
        )

    async def _deny(
        self, ctx: _Context, reasons: tuple[str, ...], decision: Decision | None = None
    ) -> None:
        await self.audit.append(self._entry(ctx, decision, "deny", reasons))

    async def _complete(
        self,
        ctx: _Context,
        stats: _Stats,
        seconds: float,
        result: str,
        failure: ConnectorError | None = None,
    ) -> None:
        """Queue the ``exchange-completed`` entry; the response does not wait for it. It
        closes the open exchange in its transaction; a crash before that leaves the row, and
        the next start records the exchange as interrupted (``close_interrupted``).

        ``reasons`` are the result and the duration, then, for a failure, its public reason
        (appended: readers of the first two are unchanged; the public sentence, never a
        server path, host or driver text)."""
        reasons: tuple[str, ...] = (result, f"seconds={seconds:.3f}")
        if failure is not None:
            reasons = (*reasons, failure.public_reason[:500])
        entry = AuditEntry(
            time=datetime.now(UTC),
            event="exchange-completed",
            actor=ctx.actor,
            dataset=ctx.dataset.id,
            action="read",
            rows=stats.rows,
            bytes=stats.bytes,
            decision=DecisionRecord(result="permit", reasons=reasons),
            trace_id=ctx.trace_id,
            request_id=ctx.exchange_id or None,
        )
        self.audit.enqueue(entry, effect=_closing(ctx.exchange_id))


class _SpendRefused(Unchanged):
    """The store refused the use at commit: ``decision`` is the denial at the stored usage,
    or None when the agreement is no longer active. Raised before the effect writes."""

    def __init__(self, decision: Decision | None) -> None:
        super().__init__("use refused")
        self.decision = decision


@dataclass
class _Spend:
    """The spend of one use, run as the decision entry's effect in the batch transaction.

    The count: one conditional increment, capped where this request would stop being
    permitted (``policies.bounds.count_cap``). Rate windows: re-read in the transaction
    (which holds the log's sequencer lock, so across replicas too) and, if others spent
    since the decision, the policy is asked again at the fresh counts. A refusal raises
    ``_SpendRefused`` and rolls the effect back; the decision entry is not written.
    A privacy budget (issue 17) is treated like the rate windows: its spends are re-read in
    the transaction, the policy asked again if others spent since, and this query's epsilon
    is spent with the use's number, in the same transaction as the use and the entry.
    """

    policy: CompiledPolicy
    request: Request
    state: State
    now: datetime
    key: UsageKey
    agreement_id: str
    rates: tuple[tuple[int, str], ...]
    counts: tuple[int, ...]
    opened: tuple[str, str, str, str]  # exchange id, owner, consumer, dataset
    privacy: PrivacyLimits | None = None  # the permit's privacy budget and query cost
    spent: int | None = field(default=None, init=False)  # the use's number, once run

    async def __call__(self, session: AsyncSession) -> None:
        self.spent = None
        state = self.state
        if self.rates:
            windows = tuple(w for _, w in self.rates)
            fresh = await usage.window_counts(session, self.key, windows, self.now)
            if fresh != self.counts:
                state = replace(state, request_times=_times(self.rates, fresh, self.now))
                self._check(state)
        if self.privacy is not None:
            spends = await private.read(session, self.key, self.privacy, self.now)
            if spends != state.privacy_spends:
                state = replace(state, privacy_spends=spends)
                self._check(state)
        cap = count_cap(self.policy, self.request, state, now=self.now)
        windows = tuple(w for _, w in self.rates)
        widths = tuple(sorted({usage.width_for(w) for w in windows}))
        spent = await usage.spend(
            session, self.key, self.now, agreement_id=self.agreement_id, cap=cap,
            widths=widths, windows=windows,
        )  # fmt: skip
        if spent is None:
            if not await usage.agreement_active(session, self.agreement_id):
                raise _SpendRefused(None)
            found = await usage.current(session, self.key, (), self.now)
            stored = found[0] if found else state.use_count
            self._check(replace(state, use_count=stored))
            raise _SpendRefused(None)  # pragma: no cover - the cap and the policy agree
        if self.privacy is not None:
            await private.spend(session, self.key, spent, self.privacy, self.now)
        await repository.open_exchange(session, self.opened, started_at=self.now)
        self.spent = spent

    def _check(self, state: State) -> None:
        decision = evaluate(self.policy, self.request, state, now=self.now)
        if not decision.permitted:
            raise _SpendRefused(decision)


class _AlreadyClosed(Unchanged):
    """The exchange was closed already (by its completion, or by another start): the DELETE
    found no row, so nothing was written."""


def _closing(
    exchange_id: str, *, strict: bool = False
) -> Callable[[AsyncSession], Awaitable[None]]:
    """The effect that closes an open exchange with the entry that ends it; ``strict``: only
    if it is still open (a restart's record of an interruption is written once)."""

    async def close(session: AsyncSession) -> None:
        if not strict:  # whether it was still open changes nothing: staged with the batch
            await repository.end_exchange(session, exchange_id)
        elif not await repository.close_exchange(session, exchange_id):
            raise _AlreadyClosed(exchange_id)

    return close


def _times(
    rates: tuple[tuple[int, str], ...], counts: tuple[int, ...], now: datetime
) -> tuple[datetime, ...]:
    """Use times standing for the rate windows' counts (enough to decide every limit)."""
    if not rates:
        return ()
    cap = max(limit for limit, _ in rates) + 1
    return usage.request_times(tuple(w for _, w in rates), counts, now, cap=cap)


def _refused(decision: Decision) -> Forbidden:
    """The 403 a denied consumer gets: which of its own choices failed, when it may know."""
    refusal = refusal_of(decision)  # see policies/refusal.py and docs/policies.md
    if refusal is None:
        return Forbidden(
            "policy-denied", f"the usage policy does not allow this ({decision.reason})"
        )
    if refusal.code == "column-not-allowed":
        named = ", ".join(repr(c) for c in refusal.columns)
        return Forbidden(refusal.code, f"the usage policy does not release the column(s) {named}")
    return Forbidden(
        refusal.code,
        "the usage policy allows aggregates only: group by columns and ask for functions",
    )
