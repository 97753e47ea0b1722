"""The JSON lines encoder against the one it replaced and against pyarrow's CSV writer.

Run: ``python -m bench.jsonl [rows]`` (about a minute). The same record batches (the four
columns of ``bench.files_connector``'s file, 64 Ki rows each) go through:

- the gateway's encoder (``connectors.formats._jsonl``: orjson, one call per batch);
- the encoder it replaced (``json.dumps`` per row), kept here as the baseline;
- pyarrow's CSV writer (C++, no Python per row), the reference for "as fast as Arrow".

Each is timed on the same batches in the same run (best of three passes); the table gives
output MB/s and the speed relative to the old encoder.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

import pyarrow as pa
import pyarrow.csv as pacsv
from rich.console import Console
from rich.table import Table

from bench.files_connector import SCHEMA
from connectors.formats import _json_value, _jsonl

BATCH_ROWS = 64 * 1024


def _old(batch: pa.RecordBatch) -> bytes:
    """The encoder before issue 12: ``json.dumps`` per row."""
    lines = (json.dumps(r, default=_json_value, ensure_ascii=False) for r in batch.to_pylist())
    return "".join(f"{line}\n" for line in lines).encode()


def _csv(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    pacsv.write_csv(batch, sink)
    return bytes(sink.getvalue())


def batches(rows: int) -> list[pa.RecordBatch]:
    """``rows`` rows like the benchmark file's, in batches of ``BATCH_ROWS``."""
    out = []
    for start in range(0, rows, BATCH_ROWS):
        n = min(BATCH_ROWS, rows - start)
        out.append(
            pa.record_batch(
                [
                    pa.array(range(start, start + n), pa.int64()),
                    pa.array(["NL", "BE", "DE", "FR"] * (n // 4) + ["NL"] * (n % 4)),
                    pa.array([float(i % 1000) / 4 for i in range(start, start + n)]),
                    pa.array(["lorem ipsum dolor sit amet " * 2] * n),
                ],
                schema=SCHEMA,
            )
        )
    return out


Encoder = Callable[[pa.RecordBatch], bytes]


def _time(encoder: Encoder, data: list[pa.RecordBatch]) -> tuple[float, int]:
    best, size = float("inf"), 0
    for _ in range(3):
        started = time.perf_counter()
        size = sum(len(encoder(batch)) for batch in data)
        best = min(best, time.perf_counter() - started)
    return best, size


def main(rows: int = 1_000_000) -> None:
    data = batches(rows)
    cases: tuple[tuple[str, Encoder], ...] = (
        ("json.dumps per row (before; baseline)", _old),
        ("orjson per batch (connectors.formats)", _jsonl),
        ("pyarrow CSV writer (reference)", _csv),
    )
    results = [(name, *_time(encoder, data)) for name, encoder in cases]
    base = results[0][1]
    table = Table(title=f"JSON lines encoders, {rows:,} rows, best of 3 (same batches, same run)")
    for column in ("encoder", "seconds", "MB/s out", "vs json.dumps per row"):
        table.add_column(column, justify="left" if column == "encoder" else "right")
    for name, seconds, size in results:
        speed = f"{size / 1e6 / seconds:.1f}"
        table.add_row(name, f"{seconds:.2f}", speed, f"{base / seconds:.1f}x")
    Console(width=120).print(table)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
