"""A slow client does not make the gateway read ahead: memory stays bounded in every format.

A file of 2.5 M rows (a CSV of 145 MiB; the same rows as Parquet and as JSON lines) is
streamed through the files connector and ``encode``, in every output format, in a child
process whose consumer stalls after the first chunk (a client that stops reading). The child's peak
RSS above its baseline (``VmHWM`` after a reset, see ``test_spill.peak_after_reset``) must
stay far below the size of the file, and so must the Arrow memory held while the client
stalls: nothing may queue the file up ahead of the consumer.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

MiB = 1 << 20
SCHEMA = pa.schema([("id", pa.int64()), ("amount", pa.float64()), ("note", pa.string())])

CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    import pyarrow as pa
    from pathlib import Path
    from connectors import Format, Query, encode, narrow
    from connectors.files import FileFormat, FilesConfig, FilesConnector
    from policies.decision import DataLimits
    from tests.connectors.test_spill import peak_after_reset
    from tests.connectors.test_stream_memory import SCHEMA

    async def main(root, source, fmt):
        config = FilesConfig(Path(root), f"data.{source}", FileFormat(source), schema=SCHEMA)
        connector = FilesConnector("data", config)
        limits = DataLimits(row_filter="id >= 0")  # a filter pushed into the scan
        permitted = narrow(Query(), limits, await connector.schema())
        schema = await connector.result_schema(permitted)
        size, held = 0, 0
        async for chunk in encode(connector.stream(permitted), Format(fmt), schema):
            if not size:
                await asyncio.sleep(1.5)  # a client that stalls after the first chunk
                held = pa.total_allocated_bytes()  # what was read ahead meanwhile
            size += len(chunk)
        return size, held

    base = peak_after_reset()
    size, held = asyncio.run(main(*sys.argv[1:4]))
    print(size, held, peak_after_reset() - base)
    """
)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stream-memory")
    rows = 50_000
    with (
        pacsv.CSVWriter(root / "data.csv", SCHEMA) as csv,
        pq.ParquetWriter(root / "data.parquet", SCHEMA) as parquet,
        (root / "data.jsonl").open("w") as jsonl,
    ):
        for start in range(0, 2_500_000, rows):
            numbers = range(start, start + rows)
            ids = pa.array(numbers, pa.int64())
            amounts = pa.array([i / 4 for i in numbers], pa.float64())
            notes = pa.array([f"note {i:08d} lorem ipsum dolor sit amet" for i in numbers])
            batch = pa.record_batch([ids, amounts, notes], schema=SCHEMA)
            csv.write_batch(batch)
            parquet.write_batch(batch)  # a row group per batch
            note = "lorem ipsum dolor sit amet"
            jsonl.writelines(
                f'{{"id": {i}, "amount": {i / 4}, "note": "note {i:08d} {note}"}}\n'
                for i in numbers
            )
    return root


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize(
    ("source", "fmt"),
    [("csv", "csv"), ("csv", "arrow"), ("csv", "parquet"), ("csv", "jsonl"),
     ("parquet", "arrow"), ("jsonl", "arrow")],
)  # fmt: skip
def test_a_slow_client_keeps_memory_bounded(source: str, fmt: str, data: Path) -> None:
    assert (data / "data.csv").stat().st_size > 128 * MiB
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(data), source, fmt],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2],
        check=False, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out, held, peak = (int(v) for v in done.stdout.split()[-3:])
    assert out > 0
    assert held < 64 * MiB, f"Arrow memory held during the stall: {held / MiB:.0f} MiB"
    assert peak < 128 * MiB, f"peak RSS above the baseline: {peak / MiB:.0f} MiB"
