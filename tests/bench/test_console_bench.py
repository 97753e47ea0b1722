"""The console benchmark still builds its log and runs every call (a short run).

Its rows go into ``audit_entries`` by direct SQL: a schema change that breaks that fails
here, not on the integrator's quiet machine. Timings are printed by the benchmark, never
asserted.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.console import build, measure
from gateway.audit.log import AuditReader
from gateway.audit.repository import EntryFilter
from gateway.storage.db import Database


def test_console_bench_runs_on_a_small_log(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    build(path, 340)
    results = asyncio.run(measure(path, 340))
    assert len(results) == 24  # 13 calls of the pages, 4 charts, 7 sorted and linked reads
    assert all(p50 >= 0 for _, p50, _ in results)

    async def rare() -> list[int]:
        db = Database(f"sqlite+aiosqlite:///{path}")
        found = await AuditReader(db).entries(EntryFilter(event="key-rotation"))
        await db.dispose()
        return [r.index for r in found]

    assert asyncio.run(rare()) == [170]  # the filters the bench times find what they say

    async def linked() -> tuple[list[int], list[int]]:
        db = Database(f"sqlite+aiosqlite:///{path}")
        reader = AuditReader(db)
        exchange = await reader.entries(EntryFilter(request_id="ex-56"))
        agreement = await reader.entries(EntryFilter(target="agreement:agr-0"))
        await db.dispose()
        return [r.index for r in exchange], [r.index for r in agreement]

    assert asyncio.run(linked()) == ([112, 113], [0])  # agr-{i % 2000} on access decisions
