"""Stream a generated file of at least 1 GB through the files connector, against pyarrow.

Run by hand: ``python -m bench.files_connector [size_gb]``. Both sides read the same CSV
(written to a temporary directory and removed afterwards) in their own child process, so
each peak RSS (``ru_maxrss`` of the child) is its own. The connector's side runs the full
path: narrow a query under DataLimits (two columns, a row filter), push it into the scan,
check each batch against the schema and encode it as Arrow IPC.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
from rich.console import Console
from rich.table import Table

from connectors import Format, Query, encode, narrow
from connectors.files import FileFormat, FilesConfig, FilesConnector
from policies.decision import DataLimits

SCHEMA = pa.schema(
    [("id", pa.int64()), ("region", pa.string()), ("amount", pa.float64()), ("note", pa.string())]
)
ROWS_PER_BATCH = 200_000


def generate(path: Path, target_bytes: int) -> int:
    """Write CSV batches until the file reaches ``target_bytes``; the number of rows."""
    regions = pa.array(["NL", "BE", "DE", "FR"] * (ROWS_PER_BATCH // 4))
    note = pa.array(["lorem ipsum dolor sit amet " * 2] * ROWS_PER_BATCH)
    written = 0
    with pacsv.CSVWriter(path, SCHEMA) as writer:
        while path.stat().st_size < target_bytes:
            ids = pa.array(range(written, written + ROWS_PER_BATCH), pa.int64())
            amounts = pa.array([float(i % 1000) / 4 for i in range(ROWS_PER_BATCH)])
            writer.write_batch(pa.record_batch([ids, regions, amounts, note], schema=SCHEMA))
            written += ROWS_PER_BATCH
    return written


def _through_connector(root: str) -> int:
    async def run() -> int:
        config = FilesConfig(Path(root), "data.csv", FileFormat.CSV, schema=SCHEMA)
        connector = FilesConnector("bench", config)
        limits = DataLimits(columns=("id", "amount", "note"), row_filter="region != 'XX'")
        permitted = narrow(Query(), limits, await connector.schema())
        out = 0
        schema = await connector.result_schema(permitted)
        async for chunk in encode(connector.stream(permitted), Format.ARROW, schema):
            out += len(chunk)
        return out

    return asyncio.run(run())


def _direct(root: str) -> int:
    dataset = ds.dataset(Path(root) / "data.csv", format="csv", schema=SCHEMA)
    out = 0
    for batch in dataset.to_batches(columns=["id", "amount", "note"]):
        out += batch.nbytes
    return out


def _child(target: str, root: str) -> tuple[float, int, int]:
    started = time.perf_counter()
    produced = (_through_connector if target == "connector" else _direct)(root)
    elapsed = time.perf_counter() - started
    return elapsed, produced, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(target: str, root: Path) -> tuple[float, int, int]:
    """(seconds, bytes produced, peak RSS in KiB) for one side, in a fresh process."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_child, target, str(root)).result()


def main() -> None:
    size_gb = float(sys.argv[1]) if len(sys.argv) > 1 else 1.1
    root = Path(tempfile.mkdtemp(prefix="sluis-bench-"))
    try:
        rows = generate(root / "data.csv", int(size_gb * 1024**3))
        size = (root / "data.csv").stat().st_size
        table = Table(title=f"files connector: {size / 1024**2:,.0f} MiB CSV, {rows:,} rows")
        for column in ("case", "seconds", "MB/s (file)", "peak RSS MiB"):
            table.add_column(column)
        for label, target in (
            ("pyarrow.dataset, direct", "direct"),
            ("FilesConnector.stream -> Arrow IPC", "connector"),
        ):
            seconds, _, peak = measure(target, root)
            table.add_row(
                label, f"{seconds:.1f}", f"{size / 1e6 / seconds:,.0f}", f"{peak / 1024:,.0f}"
            )
        Console().print(table)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
