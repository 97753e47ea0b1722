"""Inclusion and consistency proofs on a log of 1,000,000 entries (issue 10), SQLite.

Builds the tree of ``--entries`` leaves straight into ``audit_nodes`` and ``audit_head``
(every node the writer stores, from the same :class:`Frontier`; no entry rows: proofs do
not read them), then times, call by call through :class:`AuditReader` (what the endpoints
call), inclusion proofs of random entries in the whole tree and consistency proofs between
random sizes, and checks each proof against the root. Baseline in the same run: ``size()``,
one transaction reading the head row (the floor any proof pays). Goal: p99 <= 5 ms.

Run with ``python -m bench.proofs [--entries N] [--calls N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from gateway.audit.compact import Frontier
from gateway.audit.log import AuditReader
from gateway.audit.merkle import verify_consistency, verify_inclusion
from gateway.storage.db import Database


def build(path: Path, n: int) -> bytes:
    """The tree of ``n`` leaves (leaf i = SHA-256 of i) stored as the writer stores it; its root."""
    asyncio.run(_upgrade(path))
    frontier = Frontier()
    connection = sqlite3.connect(path)
    with connection:
        rows: list[tuple[int, int, bytes]] = []
        for i in range(n):
            frontier, completed = frontier.append(hashlib.sha256(i.to_bytes(8, "big")).digest())
            rows.extend((node.level, node.index, node.hash) for node in completed)
            if len(rows) >= 100_000:
                connection.executemany("INSERT INTO audit_nodes VALUES (?, ?, ?)", rows)
                rows.clear()
        connection.executemany("INSERT INTO audit_nodes VALUES (?, ?, ?)", rows)
        connection.execute("UPDATE audit_head SET size = ? WHERE id = 1", (n,))
    connection.close()
    return frontier.root()


async def _upgrade(path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.upgrade()
    await db.dispose()


async def _time(call: Callable[[], Awaitable[object]], calls: int) -> tuple[float, float]:
    """p50 and p99 in ms over ``calls`` calls (after one warm-up call)."""
    await call()
    spent = []
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        spent.append((time.perf_counter() - started) * 1e3)
    spent.sort()
    return spent[len(spent) // 2], spent[min(len(spent) - 1, int(0.99 * len(spent)))]


async def measure(path: Path, n: int, root: bytes, calls: int) -> list[tuple[str, float, float]]:
    db = Database(f"sqlite+aiosqlite:///{path}")
    reader = AuditReader(db)
    chance = random.Random(10)  # noqa: S311 - which entries to prove, not a secret

    async def inclusion() -> None:
        index = chance.randrange(n)
        proof = await reader.inclusion_proof(index, n)
        leaf = hashlib.sha256(index.to_bytes(8, "big")).digest()
        verify_inclusion(leaf, index, n, proof.hashes, root)  # raises if it does not hold

    async def consistency() -> None:
        size1 = chance.randrange(1, n)
        proof = await reader.consistency_proof(size1, n)
        old_root = await reader.root_at(size1)
        verify_consistency(size1, n, proof.hashes, old_root, root)  # raises if it does not hold

    async def consistency_alone() -> None:
        await reader.consistency_proof(chance.randrange(1, n), n)

    cases: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("baseline: size() (one transaction, the head row)", reader.size),
        ("inclusion proof, random entry, whole tree (checked)", inclusion),
        ("consistency proof, random older size (alone)", consistency_alone),
        ("consistency proof + older root (checked)", consistency),
    ]
    results = [(name, *await _time(call, calls)) for name, call in cases]
    await db.dispose()
    return results


def main(argv: list[str] | None = None) -> None:
    """Build the tree, time each case and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.proofs", description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=2_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sluis-bench-proofs-") as scratch:
        path = Path(scratch) / "log.db"
        started = time.perf_counter()
        root = build(path, args.entries)
        built = time.perf_counter() - started
        results = asyncio.run(measure(path, args.entries, root, args.calls))
    table = Table(title=f"audit proofs, SQLite, {args.entries:,} leaves (built in {built:.0f} s)")
    for column in ("call", "p50 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "call" else "right")
    for name, p50, p99 in results:
        table.add_row(name, f"{p50:.2f}", f"{p99:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
