"""The append benchmark still runs its hardest case (a short run on SQLite)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.audit_append import _case, _spend


def test_64_producers_with_a_use_spent_per_entry(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"
    result = asyncio.run(_case(url, 64, 0.3, sign=True, effect=_spend))
    assert result.appends >= 64
    assert result.batches < result.appends  # grouped: fewer checkpoints than entries
