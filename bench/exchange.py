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
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

import certs
from bench.timing import measure
from connectors import Op, Predicate, Query, narrow
from connectors.files import FileFormat, FilesConfig, FilesConnector
from gateway.background import free_port, serving
from gateway.client import SluisClient
from gateway.datasets.factory import create_connector
from gateway.datasets.schemas import DatasetSpec
from gateway.datasets.service import DatasetService
from gateway.oauth.clients import ClientService
from gateway.oauth.schemas import ClientCreate
from gateway.participants.schemas import ParticipantCreate
from gateway.participants.service import ParticipantService
from gateway.storage.db import Database
from policies import DataLimits

PROVIDER, CONSUMER = "EU.EORI.NL000000001", "NTRNL-40000001"
RESEARCH = "https://w3id.org/dpv#AcademicResearch"
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


async def _register(home: Path, now: datetime) -> None:
    db = Database(f"sqlite+aiosqlite:///{home / 'sluis.db'}")
    await db.upgrade()
    participants = ParticipantService(db)
    await participants.create(
        ParticipantCreate(id=PROVIDER, name="Maker", roles=["provider"]), now=now
    )
    await participants.create(
        ParticipantCreate(id=CONSUMER, name="Uni", roles=["consumer"]), now=now
    )
    connector = {"type": "files", "root": str(home), "path": "sensors.parquet", "format": "parquet"}
    spec = DatasetSpec(id="sensors", title="Sensors", provider=PROVIDER, policy="inline",
                       approval="automatic", connector=connector)  # fmt: skip
    await DatasetService(db, create_connector).register(spec, POLICY, "yaml", now=now)
    client = ClientCreate(
        client_id=CONSUMER, auth_method="tls_client_auth", scopes=["dataset:sensors"]
    )
    await ClientService(db).create(client, now=now)
    await db.dispose()


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
        now = datetime.now(UTC)
        ca = certs.CADirectory.init(home / "pki", name="Bench", key_type="ec-p256", now=now)
        issued = ca.issue(organization_id=CONSUMER, organization_name="Uni", roles=["consumer"],
                          now=now, out_dir=home / "client")  # fmt: skip
        assert issued.key_path is not None
        asyncio.run(_register(home, now))
        direct = ds.dataset(home / "sensors.parquet")
        wanted = ds.field("machine") == "M007"

        def read() -> object:
            return direct.to_table(columns=["machine", "temp_c"], filter=wanted)

        rows.append(("pyarrow.dataset, direct (baseline)", measure(REQUESTS, read)))
        rows.append(("FilesConnector.stream, in process", measure(REQUESTS, _connector_case(home))))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLUIS_", "OTEL_"))}
        env.update({
            "SLUIS_HOME": str(home), "SLUIS_INSECURE_DEV_MODE": "true",
            "SLUIS_TLS_CERT": str(ca.server_cert_path), "SLUIS_TLS_KEY": str(ca.server_key_path),
            "SLUIS_TLS_CLIENT_CA": str(ca.trust_bundle_path), "SLUIS_TLS_CRL": str(ca.crl_path),
        })  # fmt: skip
        with serving(env, free_port(), ca.trust_bundle_path) as url, SluisClient(
            url, ca_bundle=ca.trust_bundle_path, cert_file=issued.certificate_path,
            key_file=issued.key_path, client_id=CONSUMER,
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
