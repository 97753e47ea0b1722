"""Demo step 5: the machine maker's data and how it is shared.

Three datasets: spindle sensor readings (Parquet, manual approval, four columns of five,
three uses), a maintenance table (SQLite, aggregates over at least 3 rows only), and the
maker's small REST API (a loopback HTTP server, JSON rows).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow as pa
import pyarrow.parquet as pq

from gateway.demo.common import HOME, MAKER, UNIVERSITY, console, sluis, step

PROVIDER = HOME / "provider"
RESEARCH = "https://w3id.org/dpv#AcademicResearch"
MACHINES = [
    {"machine": f"{model}-{n:03d}", "model": model, "site": site, "commissioned": year}
    for n, (model, site, year) in enumerate(
        [("X200", "Eindhoven", 2019), ("X200", "Delft", 2020), ("X300", "Enschede", 2021),
         ("X300", "Eindhoven", 2022), ("Z9", "Delft", 2023)] * 4
    )
]  # fmt: skip

SENSORS_POLICY = f"""# Spindle sensors: the university may read four of the five columns for
# academic research, at most 1000 rows a request, three requests in all.
uid: urn:sluis:policy:maker:spindle-sensors
type: Offer
assigner: urn:sluis:participant:{MAKER.org_id}
target: urn:sluis:dataset:spindle-sensors
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    assignee: urn:sluis:participant:{UNIVERSITY.org_id}
    constraints:
      - [purpose, isAnyOf, [dpv:AcademicResearch, dpv:NonCommercialResearch]]
      - [count, lteq, 3]
    data:
      columns: [machine, temp_c, vibration, recorded_on]
      max_rows: 1000
"""

MAINTENANCE_POLICY = f"""# Maintenance: aggregates only, never a group of fewer than 3 jobs.
uid: urn:sluis:policy:maker:maintenance
type: Offer
target: urn:sluis:dataset:maintenance
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    assignee: urn:sluis:participant:{UNIVERSITY.org_id}
    constraints: [[purpose, isAnyOf, [dpv:AcademicResearch]]]
    data:
      columns: [model, action, cost_eur]
      min_group_size: 3
"""

MACHINES_POLICY = f"""# The machine register from the maker's REST API, for research.
uid: urn:sluis:policy:maker:machines
type: Offer
target: urn:sluis:dataset:machines
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    assignee: urn:sluis:participant:{UNIVERSITY.org_id}
    constraints: [[purpose, isAnyOf, [dpv:AcademicResearch]]]
"""


def write_data() -> None:
    """The sensor readings (Parquet) and the maintenance table (SQLite)."""
    data = PROVIDER / "data"
    data.mkdir(parents=True, exist_ok=True)
    rows = 5000
    pq.write_table(
        pa.table(
            {
                "machine": [MACHINES[i % len(MACHINES)]["machine"] for i in range(rows)],
                "temp_c": [55.0 + (i * 7 % 300) / 10 for i in range(rows)],
                "vibration": [round(0.1 + (i * 13 % 90) / 100, 2) for i in range(rows)],
                "serial": [f"SN-{i * 7919 % 100000:05d}" for i in range(rows)],
                "recorded_on": [f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(rows)],
            }
        ),
        data / "spindle_sensors.parquet",
    )
    with sqlite3.connect(PROVIDER / "maintenance.db") as db:
        db.execute(
            "CREATE TABLE maintenance (model TEXT, action TEXT, technician TEXT, cost_eur REAL)"
        )
        jobs = [
            ("X200", "bearing", "Anna", 420.0), ("X200", "bearing", "Bram", 450.0),
            ("X200", "bearing", "Anna", 410.0), ("X300", "spindle", "Cor", 1250.0),
            ("X300", "spindle", "Cor", 1190.0), ("X300", "spindle", "Dirk", 1310.0),
            ("X300", "spindle", "Anna", 1280.0), ("Z9", "recall", "Bram", 90.0),
        ]  # fmt: skip
        db.executemany("INSERT INTO maintenance VALUES (?, ?, ?, ?)", jobs)


DESCRIPTIONS = {  # the catalog's dct:description (DCAT-AP 3 requires one)
    "spindle-sensors": "Spindle temperature and vibration per machine, recorded each day; "
    "aggregates over at least five machines, for academic research.",
    "maintenance": "Maintenance jobs per machine model: the action taken, the technician "
    "and the cost in euro.",
    "machines": "The register of commissioned machines, served by the maker's REST API.",
}


def _spec(dataset_id: str, title: str, approval: str, connector: dict[str, object]) -> str:
    spec = {
        "id": dataset_id,
        "title": title,
        "description": DESCRIPTIONS[dataset_id],
        "provider": MAKER.org_id,
        "policy": f"../policies/{dataset_id}.yaml",
        "approval": approval,
        "connector": connector,
    }
    return json.dumps(spec, indent=2)  # JSON is YAML


def register(env: dict[str, str], api_port: int) -> None:
    """Policies and dataset specs on disk, then ``sluis datasets add`` and the OAuth client."""
    step("5. The machine maker shares three datasets, each under its own usage policy")
    write_data()
    (PROVIDER / "policies").mkdir(exist_ok=True)
    (PROVIDER / "datasets").mkdir(exist_ok=True)
    policies = {
        "spindle-sensors": SENSORS_POLICY,
        "maintenance": MAINTENANCE_POLICY,
        "machines": MACHINES_POLICY,
    }
    for name, text in policies.items():
        (PROVIDER / "policies" / f"{name}.yaml").write_text(text)
    sqlite_url = f"sqlite+aiosqlite:///{PROVIDER / 'maintenance.db'}"
    files = {"type": "files", "root": "../data", "path": "spindle_sensors.parquet"}
    api = {"type": "http", "base_url": f"http://127.0.0.1:{api_port}", "path": "/machines"}
    api_columns = {
        "machine": "string",
        "model": "string",
        "site": "string",
        "commissioned": "int64",
    }
    specs = {
        "spindle-sensors": _spec(
            "spindle-sensors", "Spindle sensor readings", "manual", {**files, "format": "parquet"}
        ),
        "maintenance": _spec(
            "maintenance", "Maintenance jobs", "automatic",
            {"type": "sql", "url": sqlite_url, "table": "maintenance"},
        ),
        "machines": _spec(
            "machines", "Machine register (REST API)", "automatic",
            {**api, "columns": api_columns, "allow_networks": ["127.0.0.1/32"]},
        ),
    }  # fmt: skip
    for name, text in specs.items():
        path = PROVIDER / "datasets" / f"{name}.yaml"
        path.write_text(text)
        console.print(sluis("datasets", "add", str(path), env=env).strip())
    scopes = [arg for name in specs for arg in ("--scope", f"dataset:{name}")]
    sluis("clients", "add", UNIVERSITY.org_id, "--auth-method", "tls_client_auth", *scopes, env=env)
    sluis("clients", "add", MAKER.org_id, "--auth-method", "tls_client_auth", env=env)
    console.print(sluis("datasets", "list", env=env))


class _Api(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(MACHINES if self.path == "/machines" else []).encode()
        self.send_response(200 if self.path == "/machines" else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def rest_api() -> Iterator[int]:
    """The maker's existing REST API on a loopback port, while the block runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
