"""The API calls the officer console makes, on a log of 1,000,000 entries (issue 15).

Builds an SQLite log of ``--entries`` rows (default 1,000,000) straight into
``audit_entries`` (the listing and the counts read only that table: no tree is needed to
time them), then times each call the overview and entries pages make through
:class:`AuditReader`, the same functions the endpoints call. Baselines, measured in the
same run on the same database: one entry by its index (the cheapest read there is) and
``count(*)`` over the whole log (what loading the log would at least cost).

Run with ``python -m bench.console`` (about a minute to build the log).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from gateway.audit.log import AuditReader
from gateway.audit.repository import CountFilter, EntryFilter
from gateway.console import repository as repo
from gateway.console import service
from gateway.console.repository import Window
from gateway.storage.db import Database
from gateway.storage.models import AuditEntryRow

END = datetime(2026, 12, 2, tzinfo=UTC)
SPAN = timedelta(days=30)
EVENTS = ["access-decision"] * 6 + ["exchange-completed"] * 3 + ["token-issued"]
CALLS = 30


def _row(i: int, n: int) -> tuple[object, ...]:
    time_ = END - SPAN + SPAN * i / n
    event = "key-rotation" if i == n // 2 else EVENTS[i % len(EVENTS)]
    participant, dataset = f"NTRNL-{i % 1000:08d}", f"ds-{i % 50}"
    decision = "deny" if i % 17 == 0 else "permit"
    stamp = time_.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    entry = {"event": event, "time": stamp, "actor": {"participant": participant}}
    if event == "access-decision":  # a reason for the denials-by-reason chart
        reasons = ["no_active_permission" if i % 3 else "no-agreement", "the policy's report"]
        entry["decision"] = {"result": decision, "reasons": reasons}
    data = json.dumps(entry | {"dataset": dataset}, separators=(",", ":"), sort_keys=True)
    # the stored time column, as UTCDateTime writes it on SQLite
    stored = time_.strftime("%Y-%m-%d %H:%M:%S.%f")
    # the link columns (migration 0019): an agreement per decision, a trace per entry
    target = f"agreement:agr-{i % 2000}" if event == "access-decision" else None
    trace, request = f"{i:032x}", f"ex-{i // 2}"
    row = (i, data.encode(), bytes(32), stored, event, participant, dataset, decision)
    return (*row, target, trace, request)


def build(path: Path, n: int) -> None:
    """Migrate, then insert ``n`` entries in one transaction."""
    db = Database(f"sqlite+aiosqlite:///{path}")
    asyncio.run(db.upgrade())
    asyncio.run(db.dispose())
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO audit_entries (idx, entry, leaf_hash, time, event, participant,"
            " dataset, decision, target, trace_id, request_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (_row(i, n) for i in range(n)),
        )
        conn.execute("ANALYZE")


async def _time(call: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    await call()
    samples = []
    for _ in range(CALLS):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    ordered = sorted(samples)
    return ordered[len(ordered) // 2] * 1e3, ordered[-1] * 1e3


async def measure(path: Path, n: int) -> list[tuple[str, float, float]]:
    db = Database(f"sqlite+aiosqlite:///{path}")
    reader = AuditReader(db)
    day = END - timedelta(days=1)
    newest = EntryFilter(limit=50, newest_first=True)

    async def count_all() -> object:
        async with db.session() as session:
            return (await session.execute(select(func.count()).select_from(AuditEntryRow))).one()

    cases: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("baseline: one entry by index", lambda: reader.entry_range(n // 3, n // 3 + 1)),
        ("baseline: count(*) of the whole log", count_all),
        ("entries: newest 50 (the page's default)", lambda: reader.entries(newest)),
        ("entries: oldest 50", lambda: reader.entries(EntryFilter(limit=50))),
        ("entries: page after index n-100", lambda: reader.entries(EntryFilter(after=n - 100))),
        (
            "entries: last day, newest 50",
            lambda: reader.entries(EntryFilter(since=day, limit=50, newest_first=True)),
        ),
        (
            "entries: last day, oldest 50 (walks from index 0)",
            lambda: reader.entries(EntryFilter(since=day, limit=50)),
        ),
        (
            "entries: one participant, 50",
            lambda: reader.entries(EntryFilter(participant="NTRNL-00000421", limit=50)),
        ),
        (
            "entries: dataset + deny, 50",
            lambda: reader.entries(
                EntryFilter(dataset="ds-7", decision="deny", limit=50, newest_first=True)
            ),
        ),
        (
            "entries: a rare event (1 in the log)",
            lambda: reader.entries(EntryFilter(event="key-rotation", limit=50)),
        ),
        *_sorted_cases(reader, n),
        ("overview: counts of the last day", lambda: reader.counts(CountFilter(since=day))),
        ("overview: counts of the whole log", lambda: reader.counts(CountFilter())),
        ("overview: activity of the last day", lambda: reader.activity(CountFilter(since=day))),
        *_chart_cases(db, day),
    ]
    results = [(name, *await _time(call)) for name, call in cases]
    await db.dispose()
    return results


def _chart_cases(db: Database, day: datetime) -> list[tuple[str, Callable[[], Awaitable[object]]]]:
    """The overview's charts: each one's query, and drawn to SVG as the endpoint does."""
    last_day, month = Window(day, END), Window(END - SPAN, END)

    async def timeline(window: Window) -> object:
        bucket = service.bucket_for(window, END)
        async with db.session() as session:
            rows = await repo.timeline(session, window, bucket)
        return service.timeline_chart(service.timeline_of(rows, window, bucket, END), bucket)

    async def denials(window: Window) -> object:
        async with db.session() as session:
            found = await repo.denials(session, window, service.MAX_DENIALS)
        reasons = service.denial_reasons(found)
        return service.denials_chart(reasons, len(found) == service.MAX_DENIALS)

    return [
        ("chart: requests per dataset, last day (hours)", lambda: timeline(last_day)),
        ("chart: requests per dataset, 30 days (days)", lambda: timeline(month)),
        ("chart: denials by reason, last day", lambda: denials(last_day)),
        ("chart: denials by reason, 30 days", lambda: denials(month)),
    ]


def _sorted_cases(reader: AuditReader, n: int) -> list[tuple[str, Callable[[], Awaitable[object]]]]:
    """Sorted by a column with keyset cursors, and the link filters (issue 15, 0019)."""
    middle = END - SPAN / 2

    def page(**fields: object) -> Callable[[], Awaitable[object]]:
        return lambda: reader.entry_page(EntryFilter(limit=50, **fields))  # type: ignore[arg-type]

    return [
        ("sorted: by participant, first 50", page(sort="participant")),
        ("sorted: by participant, a page mid-log (cursor)",
         page(sort="participant", cursor=("NTRNL-00000500", n // 2))),
        ("sorted: by time, newest first, a page mid-log (cursor)",
         page(sort="time", newest_first=True, cursor=(middle, n // 2))),
        ("sorted: by dataset, denials only, first 50", page(sort="dataset", decision="deny")),
        ("filter: one agreement, 50", page(target="agreement:agr-421")),
        ("filter: one trace id", page(trace_id=f"{n // 3:032x}")),
        ("filter: one request id (decision and completion)", page(request_id=f"ex-{n // 6}")),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sluis-bench-console-") as scratch:
        path = Path(scratch) / "log.db"
        started = time.perf_counter()
        build(path, args.entries)
        built = time.perf_counter() - started
        results = asyncio.run(measure(path, args.entries))
    table = Table(
        title=f"console API calls, SQLite, {args.entries:,} entries (built in {built:.0f} s)"
    )
    for column in ("call", "p50 ms", "max ms"):
        table.add_column(column, justify="left" if column == "call" else "right")
    for name, p50, worst in results:
        table.add_row(name, f"{p50:.2f}", f"{worst:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
