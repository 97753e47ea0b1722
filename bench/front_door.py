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
import os
import ssl
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import cryptography
import httpx
from rich.console import Console
from rich.table import Table

import certs
from bench.timing import measure
from gateway.background import free_port, serving
from gateway.participants.schemas import ParticipantCreate
from gateway.participants.service import ParticipantService
from gateway.settings import Settings, ensure_dev_signing_key
from gateway.storage.db import Database

ORG = "NTRNL-40000001"
KEEPALIVE_REQUESTS = 2000
HANDSHAKE_REQUESTS = 300
VERIFY_CALLS = 5000


def _setup(home: Path) -> tuple[Settings, certs.CADirectory, Path, Path]:
    now = datetime.now(UTC)
    ca = certs.CADirectory.init(home / "pki", name="Bench", key_type="ec-p256", now=now)
    issued = ca.issue(
        organization_id=ORG,
        organization_name="Bench University",
        roles=["consumer"],
        now=now,
        out_dir=home / "client",
    )
    assert issued.key_path is not None
    settings = Settings(
        home=home,
        port=0,
        tls_cert=ca.server_cert_path,
        tls_key=ca.server_key_path,
        tls_client_ca=ca.trust_bundle_path,
        tls_crl=ca.crl_path,
        signing_key_file=ensure_dev_signing_key(home / "dev"),
        insecure_dev_mode=True,
    )

    async def register() -> None:
        db = Database(settings.effective_database_url)
        await db.upgrade()
        data = ParticipantCreate(id=ORG, name="Bench University", roles=["consumer"])
        await ParticipantService(db).create(data, now=now)
        await db.dispose()

    asyncio.run(register())
    return settings, ca, issued.certificate_path, issued.key_path


def main() -> None:
    """Run the cases and print the table."""
    with tempfile.TemporaryDirectory(prefix="sluis-bench-") as tmp:
        settings, ca, cert_path, key_path = _setup(Path(tmp))
        context = ssl.create_default_context(cafile=str(ca.trust_bundle_path))
        context.load_cert_chain(cert_path, key_path)
        with _gateway_process(settings) as url:
            rows = _run_cases(url, context)
        chain = certs.load_pem_chain(cert_path.read_bytes())
        trust = certs.TrustStore.from_pem(ca.trust_bundle_path.read_bytes())
        crls = certs.load_crls(ca.crl_path.read_bytes())
        now = datetime.now(UTC)
        rows.append(
            (
                "certs.verify in process (no HTTP)",
                VERIFY_CALLS,
                measure(VERIFY_CALLS, lambda: certs.verify(chain, trust, crls, now=now)),
            )
        )
    _print(rows)


@contextmanager
def _gateway_process(settings: Settings) -> Iterator[str]:
    """``sluis serve`` in its own process, so client and server do not share a GIL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUIS_")}
    env.update({
        "SLUIS_HOME": str(settings.home),
        "SLUIS_TLS_CERT": str(settings.tls_cert), "SLUIS_TLS_KEY": str(settings.tls_key),
        "SLUIS_TLS_CLIENT_CA": str(settings.tls_client_ca), "SLUIS_TLS_CRL": str(settings.tls_crl),
        "SLUIS_SIGNING_KEY_FILE": str(settings.signing_key_file),
    })  # fmt: skip
    assert settings.tls_client_ca is not None
    with serving(env, free_port(), settings.tls_client_ca) as url:
        yield url


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
