"""The ordering and grouping engine (DuckDB), run in a process of its own by ``connectors.spill``.

Run as ``python -I spill_engine.py CONFIG`` (isolated: no environment variables, no user or
script directory on the path), so it imports only the standard library, pyarrow and DuckDB:
not this package, not the gateway. Its memory is its own and is returned to the system when
the query ends; the gateway process never imports DuckDB (about 50 MiB it would keep).

- ``CONFIG``: JSON ``{"memory_limit", "max_disk", "threads", "temp_directory", "sql"}``.
- stdin: one Arrow IPC stream, the source's batches in order.
- stdout: each result batch as ``<u64 little-endian length><an Arrow IPC stream of it>``.
- stderr: the last line is the outcome as JSON: ``{"ok": true, "peak": bytes}`` or
  ``{"error": "too-large" | "failed", "type": exception class name}``; exit status 0 or 1.

The batches are appended to a table ``t`` with a hidden sequence column (``SEQ``) that keeps
their order of arrival; ``sql`` is a SELECT over ``t`` (``connectors.spill.sql_for``).
Every block past ``memory_limit`` goes to ``temp_directory``; ``max_disk`` bounds it.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import struct
import sys
from typing import Any, BinaryIO

import duckdb
import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
from pyarrow import ipc  # type: ignore[import-untyped, unused-ignore]

SEQ = "__sluis_seq"  # the hidden arrival-order column
OUT_ROWS = 64 * 1024  # rows per batch handed back
MiB = 1024 * 1024
FRAME = struct.Struct("<Q")
PR_SET_PDEATHSIG = 1


class Engine:
    """One throwaway in-memory DuckDB database holding table ``t``."""

    def __init__(self, config: dict[str, Any], source: pa.Schema) -> None:
        self._con = duckdb.connect(
            ":memory:",  # every block past the memory limit goes to temp_directory, so
            # max_temp_directory_size bounds all of the disk one query uses
            config={
                "memory_limit": f"{int(config['memory_limit']) // MiB}MB",
                "temp_directory": str(config["temp_directory"]),
                "max_temp_directory_size": f"{int(config['max_disk']) // MiB}MB",
                "threads": int(config["threads"]),
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
        self._seq = 0

    def append(self, batch: pa.RecordBatch) -> None:
        seq = pa.array(range(self._seq, self._seq + batch.num_rows), pa.int64())
        self._seq += batch.num_rows
        arrays = [*batch.columns, seq]
        incoming = pa.RecordBatch.from_arrays(arrays, names=[*batch.schema.names, SEQ])
        self._con.register("incoming", incoming)
        self._con.execute("INSERT INTO t SELECT * FROM incoming")
        self._con.unregister("incoming")

    def start(self, sql: str) -> Any:
        relation = self._con.sql(sql)
        stream = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader  # 1.x
        return stream(OUT_ROWS)


def out_of_room(exc: BaseException) -> bool:
    """Memory or spill space ran out: DuckDB's own class, or its message carried through a
    commit that could not offload a block, through the Arrow reader, or as a plain OSError
    while merging sorted runs."""
    text = str(exc)
    return (
        isinstance(exc, duckdb.OutOfMemoryException)
        or "Out of Memory" in text
        or "failed to offload" in text
    )


def run(config: dict[str, Any], source: BinaryIO, out: BinaryIO) -> None:
    """Read the batches from ``source``, write ``config["sql"]``'s result to ``out`` framed."""
    reader = ipc.open_stream(source)
    engine = Engine(config, reader.schema)
    for batch in reader:
        engine.append(batch)
    result = engine.start(str(config["sql"]))
    for batch in result:
        sink = pa.BufferOutputStream()
        with ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        data = sink.getvalue()
        out.write(FRAME.pack(data.size))
        out.write(data)
    out.flush()


def _die_with_parent() -> None:
    """Linux: be killed when the gateway goes (a killed gateway leaves no engine running)."""
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return  # not Linux: the closed pipes end the engine at its next read or write
    if os.getppid() != parent:  # the parent went before prctl took effect
        os._exit(1)


def _first_to_go() -> None:
    """Linux: if the container runs out of memory, the kernel kills this engine (one query
    fails) rather than the gateway (every request fails). Raising one's own score needs no
    privilege."""
    try:
        with open("/proc/self/oom_score_adj", "w") as score:  # noqa: PTH123 - one small write
            score.write("1000")
    except OSError:
        return  # not Linux, or /proc not mounted: nothing to prefer


def main() -> int:
    _die_with_parent()
    _first_to_go()
    config = json.loads(sys.argv[1])
    try:
        run(config, sys.stdin.buffer, sys.stdout.buffer)
    except Exception as exc:  # noqa: BLE001 - every failure becomes the outcome line
        kind = "too-large" if out_of_room(exc) else "failed"
        print(json.dumps({"error": kind, "type": type(exc).__name__}), file=sys.stderr)
        return 1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({"ok": True, "peak": peak}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
