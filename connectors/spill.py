"""Grouping and ordering in the gateway within a memory limit, spilling to disk (DuckDB).

Why DuckDB and not Arrow's Acero: Acero's ``order_by`` sorts in memory and its hash
aggregate keeps every group in memory, neither spills. DuckDB's sort and hash aggregate
spill to ``temp_directory`` once ``memory_limit`` is reached, it takes Arrow batches
zero-copy and hands back a streaming ``RecordBatchReader``.

DuckDB runs in a process of its own, one per query (``connectors.spill_engine``, started
with ``python -I``): the gateway never imports it, and the engine's memory (DuckDB's
``memory_limit`` plus about 60 MiB of interpreter, pyarrow and DuckDB) is returned to the
system when the query ends instead of staying in the gateway's heap. Starting it costs about
0.3 s per ordering or grouping query the source could not do itself. The batches go to it as
an Arrow IPC stream over a pipe (waiting while the pipe is full), the result comes back batch
by batch (the engine waits while the consumer does); a cancelled request kills the engine.
The engine appends the batches to a table in a throwaway in-memory DuckDB database (spilling
to its own directory under ``SpillConfig.directory``, removed afterwards). A hidden sequence
column keeps the order of arrival: ties in ``ORDER BY`` and the order of groups come out as
the in-memory evaluation gives them (a stable sort, groups in order of first appearance).

When the work does not fit in memory plus ``max_disk`` of spill files the query is refused
with ``QueryTooLarge`` (400), which names both limits. Fail closed: a result counts as
complete only when the engine exits 0 and its last line says so; anything else (killed, a
crash, an unreadable frame) is ``SpillFailed``, also when rows were already handed on.

Each query's directory (``q-*``) holds a marker file, ``OWNER``, on which the running query
holds an exclusive ``flock``. A server that was killed leaves its directories behind, but
the kernel drops its locks: ``sweep`` (at start-up) removes exactly the ``q-*`` directories
whose marker it can lock, so it never touches a directory another live process is using,
nor anything that is not ours (no marker, a link, another name).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import shutil
import stat
import struct
import sys
import tempfile
import weakref
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors._arrow import ipc, pa
from connectors.errors import QueryTooLarge, SpillFailed
from connectors.formats import Chunks
from connectors.query import AggFunc, Aggregate, Query

Batches = AsyncIterator[pa.RecordBatch]
SEQ = "__sluis_seq"  # the hidden arrival-order column (spill_engine.SEQ)
MiB = 1024 * 1024
ENGINE = Path(__file__).with_name("spill_engine.py")  # run as a script: imports no package
FRAME = struct.Struct("<Q")  # a result batch's length, as spill_engine writes it
OUTCOME = "engine.log"  # the engine's stderr: its last line is its outcome
PREFIX = "q-"  # a query's directory under SpillConfig.directory
OWNER = ".sluis-spill-owner"  # the marker a live query holds locked
log = logging.getLogger("sluis.spill")


class EngineSlots:
    """At most ``size`` engine processes at once for the queries of one configuration (one
    gateway process): each costs its memory limit plus ~150 MiB, so without a cap a burst of
    ordering queries would add up to any amount. A query that finds every slot taken waits
    for one before it claims a directory or starts anything; its source is not read meanwhile
    (back-pressure). One semaphore per event loop (asyncio's are bound to the loop)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("at least one engine")
        self.size = size
        self.waiting = 0  # queries waiting for a slot now (tests and diagnostics)
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
        self._by_loop = weakref.WeakKeyDictionary()

    def semaphore(self) -> asyncio.Semaphore:
        """This event loop's semaphore."""
        loop = asyncio.get_running_loop()
        found = self._by_loop.get(loop)
        if found is None:
            found = self._by_loop[loop] = asyncio.Semaphore(self.size)
        return found


@dataclass(frozen=True)
class SpillConfig:
    """Where and how much: RAM for the engine, disk for its spill files, worker threads, and
    how many engines may run at once (the rest wait)."""

    directory: Path
    memory_limit: int = 64 * MiB  # DuckDB's own; its process cost is about 50 MiB more
    max_disk: int = 64 * 1024 * MiB
    threads: int = 1
    engines: int = 2
    slots: EngineSlots = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "slots", EngineSlots(self.engines))  # frozen: set once here

    def describe(self) -> str:
        """The limits, for a refusal a consumer can read."""
        return (
            f"memory limit {self.memory_limit // MiB} MiB, spill limit {self.max_disk // MiB} MiB"
        )


DEFAULT = SpillConfig(Path(tempfile.gettempdir()) / "sluis-spill")


def quote(name: str) -> str:
    """``name`` as a DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def sql_for(query: Query) -> str:
    """The SELECT over table ``t`` (source columns plus ``SEQ``) that finishes ``query``."""
    if query.is_aggregate:
        keys = ", ".join(quote(k) for k in query.group_by)
        items = [quote(k) for k in query.group_by] + [_aggregate(a) for a in query.aggregates]
        inner = f"SELECT {', '.join(items)}, min({SEQ}) AS {SEQ} FROM t"  # noqa: S608 - quoted names only
        if keys:
            inner += f" GROUP BY {keys}"
        if query.min_group_size:
            inner += f" HAVING count(*) >= {int(query.min_group_size)}"
        columns = ", ".join(quote(c) for c in query.output_columns)
        sql = f"SELECT {columns} FROM ({inner})"  # noqa: S608 - quoted names only
    else:
        sql = f"SELECT * EXCLUDE ({SEQ}) FROM t"  # noqa: S608 - a constant
    order = [
        f"{quote(o.column)} {'DESC' if o.descending else 'ASC'} NULLS LAST" for o in query.order_by
    ]
    sql += f" ORDER BY {', '.join([*order, SEQ])}"
    if query.limit is not None:
        sql += f" LIMIT {int(query.limit)}"
    return sql


def _aggregate(agg: Aggregate) -> str:
    target = "*" if agg.column is None else quote(agg.column)
    func = agg.func.value if agg.func is not AggFunc.COUNT else "count"
    return f"{func}({target}) AS {quote(agg.name)}"


async def finish(batches: Batches, query: Query, source: pa.Schema, config: SpillConfig) -> Batches:
    """``query``'s grouping, ordering and limit over ``batches`` (in ``source``'s columns),
    in an engine process once one of ``config.engines`` slots is free."""
    slot = config.slots.semaphore()
    config.slots.waiting += 1
    try:
        await slot.acquire()
    finally:
        config.slots.waiting -= 1
    try:
        async with aclosing(_in_engine(batches, query, source, config)) as results:
            async for batch in results:
                yield batch  # closed with this generator: the engine is stopped, then the slot
    finally:
        slot.release()


async def _in_engine(
    batches: Batches, query: Query, source: pa.Schema, config: SpillConfig
) -> AsyncGenerator[pa.RecordBatch]:
    """``finish`` once it holds a slot: a directory of its own, the engine, its batches."""
    try:
        config.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        workdir = Path(tempfile.mkdtemp(prefix=PREFIX, dir=config.directory))
    except OSError as exc:
        raise SpillFailed("the gateway cannot write to its spill directory") from exc
    owner = -1
    engine: asyncio.subprocess.Process | None = None
    try:
        owner = _claim(workdir)
        engine = await _start(workdir, config, sql_for(query))
        async for batch in _through(engine, workdir, batches, source, config):
            yield batch
    finally:
        if engine is not None:
            _stop(engine)
            await engine.wait()  # reaped: no engine outlives its query
        shutil.rmtree(workdir, ignore_errors=True)
        if owner >= 0:
            os.close(owner)  # the lock goes with it


def _claim(workdir: Path) -> int:
    """Create ``workdir``'s marker and lock it for as long as the query runs: its descriptor."""
    try:
        fd = os.open(workdir / OWNER, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise SpillFailed("the gateway cannot write to its spill directory") from exc
    fcntl.flock(fd, fcntl.LOCK_EX)  # a new file of ours: nobody else holds it
    return fd


def sweep(directory: Path) -> int:
    """Remove the query directories under ``directory`` that no live process holds (left by a
    killed server); the number removed. Anything without our locked-able marker stays."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    except OSError as exc:
        log.warning("cannot list the spill directory %s: %s", directory, exc.strerror)
        return 0
    removed = 0
    for entry in entries:
        if entry.name.startswith(PREFIX) and entry.is_dir(follow_symlinks=False):
            removed += _remove_if_abandoned(Path(entry.path))
    if removed:
        log.info("removed %d spill directories left by a stopped server in %s", removed, directory)
    return removed


def _remove_if_abandoned(workdir: Path) -> int:
    try:
        fd = os.open(workdir / OWNER, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return 0  # no marker (or a link): not ours, or not yet marked
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return 0
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # a live query
        shutil.rmtree(workdir, ignore_errors=True)
        return 1
    finally:
        os.close(fd)


async def _start(workdir: Path, config: SpillConfig, sql: str) -> asyncio.subprocess.Process:
    """The engine process for one query (``connectors.spill_engine``), its outcome to a file."""
    settings = {
        "memory_limit": config.memory_limit, "max_disk": config.max_disk,
        "threads": config.threads, "temp_directory": str(workdir / "tmp"), "sql": sql,
    }  # fmt: skip
    try:
        with (workdir / OUTCOME).open("wb") as outcome:
            return await asyncio.create_subprocess_exec(
                sys.executable, "-I", str(ENGINE), json.dumps(settings),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=outcome,
            )  # fmt: skip
    except OSError as exc:
        raise SpillFailed("the gateway cannot start its query engine") from exc


async def _through(
    engine: asyncio.subprocess.Process,
    workdir: Path,
    batches: Batches,
    source: pa.Schema,
    config: SpillConfig,
) -> Batches:
    if engine.stdin is None or engine.stdout is None:  # both piped in _start
        raise SpillFailed("the gateway's query engine has no pipes")
    try:
        await _feed(engine.stdin, batches, source)
        while (frame := await _frame(engine.stdout)) is not None:
            yield _batch(frame)
    except (ConnectionError, asyncio.IncompleteReadError):
        pass  # the engine stopped early (its pipes closed): its outcome says why
    except pa.ArrowException as exc:  # a batch that does not fit the source's columns
        raise SpillFailed(f"the gateway's query engine failed ({type(exc).__name__})") from exc
    await engine.wait()
    _check(_outcome(workdir), engine.returncode, config)


def _batch(frame: bytes) -> pa.RecordBatch:
    try:
        batch: pa.RecordBatch = ipc.open_stream(frame).read_next_batch()
    except (pa.ArrowException, StopIteration) as exc:  # nothing after it is trusted
        raise SpillFailed("the gateway's query engine sent a batch it cannot read") from exc
    return batch


def _stop(engine: asyncio.subprocess.Process) -> None:
    """Kill the engine if it still runs (a cancelled or failed query) and close its pipes,
    without awaiting: this also runs when the generator is finalised on a closing loop."""
    if engine.returncode is None:
        engine.kill()
    # asyncio's Process has no public close; without it a killed engine's stdout, whose
    # reading is paused while the consumer waits, would never be closed
    engine._transport.close()  # type: ignore[attr-defined]


async def _feed(stdin: asyncio.StreamWriter, batches: Batches, source: pa.Schema) -> None:
    """Every batch to the engine as one Arrow IPC stream, waiting while its pipe is full."""
    sink = Chunks()
    writer = ipc.new_stream(sink, source)
    async for batch in batches:
        writer.write_batch(batch)
        stdin.write(sink.take())
        await stdin.drain()
    writer.close()
    stdin.write(sink.take())
    await stdin.drain()
    stdin.close()


async def _frame(stdout: asyncio.StreamReader) -> bytes | None:
    """The next framed batch from the engine, or None at its end."""
    try:
        head = await stdout.readexactly(FRAME.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return None
    (size,) = FRAME.unpack(head)
    return await stdout.readexactly(size)


def _outcome(workdir: Path) -> dict[str, Any]:
    """The engine's last stderr line as JSON, or {} when there is none."""
    try:
        with (workdir / OUTCOME).open("rb") as log_file:
            log_file.seek(0, os.SEEK_END)
            log_file.seek(max(0, log_file.tell() - 4096))
            last = log_file.read().splitlines()[-1:]
        found = json.loads(last[0]) if last else {}
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _check(outcome: dict[str, Any], status: int | None, config: SpillConfig) -> None:
    """Nothing when the engine finished the whole result; otherwise the refusal or failure.

    Fail closed: only exit status 0 with an ``ok`` outcome is a complete result.
    """
    if status == 0 and outcome.get("ok") is True:
        peak = outcome.get("peak")
        if isinstance(peak, int):
            log.info("ordering/grouping engine peak RSS %d MiB", peak // MiB,
                     extra={"engine_peak": peak})  # fmt: skip
        return
    if outcome.get("error") == "too-large":
        raise QueryTooLarge(
            f"ordering or grouping this result needs more than the gateway allows "
            f"({config.describe()}); add a filter, a limit or fewer groups"
        )
    kind = outcome.get("type") if isinstance(outcome.get("type"), str) else f"exit {status}"
    raise SpillFailed(f"the gateway's query engine failed ({kind})")
