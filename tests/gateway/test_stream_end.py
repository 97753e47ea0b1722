"""A streamed exchange ends exactly once, however its response ends (issue 12): the consumer
gone before the first byte still releases the connector lease (so a replaced connector is
closed) and writes the completion entry, as ``interrupted``.

The real response class of the query endpoints is driven as an ASGI app, over the real
``ExchangeService._start``, a real connector cache and a real audit log (SQLite and
PostgreSQL). The consumer's disconnect is the ASGI server's part, the boundary we do not own:
``receive`` reports it (ASGI < 2.4) or ``send`` fails with ``OSError`` (ASGI 2.4).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest
from opentelemetry import metrics, trace
from starlette.requests import ClientDisconnect

from connectors import Format, narrow
from connectors.errors import SourceRejected
from connectors.query import Query
from connectors.testing import InMemoryConnector
from gateway.audit.entry import Actor
from gateway.audit.log import AuditLog
from gateway.datasets.cache import ClosingCache
from gateway.exchange.endpoints import _stream
from gateway.exchange.service import ExchangeService, Outcome, _Context
from gateway.storage.db import Database
from gateway.telemetry import Telemetry
from policies import DataLimits
from tests.audit.logs import ORIGIN, SIGNER, sample
from tests.support.databases import database_url


class _Tracked(InMemoryConnector):
    closed = False

    async def aclose(self) -> None:
        self.closed = True
        await super().aclose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as found:
        yield found


async def _never() -> dict[str, Any]:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def _gone() -> dict[str, Any]:
    return {"type": "http.disconnect"}


def _exchange(
    url: str, spec: str, receive: Any, fail_send: bool, rows: int = 1000
) -> tuple[bool, list[Any], int]:
    """Stream one exchange whose connector was replaced meanwhile (``rows`` rows, ten a
    batch); (closed, completions, messages sent)."""

    async def run() -> tuple[bool, list[Any], int]:
        db = Database(url)
        await db.upgrade()
        log = AuditLog(db, SIGNER, ORIGIN)
        cache: ClosingCache[_Tracked] = ClosingCache(lambda c: c.aclose())
        table = pa.table({"v": list(range(rows))})
        lease = await cache.lease("x", "old", lambda: _Tracked("x", table, batch_size=10))
        await (await cache.lease("x", "new", lambda: _Tracked("x", table))).release()
        telemetry = Telemetry(trace.NoOpTracerProvider(), metrics.NoOpMeterProvider())
        service = ExchangeService(db, None, None, log, telemetry)  # type: ignore[arg-type]
        ctx = _Context(Actor(participant="p"), SimpleNamespace(id="x"))  # type: ignore[arg-type]
        schema = await lease.value.schema()
        permitted = narrow(Query(columns=("v",)), DataLimits(), schema)
        try:
            first, rest, stats = await service._start(
                ctx, lease.value, permitted, Format.JSONL, lease
            )
            receipt = await log.append(sample(0))
            checkpoint = (await log.checkpoint_for(receipt)).note
            outcome = Outcome(receipt, checkpoint, "application/x-ndjson", first, rest, stats)
            sent: list[Any] = []

            async def send(message: Any) -> None:
                if fail_send:
                    raise OSError("the consumer is gone")
                await asyncio.sleep(0)  # a server's send lets other tasks run
                sent.append(message)

            scope = {"type": "http", "asgi": {"spec_version": spec}}
            with contextlib.suppress(ClientDisconnect):  # ASGI 2.4: how a send failure ends
                await _stream(outcome)(scope, receive, send)
            entries = [r.entry for r in await log.entries()]
            done = [e.decision.reasons[0] for e in entries if e.event == "exchange-completed"]
            return lease.value.closed, done, len(sent)
        finally:
            await log.close()
            await db.dispose()

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("spec", "fail_send"), [("2.3", False), ("2.4", True)], ids=["disconnect", "send-fails"]
)
def test_a_consumer_gone_before_the_stream_ends_releases_and_records_it(
    url: str, spec: str, fail_send: bool
) -> None:
    closed, done, _ = _exchange(url, spec, _gone, fail_send)
    assert closed  # the replaced connector was closed with its last lease
    assert done == ["interrupted"]


def test_a_stream_read_to_the_end_completes_once_as_permitted(url: str) -> None:
    closed, done, sent = _exchange(url, "2.3", _never, fail_send=False)
    assert closed
    assert done == ["permit"]
    assert sent > 2  # the start, the rows, the end


def test_a_one_piece_answer_is_sent_without_listening_for_the_consumer(url: str) -> None:
    """Under ASGI < 2.4 an answer that ended with its first chunk is sent at once (the
    start, then the chunk with the end: two messages, so two writes to the socket, not
    three) with no task listening for a disconnect (nothing is left to stop): ``receive``
    is never called; the lease is released and the exchange completed once."""
    asked: list[str] = []

    async def receive() -> dict[str, Any]:
        asked.append("receive")
        return await _never()

    closed, done, sent = _exchange(url, "2.3", receive, fail_send=False, rows=10)
    assert (closed, done, sent) == (True, ["permit"], 2)
    assert asked == []


class _FailsMidStream(InMemoryConnector):
    """Some batches, then the source breaks, with a reason naming a server-side path."""

    async def _source(self, query: Query) -> AsyncIterator[pa.RecordBatch]:
        async for batch in super()._source(query):
            yield batch
        raise SourceRejected("/srv/sluis/data/x.parquet: garbage at byte 7")


def test_a_stream_that_fails_records_its_public_reason(url: str) -> None:
    async def run() -> tuple[Any, bool]:
        db = Database(url)
        await db.upgrade()
        log = AuditLog(db, SIGNER, ORIGIN)
        cache: ClosingCache[_FailsMidStream] = ClosingCache(lambda c: c.aclose())
        table = pa.table({"v": list(range(100))})
        lease = await cache.lease("x", "v1", lambda: _FailsMidStream("x", table, batch_size=10))
        telemetry = Telemetry(trace.NoOpTracerProvider(), metrics.NoOpMeterProvider())
        service = ExchangeService(db, None, None, log, telemetry)  # type: ignore[arg-type]
        ctx = _Context(Actor(participant="p"), SimpleNamespace(id="x"))  # type: ignore[arg-type]
        permitted = narrow(Query(columns=("v",)), DataLimits(), await lease.value.schema())
        try:
            _, rest, _ = await service._start(ctx, lease.value, permitted, Format.JSONL, lease)
            with pytest.raises(SourceRejected):  # after the first chunk: mid-stream
                async for _chunk in rest:
                    pass
            entries = [r.entry for r in await log.entries()]
            done = [e for e in entries if e.event == "exchange-completed"]
            return done, rest._done
        finally:
            await log.close()
            await db.dispose()

    done, ended = asyncio.run(run())
    assert ended
    assert len(done) == 1
    reasons = done[0].decision.reasons
    assert reasons[0] == "failed: source_rejected"  # the fields readers know stay where they were
    assert reasons[1].startswith("seconds=")
    assert reasons[2:] == (SourceRejected.fixed_public,)  # the reason, appended
    assert "/srv" not in " ".join(reasons)  # the public sentence, never the server's path
