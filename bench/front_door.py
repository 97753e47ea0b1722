"""The cost of the mTLS front door, measured against a baseline on the same server, same run.

Cases (all over real TLS on loopback, one client, sequential requests):

* ``GET /healthz``, kept-alive mTLS connection: baseline (TLS, HTTP parsing, routing).
* ``GET /v1/whoami``, kept-alive: adds certificate path validation, the CRL check and the
  participant lookup in SQLite, i.e. what every authenticated request pays.
* ``GET /v1/whoami``, a new connection per request: adds the full mTLS handshake.
* ``certs.verify`` alone, in process: the pure path-validation part of the above.

The gateway runs as its own ``sluis serve`` process. Request counts are fixed and small
(the whole run takes well under a minute on 2 cores).
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import cryptography
import httpx
from rich.console import Console
from rich.table import Table

import certs
from bench.timing import measure
from bench.world import World
from gateway.background import free_port, serving

ORG = "NTRNL-40000001"
KEEPALIVE_REQUESTS = 2000
HANDSHAKE_REQUESTS = 300
VERIFY_CALLS = 5000


def main() -> None:
    """Run the cases and print the table."""
    with tempfile.TemporaryDirectory(prefix="sluis-bench-") as tmp:
        world = World(Path(tmp), [ORG])
        party = world.consumers[0]
        asyncio.run(world.register(world.sqlite_url()))
        with serving(world.env(), free_port(), world.ca.trust_bundle_path) as url:
            rows = _run_cases(url, world.client_context(party))
        chain = certs.load_pem_chain(party.cert.read_bytes())
        trust = certs.TrustStore.from_pem(world.ca.trust_bundle_path.read_bytes())
        crls = certs.load_crls(world.ca.crl_path.read_bytes())
        now = datetime.now(UTC)
        rows.append(
            (
                "certs.verify in process (no HTTP)",
                VERIFY_CALLS,
                measure(VERIFY_CALLS, lambda: certs.verify(chain, trust, crls, now=now)),
            )
        )
    _print(rows)


def _run_cases(
    url: str, context: ssl.SSLContext
) -> list[tuple[str, int, tuple[float, float, float]]]:
    rows = []
    with httpx.Client(base_url=url, verify=context) as client:
        rows.append(
            (
                "GET /healthz, keep-alive (baseline)",
                KEEPALIVE_REQUESTS,
                measure(KEEPALIVE_REQUESTS, lambda: client.get("/healthz")),
            )
        )
        rows.append(
            (
                "GET /v1/whoami, keep-alive",
                KEEPALIVE_REQUESTS,
                measure(KEEPALIVE_REQUESTS, lambda: client.get("/v1/whoami")),
            )
        )

    def fresh_connection() -> None:
        with httpx.Client(base_url=url, verify=context) as client:
            client.get("/v1/whoami").raise_for_status()

    rows.append(
        (
            "GET /v1/whoami, new mTLS connection each",
            HANDSHAKE_REQUESTS,
            measure(HANDSHAKE_REQUESTS, fresh_connection),
        )
    )
    return rows


def _print(rows: list[tuple[str, int, tuple[float, float, float]]]) -> None:
    baseline = rows[0][2][1]
    table = Table(title="Sluis front door (loopback, sequential, one client)")
    for column in ("case", "n", "req/s", "p50 ms", "p99 ms", "p50 vs baseline"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for name, n, (rate, p50, p99) in rows:
        delta = "-" if name.startswith("certs.verify") else f"{p50 / baseline:.2f}x"
        table.add_row(name, str(n), f"{rate:,.0f}", f"{p50:.3f}", f"{p99:.3f}", delta)
    Console().print(table)
    print(f"python {sys.version.split()[0]}, cryptography {cryptography.__version__}")


if __name__ == "__main__":
    main()
