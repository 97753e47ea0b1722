"""Durable audit appends: 64 concurrent producers vs one, on SQLite and PostgreSQL.

Every append returns only once its entry is committed (group commit: one transaction per
batch, holding the entries, the tree nodes and, since issue 10, the batch's signed
checkpoint). Cases per store, each for ``--seconds``:

* 1 producer (baseline): one entry per transaction, so one commit per append;
* 64 producers, checkpoints on demand only (``sign_batches=False``): the group commit alone;
* 64 producers, one signed checkpoint per batch (what the gateway runs);
* 64 producers, each append with a use spent as its effect (a conditional UPDATE of one
  usage row in the batch transaction, as the exchange's decision entry does).

Printed: appends/s, p50 and p99 of one append, entries per batch, and this process's CPU
time per append (all its threads; the PostgreSQL server's not counted): on a shared machine
the CPU time moves far less with the load than the rates do. PostgreSQL is a fresh
database on ``SLUIS_BENCH_POSTGRES`` (skipped with the reason when unreachable).

Run with ``python -m bench.audit_append [--seconds 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from rich.console import Console
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.audit.entry import Actor, AuditEntry, DecisionRecord
from gateway.audit.keys import Signer
from gateway.audit.log import AuditLog, Effect
from gateway.storage.db import Database

PG_DSN = os.environ.get("SLUIS_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
ORIGIN = "bench.example/audit"
SIGNER = Signer(ORIGIN, bytes(range(32)))


@dataclass
class Result:
    """What one case measured."""

    appends: int
    seconds: float
    latencies: list[float]
    batches: int
    cpu: float  # seconds of this process's CPU time (every thread) during the case

    def row(self) -> tuple[str, str, str, str, str]:
        """appends/s, p50 ms, p99 ms, entries per batch, CPU µs per append."""
        ordered = sorted(self.latencies)
        p50 = ordered[len(ordered) // 2] * 1e3 if ordered else 0.0
        p99 = ordered[int(0.99 * len(ordered))] * 1e3 if ordered else 0.0
        per_batch = self.appends / self.batches if self.batches else 0.0
        cpu = self.cpu / self.appends * 1e6 if self.appends else 0.0
        return (f"{self.appends / self.seconds:,.0f}", f"{p50:.1f}", f"{p99:.1f}",
                f"{per_batch:.1f}", f"{cpu:,.0f}")  # fmt: skip


def _entry(n: int) -> AuditEntry:
    return AuditEntry(
        time=datetime.now(UTC), event="access-decision", actor=Actor(participant="NTRNL-1"),
        dataset="d", action="read", decision=DecisionRecord(result="permit", reasons=(f"{n}",)),
    )  # fmt: skip


async def _spend(session: AsyncSession) -> None:
    await session.execute(text("UPDATE bench_uses SET used = used + 1 WHERE id = 1 AND used < 1e9"))


async def _case(
    url: str, producers: int, seconds: float, *, sign: bool, effect: Effect | None
) -> Result:
    db = Database(url)
    await db.upgrade()
    async with db.session() as session:
        await session.execute(text("CREATE TABLE IF NOT EXISTS bench_uses (id INT, used INT)"))
        await session.execute(text("DELETE FROM bench_uses"))
        await session.execute(text("INSERT INTO bench_uses VALUES (1, 0)"))
        before = await _batches(session)
    log = AuditLog(db, SIGNER, ORIGIN, checkpoint_delay=3600, sign_batches=sign)
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def producer(k: int) -> None:
        n = 0
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            await log.append(_entry(k * 1_000_000 + n), effect=effect)
            latencies.append(time.perf_counter() - t0)
            n += 1

    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        await asyncio.gather(*(producer(k) for k in range(producers)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    finally:
        await log.close()
    async with db.session() as session:
        batches = await _batches(session) - before
    await db.dispose()
    return Result(len(latencies), elapsed, latencies, batches or len(latencies), cpu)


async def _batches(session: AsyncSession) -> int:
    """Checkpoints stored so far: one per batch when batches are signed."""
    return int(await session.scalar(text("SELECT count(*) FROM audit_checkpoints")) or 0)


@asynccontextmanager
async def _store(kind: str, home: Path) -> AsyncIterator[str]:
    if kind == "SQLite":
        yield f"sqlite+aiosqlite:///{home / f'append-{uuid.uuid4().hex[:8]}.db'}"
        return
    name = f"sluis_bench_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_DSN, timeout=3)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        conn = await asyncpg.connect(PG_DSN, timeout=3)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


CASES: list[tuple[str, int, bool, Effect | None]] = [
    ("1 producer (baseline), checkpoint per batch", 1, True, None),
    ("64 producers, checkpoints on demand only", 64, False, None),
    ("64 producers, checkpoint per batch", 64, True, None),
    ("64 producers, checkpoint per batch, a use spent per entry", 64, True, _spend),
]


async def _run(seconds: float, home: Path) -> Table:
    table = Table(title=f"Durable audit appends, {seconds:g} s per case")
    columns = ("store", "case", "appends/s", "p50 ms", "p99 ms", "entries/batch", "CPU µs/append")
    for column in columns:
        table.add_column(column, justify="left" if column in {"store", "case"} else "right")
    for kind in ("SQLite", "PostgreSQL"):
        try:
            for name, producers, sign, effect in CASES:
                async with _store(kind, home) as url:
                    result = await _case(url, producers, seconds, sign=sign, effect=effect)
                table.add_row(kind, name, *result.row())
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            print(f"skipped {kind}: {exc!r}")
    return table


def main(argv: Sequence[str] | None = None) -> None:
    """Measure every case and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.audit_append", description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each case")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sluis-bench-") as tmp:
        table = asyncio.run(_run(args.seconds, Path(tmp)))
    Console(width=160).print(table)
    print("entries/batch: for the cases without per-batch checkpoints, read as 1 (not counted)")


if __name__ == "__main__":
    main()
