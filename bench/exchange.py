"""A small authorised, audited query through the gateway, against the same query on the source.

Cases, sequential, one client, the gateway in its own ``sluis serve`` process (SQLite):

* ``pyarrow.dataset`` on the Parquet file directly (baseline): filter + two columns;
* ``FilesConnector.stream`` in process: the same query through the connector alone;
* ``POST /v1/datasets/sensors/query`` through the gateway with the SDK: mTLS, bound token,
  agreement, policy decision, atomic use count, audit entry and receipt, connector, Arrow
  IPC, completion entry.

Run with ``python -m bench.exchange`` (about half a minute).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from bench.timing import measure
from bench.world import PROVIDER, RESEARCH, Dataset, World
from connectors import Op, Predicate, Query, narrow
from connectors.files import FileFormat, FilesConfig, FilesConnector
from gateway.background import free_port, serving
from gateway.client import SluisClient
from gateway.datasets.schemas import DatasetSpec
from policies import DataLimits

CONSUMER = "NTRNL-40000001"
REQUESTS = 300
POLICY = f"""
uid: urn:sluis:policy:bench
type: Offer
target: urn:sluis:dataset:sensors
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    assignee: urn:sluis:participant:{CONSUMER}
    constraints: [[purpose, isAnyOf, [dpv:AcademicResearch]]]
    data: {{columns: [machine, temp_c, vibration], max_rows: 1000}}
"""


def _data(path: Path) -> None:
    rows = 10_000
    pq.write_table(
        pa.table(
            {
                "machine": [f"M{i % 50:03d}" for i in range(rows)],
                "temp_c": [50.0 + (i % 400) / 10 for i in range(rows)],
                "vibration": [(i % 97) / 100 for i in range(rows)],
                "serial": [f"SN{i:06d}" for i in range(rows)],
            }
        ),
        path,
    )


def _dataset(home: Path) -> Dataset:
    connector = {"type": "files", "root": str(home), "path": "sensors.parquet", "format": "parquet"}
    spec = DatasetSpec(id="sensors", title="Sensors", provider=PROVIDER, policy="inline",
                       approval="automatic", connector=connector)  # fmt: skip
    return Dataset(spec, POLICY)


def _connector_case(home: Path) -> Callable[[], object]:
    connector = FilesConnector(
        "sensors", FilesConfig(root=home, path="sensors.parquet", format=FileFormat.PARQUET)
    )
    query = Query(columns=("machine", "temp_c"), where=(Predicate("machine", Op.EQ, "M007"),))
    limits = DataLimits(columns=("machine", "temp_c", "vibration"), max_rows=1000)
    loop = asyncio.new_event_loop()
    schema = loop.run_until_complete(connector.schema())
    permitted = narrow(query, limits, schema)

    async def run() -> int:
        return sum([b.num_rows async for b in connector.stream(permitted)])

    return lambda: loop.run_until_complete(run())


def main() -> None:
    """Set up, measure the three cases, print the table."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="sluis-bench-") as tmp:
        home = Path(tmp)
        _data(home / "sensors.parquet")
        world = World(home, [CONSUMER])
        consumer = world.consumers[0]
        asyncio.run(world.register(world.sqlite_url(), clients=True, datasets=[_dataset(home)]))
        direct = ds.dataset(home / "sensors.parquet")
        wanted = ds.field("machine") == "M007"

        def read() -> object:
            return direct.to_table(columns=["machine", "temp_c"], filter=wanted)

        rows.append(("pyarrow.dataset, direct (baseline)", measure(REQUESTS, read)))
        rows.append(("FilesConnector.stream, in process", measure(REQUESTS, _connector_case(home))))
        env = world.env()
        with serving(env, free_port(), world.ca.trust_bundle_path) as url, SluisClient(
            url, ca_bundle=world.ca.trust_bundle_path, cert_file=consumer.cert,
            key_file=consumer.key, client_id=CONSUMER,
        ) as client:  # fmt: skip
            client.request_agreement("sensors", purpose=RESEARCH)

            def through() -> object:
                where = [("machine", "eq", "M007")]
                return client.query("sensors", columns=["machine", "temp_c"], where=where)

            rows.append(("through the gateway (SDK, audited)", measure(REQUESTS, through)))
    _print(rows)


def _print(rows: list[tuple[str, tuple[float, float, float]]]) -> None:
    baseline = rows[0][1][1]
    table = Table(title=f"One small query ({REQUESTS} sequential requests each, 200 rows out)")
    for column in ("case", "req/s", "p50 ms", "p99 ms", "p50 vs baseline"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for name, (rate, p50, p99) in rows:
        table.add_row(name, f"{rate:,.0f}", f"{p50:.2f}", f"{p99:.2f}", f"{p50 / baseline:.1f}x")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
