"""CPU per stream of the small query's file through the files connector, in process.

Run by hand, from the tree to measure: ``PYTHONPATH=$PWD python -m bench.files_small
[streams]``. The 2.4 KB CSV of ``bench.load`` is written, left to settle (3 s: the racy
rule's 2 s and a margin), then streamed ``streams`` times as the gateway streams it
(schema, narrow, ``stream``, CSV encoding), one stream at a time. Printed: process CPU
(every thread) and wall time per stream, and the thread hops per stream.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.load import write_csv
from connectors import Format, Query, encode, narrow
from connectors.files import FileFormat, FilesConfig, FilesConnector
from policies.decision import DataLimits


async def _streams(connector: FilesConnector, count: int) -> tuple[float, float, float]:
    loop = asyncio.get_running_loop()
    real = loop.run_in_executor
    hops = [0]

    def counting(*args: Any) -> Any:
        hops[0] += 1
        return real(*args)

    async def one() -> int:
        schema = await connector.schema()
        permitted = narrow(Query(columns=("machine", "temp_c", "vibration")), DataLimits(), schema)
        size = 0
        async for chunk in encode(connector.stream(permitted), Format.CSV, schema):
            size += len(chunk)
        return size

    for _ in range(50):  # warm: the dataset opened, caches filled
        await one()
    loop.run_in_executor = counting  # type: ignore[method-assign]
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        await one()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    loop.run_in_executor = real  # type: ignore[method-assign]
    return cpu / count, wall / count, hops[0] / count


def main() -> None:
    """Print CPU and wall microseconds, and hops, per stream."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with tempfile.TemporaryDirectory() as tmp:
        write_csv(Path(tmp, "sensors.csv"))
        time.sleep(3)
        connector = FilesConnector("sensors", FilesConfig(Path(tmp), "sensors.csv", FileFormat.CSV))

        async def run() -> tuple[float, float, float]:
            try:
                return await _streams(connector, count)
            finally:
                await connector.aclose()

        cpu, wall, hops = asyncio.run(run())
    print(f"cpu_us_per_stream={cpu * 1e6:.0f} wall_us_per_stream={wall * 1e6:.0f} hops={hops:.2f}")


if __name__ == "__main__":
    main()
