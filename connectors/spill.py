"""Grouping and ordering in the gateway within a memory limit, spilling to disk (DuckDB).

Why DuckDB and not Arrow's Acero: Acero's ``order_by`` sorts in memory and its hash
aggregate keeps every group in memory, neither spills. DuckDB's sort and hash aggregate
spill to ``temp_directory`` once ``memory_limit`` is reached, it takes Arrow batches
zero-copy and hands back a streaming ``RecordBatchReader``.

The batches are appended to a table in a throwaway in-memory DuckDB database (spilling to
its own directory under ``SpillConfig.directory``, removed afterwards), one batch per step,
each step in a worker thread, so a cancelled request stops between steps. A hidden sequence
column keeps the order of arrival: ties in ``ORDER BY`` and the order of groups come out as
the in-memory evaluation gives them (a stable sort, groups in order of first appearance).

When the work does not fit in memory plus ``max_disk`` of spill files the query is refused
with ``QueryTooLarge`` (400), which names both limits.

Each query's directory (``q-*``) holds a marker file, ``OWNER``, on which the running query
holds an exclusive ``flock``. A server that was killed leaves its directories behind, but
the kernel drops its locks: ``sweep`` (at start-up) removes exactly the ``q-*`` directories
whose marker it can lock, so it never touches a directory another live process is using,
nor anything that is not ours (no marker, a link, another name).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from connectors._arrow import pa
from connectors.errors import QueryTooLarge, SpillFailed
from connectors.query import AggFunc, Aggregate, Query

Batches = AsyncIterator[pa.RecordBatch]
SEQ = "__sluis_seq"  # the hidden arrival-order column
OUT_ROWS = 64 * 1024  # rows per batch handed back
MiB = 1024 * 1024
T = TypeVar("T")
PREFIX = "q-"  # a query's directory under SpillConfig.directory
OWNER = ".sluis-spill-owner"  # the marker a live query holds locked
log = logging.getLogger("sluis.spill")


@dataclass(frozen=True)
class SpillConfig:
    """Where and how much: RAM for the engine, disk for its spill files, worker threads."""

    directory: Path
    memory_limit: int = 64 * MiB  # DuckDB's own; its process cost is about 50 MiB more
    max_disk: int = 64 * 1024 * MiB
    threads: int = 1

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
    """``query``'s grouping, ordering and limit over ``batches`` (in ``source``'s columns)."""
    try:
        config.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        workdir = Path(tempfile.mkdtemp(prefix=PREFIX, dir=config.directory))
    except OSError as exc:
        raise SpillFailed("the gateway cannot write to its spill directory") from exc
    owner = -1
    try:
        owner = _claim(workdir)
        engine = await _run(config, lambda: _Engine(workdir, config, source))
        try:
            async for batch in _through(engine, batches, query, config):
                yield batch
        finally:
            engine.close()
    finally:
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


async def _through(engine: _Engine, batches: Batches, query: Query, config: SpillConfig) -> Batches:
    seq = 0
    async for batch in batches:
        first = seq
        await _run(config, lambda: engine.append(batch, first))  # noqa: B023 - awaited at once
        seq += batch.num_rows
    reader = await _run(config, lambda: engine.start(sql_for(query)))
    while (out := await _run(config, lambda: _next(reader))) is not None:
        yield out


async def _run(config: SpillConfig, work: Callable[[], T]) -> T:
    import duckdb  # noqa: PLC0415 - imported on first use: it adds ~50 MiB to an idle gateway

    try:
        return await asyncio.to_thread(work)
    except (duckdb.Error, pa.ArrowException, OSError) as exc:  # Arrow's: raised through the
        # reader, DuckDB's "Out of Memory" while merging the sorted runs as a plain OSError
        if not _out_of_room(exc):
            raise SpillFailed(f"the gateway's query engine failed ({type(exc).__name__})") from exc
        raise QueryTooLarge(
            f"ordering or grouping this result needs more than the gateway allows "
            f"({config.describe()}); add a filter, a limit or fewer groups"
        ) from exc


def _out_of_room(exc: Exception) -> bool:
    """Memory or spill space ran out: DuckDB's own class, or its message carried through a
    commit that could not offload a block or through the Arrow reader."""
    import duckdb  # noqa: PLC0415 - see _run

    text = str(exc)
    return (
        isinstance(exc, duckdb.OutOfMemoryException)
        or "Out of Memory" in text
        or "failed to offload" in text
    )


def _next(reader: Any) -> pa.RecordBatch | None:
    try:
        batch: pa.RecordBatch = reader.read_next_batch()
    except StopIteration:
        return None
    return batch


class _Engine:
    """One throwaway DuckDB database holding table ``t``."""

    def __init__(self, workdir: Path, config: SpillConfig, source: pa.Schema) -> None:
        import duckdb  # noqa: PLC0415 - see _run

        self._con = duckdb.connect(
            ":memory:",  # every block past the memory limit goes to temp_directory, so
            # max_temp_directory_size bounds all of the disk one query uses
            config={
                "memory_limit": f"{config.memory_limit // MiB}MB",
                "temp_directory": str(workdir / "tmp"),
                "max_temp_directory_size": f"{config.max_disk // MiB}MB",
                "threads": config.threads,
                "preserve_insertion_order": False,  # SEQ carries the order we need
                "autoload_known_extensions": False,
                "autoinstall_known_extensions": False,
            },
        )
        empty = pa.table(
            [pa.array([], f.type) for f in source] + [pa.array([], pa.int64())],
            names=[*source.names, SEQ],
        )
        self._con.execute("SET enable_progress_bar = false")
        self._con.register("incoming", empty)
        self._con.execute("CREATE TABLE t AS SELECT * FROM incoming")
        self._con.unregister("incoming")

    def append(self, batch: pa.RecordBatch, first: int) -> None:
        seq = pa.array(range(first, first + batch.num_rows), pa.int64())
        arrays = [*batch.columns, seq]
        incoming = pa.RecordBatch.from_arrays(arrays, names=[*batch.schema.names, SEQ])
        self._con.register("incoming", incoming)
        self._con.execute("INSERT INTO t SELECT * FROM incoming")
        self._con.unregister("incoming")

    def start(self, sql: str) -> Any:
        relation = self._con.sql(sql)
        stream = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader  # 1.x
        return stream(OUT_ROWS)

    def close(self) -> None:
        self._con.close()
