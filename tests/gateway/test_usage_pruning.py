"""Pruning usage rows: what no rate window can read any more goes, everything else stays.

Rate buckets and use rows would otherwise grow with every use forever. Every
``PRUNE_EVERY``-th use of a key deletes that key's rows beyond its policy's longest window
(and beyond ``RATE_WINDOW`` for use rows), less a margin, in the spend's own transaction;
the counts any window reads, now or later, are the same after it (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import insert, select, update

from gateway.agreements import usage
from gateway.agreements.usage import PRUNE_EVERY, PRUNE_MARGIN, RATE_WINDOW, UsageKey
from gateway.storage.db import Database
from gateway.storage.models import UsageBucketRow, UsageEventRow, UsageStateRow
from policies.operands.temporal import add_duration
from tests.gateway.test_agreement_uses import _active, _close, _world
from tests.support.databases import database_url
from tests.support.pki import NOW

WINDOWS = ("PT10M", "PT2H", "P30D")  # bucket widths 1 s, 60 s and one day


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as value:
        yield value


def _expected(now: datetime) -> tuple[datetime, dict[int, int]]:
    """What must stay, written out by hand for WINDOWS (not by the code under test)."""
    margin = PRUNE_MARGIN
    oldest = now - RATE_WINDOW - margin  # 31 days is longer than the longest window (30)
    seconds = {1: 600, 60: 7200, 86400: 30 * 86400}
    firsts = {w: int((now - timedelta(seconds=s) - margin).timestamp()) // w
              for w, s in seconds.items()}  # fmt: skip
    return oldest, firsts


async def _seed(db: Database, key: UsageKey, now: datetime, used: int) -> None:
    """Per width: the last bucket beyond the window, the first inside, a recent one; use
    rows just beyond and just inside the horizon and a recent one; the count at ``used``."""
    oldest, firsts = _expected(now)
    columns = key.columns()
    buckets = [
        {**columns, "width": w, "bucket": b, "uses": 1}
        for w, first in firsts.items()
        for b in (first - 1, first, int(now.timestamp()) // w - 1)
    ]
    times = (oldest - timedelta(seconds=1), oldest + timedelta(seconds=1), now - timedelta(1))
    events = [{**columns, "seq": i + 1, "at": t} for i, t in enumerate(times)]
    async with db.session() as session:
        await session.execute(insert(UsageBucketRow), buckets)
        await session.execute(insert(UsageEventRow), events)
        await session.execute(update(UsageStateRow).values(use_count=used))


async def _rows(db: Database) -> tuple[set[tuple[int, int]], set[datetime]]:
    async with db.session() as session:
        buckets = await session.execute(select(UsageBucketRow.width, UsageBucketRow.bucket))
        events = await session.scalars(select(UsageEventRow.at))
        return {(int(w), int(b)) for w, b in buckets}, set(events)


async def _counts(db: Database, key: UsageKey, at: datetime) -> tuple[int, ...]:
    async with db.session() as session:
        return await usage.window_counts(session, key, WINDOWS, at)


async def _spend(db: Database, key: UsageKey, agreement_id: str, now: datetime) -> int | None:
    widths = tuple(sorted({usage.width_for(w) for w in WINDOWS}))
    async with db.session() as session:
        return await usage.spend(
            session, key, now, agreement_id=agreement_id, cap=None, widths=widths,
            windows=WINDOWS,
        )  # fmt: skip


@dataclass(frozen=True)
class Snapshot:
    """A key's bucket (width, bucket) pairs, use times, and window counts at three times."""

    buckets: set[tuple[int, int]]
    events: set[datetime]
    counts: list[tuple[int, ...]]


def _run(url: str, used: int) -> tuple[Snapshot, Snapshot]:
    """Seed a key at ``used`` uses, spend one at NOW: rows and counts before and after."""

    async def run() -> tuple[Snapshot, Snapshot]:
        db = Database(url)
        try:
            await _world(db)
            agreement_id, key = await _active(db)
            await _seed(db, key, NOW, used)
            later = (NOW, NOW + timedelta(minutes=5), NOW + timedelta(minutes=9))
            before = Snapshot(*await _rows(db), [await _counts(db, key, t) for t in later])
            assert await _spend(db, key, agreement_id, NOW) == used + 1
            after = Snapshot(*await _rows(db), [await _counts(db, key, t) for t in later])
            return before, after
        finally:
            await _close(db)

    return asyncio.run(run())


def test_rows_beyond_every_window_go_and_the_counts_stay(url: str) -> None:
    before, after = _run(url, PRUNE_EVERY - 1)  # this spend is the key's 64th use
    oldest, firsts = _expected(NOW)
    buckets, events = after.buckets, after.events
    assert not any(b < firsts[w] for w, b in buckets)  # beyond the window: gone
    old_buckets, old_events = before.buckets, before.events
    kept = {(w, b) for w, b in old_buckets if b >= firsts[w]}
    assert kept
    assert kept <= buckets  # the first bucket a window reads, and later ones: kept
    assert {t for t in old_events if t >= oldest} <= events
    assert not any(t < oldest for t in events)
    assert len(old_buckets) - len(kept) == 3  # one beyond each width's window
    assert len(events) == len(old_events)  # one beyond the horizon gone, the new use's added
    # What every window counts, now and minutes later, is what it counted before plus
    # the one use just spent: a rate limit decides exactly as without pruning.
    for counted_before, counted_after in zip(before.counts, after.counts, strict=True):
        assert counted_after == tuple(n + 1 for n in counted_before)


def test_nothing_is_pruned_between_the_pruning_uses(url: str) -> None:
    before, after = _run(url, PRUNE_EVERY)  # the 65th use: not a pruning one
    assert before.buckets <= after.buckets
    assert before.events <= after.events


WINDOW = st.sampled_from(["PT1S", "PT19M59S", "PT20M", "PT2H", "P1D", "P1W", "P19D", "P1M",
                          "P2M", "P1Y", "P1Y1M", "P4Y", "P1M1DT1H"])  # fmt: skip
MOMENT = st.datetimes(datetime(2001, 1, 1), datetime(2090, 1, 1), timezones=st.just(UTC))


@given(st.lists(WINDOW, min_size=1, max_size=3), MOMENT, st.integers(-1800, 800 * 86400))
def test_a_later_request_finds_every_bucket_it_reads(
    windows: list[str], now: datetime, later_seconds: int
) -> None:
    """Pruned at ``now``, a request up to half the margin earlier (a clock behind) or any
    time later reads only buckets and use rows that were kept, on any calendar day."""
    oldest, firsts = usage.prune_bounds(tuple(windows), now)
    assert oldest <= now - RATE_WINDOW
    at = now + timedelta(seconds=later_seconds)
    for window in windows:
        width = usage.width_for(window)
        since = at - (add_duration(at, window) - at)
        assert int(since.timestamp()) // width >= firsts[width]
        assert since >= oldest


def test_a_month_window_across_a_short_month_keeps_what_the_next_day_reads() -> None:
    """At the end of February a month reaches back 28 days, a second later 31."""
    now = datetime(2027, 2, 28, 23, 59, 59, tzinfo=UTC)
    _, firsts = usage.prune_bounds(("P1M",), now)
    at = datetime(2027, 3, 1, 0, 0, 1, tzinfo=UTC)
    since = at - (add_duration(at, "P1M") - at)
    assert since < now - timedelta(days=28)
    assert int(since.timestamp()) // 86400 >= firsts[86400]
