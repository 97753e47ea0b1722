"""``Database.dispose`` leaves no SQLite driver thread behind, whatever a cancellation cut off.

A task cancelled in the middle of a session (a request whose client went away, a background
loop stopped at shutdown) makes SQLAlchemy invalidate its connection without waiting for the
statement still running in aiosqlite's worker thread. If the event loop then closed, the
thread answered into it ("Event loop is closed": an unhandled thread exception, a failed
test). Here the task is cancelled at many different moments, the database disposed and the
loop closed each time: no worker thread may outlive ``dispose`` or fail.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.storage.db import Database

ROUNDS = 40


@pytest.fixture
def thread_failures() -> Iterator[list[str]]:
    failures: list[str] = []
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        failures.append(f"{args.thread.name if args.thread else '?'}: {args.exc_value!r}")

    threading.excepthook = hook
    try:
        yield failures
    finally:
        threading.excepthook = previous


def _workers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if "connection_worker" in t.name or
            type(t).__module__.startswith("aiosqlite")}  # fmt: skip


async def _cancelled_mid_session(db: Database, after: float) -> None:
    async def poll() -> None:
        while True:
            async with db.session() as session:
                await session.execute(text("SELECT 1"))

    task = asyncio.create_task(poll())
    await asyncio.sleep(after)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await db.dispose()


def test_no_driver_thread_outlives_dispose(tmp_path: Path, thread_failures: list[str]) -> None:
    before = _workers()
    for round_ in range(ROUNDS):
        db = Database(f"sqlite+aiosqlite:///{tmp_path / f'{round_}.db'}")
        asyncio.run(_cancelled_mid_session(db, after=(round_ % 20) / 1000))
        assert _workers() - before == set(), round_
    assert thread_failures == []
