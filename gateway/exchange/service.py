"""One exchange, in the order DESIGN.md draws it.

certificate and bound token (already checked) -> the token's scope for the dataset -> an
active agreement -> the policy decided against the usage so far -> one use
spent atomically from the usage state of (consumer, dataset, policy version), which outlives
any one agreement (a conditional UPDATE: two replicas cannot both spend the last use)
-> the decision entry committed to the audit log (no entry, no data: 503) -> the query
narrowed by the permit's limits (``connectors.narrow``, the only way to a PermittedQuery)
-> the first bytes pulled from the connector before the response starts (so a source that
is down gets a 502/504 problem, not a broken stream) -> the rows streamed -> a completion
entry with rows, bytes and duration.

A refusal at any step is a ``GatewayError`` with a stable code, and an audit entry.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio
import pyarrow as pa

from connectors import (
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
from gateway.agreements import usage
from gateway.agreements.schemas import Agreement
from gateway.agreements.service import AgreementService, key_of
from gateway.agreements.usage import UsageKey
from gateway.audit.entry import Actor, AuditEntry, DecisionRecord, DecisionResult
from gateway.audit.log import AuditLog
from gateway.audit.records import Receipt
from gateway.auth.tokens import TokenRejected
from gateway.datasets.cache import Lease
from gateway.datasets.schemas import Dataset
from gateway.datasets.service import DatasetService
from gateway.errors import BadRequest, Conflict, Forbidden
from gateway.exchange.policy_input import policy_request, policy_state
from gateway.oauth.service import TokenCaller
from gateway.storage.db import Database
from gateway.telemetry import SPAN_AUDIT, SPAN_CONNECTOR, SPAN_POLICY, Telemetry, current_trace_id
from policies import CompiledPolicy, Decision, evaluate, explain
from policies.refusal import refusal_of

SPEND_ATTEMPTS = 3


@dataclass(frozen=True)
class Outcome:
    """A permitted exchange, ready to stream: receipt, first chunk and the rest."""

    receipt: Receipt
    checkpoint: bytes
    media_type: str
    first: bytes
    rest: Rest
    stats: _Stats


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
        chunks: AsyncIterator[bytes],
        stats: _Stats,
        finish: Callable[[str, ConnectorError | None], Awaitable[None]],
    ) -> None:
        self._chunks, self._stats, self._finish = chunks, stats, finish
        self._done = False

    def __aiter__(self) -> Rest:
        return self

    async def __anext__(self) -> bytes:
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


class ExchangeService:
    """Queries against datasets, under agreements and policies, audited."""

    def __init__(
        self,
        db: Database,
        datasets: DatasetService,
        agreements: AgreementService,
        audit: AuditLog,
        telemetry: Telemetry,
    ) -> None:
        self.db = db
        self.datasets = datasets
        self.agreements = agreements
        self.audit = audit
        self.telemetry = telemetry

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
            decision, permitted = await self._decide_and_spend(ctx, query, schema)
            assert permitted is not None  # noqa: S101 - narrowed because a schema was given
            receipt, checkpoint = await self._permit(ctx, decision)
            first, rest, stats = await self._start(ctx, connector, permitted, fmt, lease)
        except BaseException:
            await lease.release()
            raise
        return Outcome(receipt, checkpoint, fmt.media_type, first, rest, stats)

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
        decision, _ = await self._decide_and_spend(ctx, Query(), None)
        receipt, checkpoint = await self._permit(ctx, decision)
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
        )
        ctx.agreement = await self.agreements.active_for(consumer, dataset_id)
        if ctx.agreement is None:
            await self._deny(ctx, ("no-agreement",))
            raise Forbidden("no-agreement", f"no active agreement for dataset {dataset_id}")
        return ctx

    async def _permit(self, ctx: _Context, decision: Decision) -> tuple[Receipt, bytes]:
        """The decision entry, committed before anything leaves, and its checkpoint."""
        with self.telemetry.span(SPAN_AUDIT, event="access-decision"):
            receipt = await self.audit.append(self._entry(ctx, decision, "permit"))
        return receipt, (await self.audit.checkpoint_for(receipt)).note

    async def _decide_and_spend(
        self, ctx: _Context, query: Query, schema: pa.Schema | None
    ) -> tuple[Decision, PermittedQuery | None]:
        """Decide, narrow the query by the permit, then spend one use (retrying a lost race).

        Uses are spent from the usage state of (consumer, dataset, policy version), which
        outlives the agreement. Nothing is spent for a request that is refused, by the policy
        or by ``narrow``.
        """
        agreement = ctx.agreement
        assert agreement is not None  # noqa: S101 - checked by the caller
        if schema is not None:
            await self._check_names(ctx, query, schema)
        policy = await self.datasets.compiled(agreement.policy_hash)  # compiled once per version
        key = key_of(agreement)
        for _ in range(SPEND_ATTEMPTS):
            now = datetime.now(UTC)
            used = await self._usage(key, agreement, now)
            decision = await self._decide(ctx, agreement, policy, query, used=used, now=now)
            assert decision.limits is not None  # noqa: S101 - a permit always carries limits
            permitted = None
            try:
                if schema is not None:
                    permitted = narrow(query, decision.limits, schema)
            except ConnectorError as exc:
                await self._deny(ctx, (exc.code, str(exc)), decision)
                raise
            async with self.db.session() as session:
                if await usage.spend(session, key, used.use_count, now, agreement_id=agreement.id):
                    return decision, permitted
            agreement = ctx.agreement = await self._still_active(agreement)
        raise Conflict("busy-agreement", "too many concurrent uses of this agreement; retry")

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

    async def _usage(self, key: UsageKey, agreement: Agreement, now: datetime) -> usage.Usage:
        """The usage state the decision is made against (begun at the agreement's approval,
        should it be missing)."""
        async with self.db.session() as session:
            found = await usage.read(session, key, now - usage.RATE_WINDOW)
            if found is None:
                await usage.start(session, key, agreement.decided_at or now)
                found = await usage.read(session, key, now - usage.RATE_WINDOW)
        assert found is not None  # noqa: S101 - started just above
        return found

    async def _still_active(self, agreement: Agreement) -> Agreement:
        """After a lost race: the same agreement, re-read, or the refusal if it ended."""
        refreshed = await self.agreements.active_for(agreement.consumer_id, agreement.dataset_id)
        if refreshed is None or refreshed.id != agreement.id:
            raise Forbidden("no-agreement", "the agreement ended while this request was decided")
        return refreshed

    async def _decide(
        self,
        ctx: _Context,
        agreement: Agreement,
        policy: CompiledPolicy,
        query: Query,
        *,
        used: usage.Usage,
        now: datetime,
    ) -> Decision:
        request = policy_request(
            consumer_id=agreement.consumer_id, asset=ctx.dataset.asset, purpose=agreement.purpose,
            columns=query.source_columns(), aggregate=bool(query.aggregates), limit=query.limit,
        )  # fmt: skip
        state = policy_state(
            consumer_id=agreement.consumer_id,
            groups=ctx.groups,
            use_count=used.use_count,
            request_times=used.request_times,
            agreement_start=used.started_at,
        )
        with self.telemetry.span(SPAN_POLICY, dataset=ctx.dataset.id):
            decision = evaluate(policy, request, state, now=now)
        self.telemetry.record_decision(
            "permit" if decision.permitted else "deny", reason=decision.reason
        )
        if not decision.permitted:
            why = (decision.reason, *explain(decision).splitlines()[:50])
            await self._deny(ctx, why, decision)
            raise _refused(decision)
        return decision

    async def _start(
        self,
        ctx: _Context,
        connector: Connector,
        permitted: PermittedQuery,
        fmt: Format,
        lease: Lease[Connector],
    ) -> tuple[bytes, Rest, _Stats]:
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
        """The ``exchange-completed`` entry: ``reasons`` are the result and the duration,
        then, for a failure, its public reason (appended: readers of the first two are
        unchanged; the public sentence, never a server path, host or driver text)."""
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
        )
        await self.audit.append(entry)


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
