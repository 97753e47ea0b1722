"""``sluis serve --workers 2``: two processes on one port, one audit log (issue 10).

The real console script, a real database (SQLite file, PostgreSQL), 32 parallel exchanges
each on its own TLS connection, so the kernel hands connections to both workers. Afterwards
the log, read straight from the database, has consecutive indices without a duplicate, its
tree matches its entries, its newest checkpoint verifies, and every permit has its use and
its completion entry.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from gateway.audit.checkpoint import verify_checkpoint
from gateway.audit.keys import Verifier
from gateway.audit.log import AuditReader
from gateway.oauth.clients import ClientService
from gateway.oauth.schemas import ClientCreate
from gateway.storage.db import Database
from gateway.storage.models import UsageStateRow
from tests.audit.logs import assert_consistent
from tests.blackbox.test_serve import (
    MAKER,
    RESEARCH,
    SLUIS,
    UNIVERSITY,
    Served,
    _free_port,
    _upstream,
    _wait_until_up,
)
from tests.support.databases import database_url
from tests.support.pki import NOW, Pki
from tests.support.registry import register_dataset, register_participants
from tests.support.server import signing_key

REQUESTS = 32


POLICY = f"""
uid: urn:sluis:policy:maker:sensors
type: Offer
target: urn:sluis:dataset:sensors
permissions: [{{action: read, assignee: urn:sluis:participant:{UNIVERSITY}}}]
"""


async def _register(url: str, data: Path) -> None:
    """Participants, the consumer's client and the dataset, in process (no CLI start-ups)."""
    db = Database(url)
    try:
        await db.upgrade()
        await register_participants(
            db, [(MAKER, "Maker", ["provider"]), (UNIVERSITY, "Uni", ["consumer"])]
        )
        client = ClientCreate(
            client_id=UNIVERSITY, auth_method="tls_client_auth", scopes=["dataset:sensors"]
        )
        await ClientService(db).create(client, now=NOW)
        connector = {"type": "files", "root": str(data), "path": "sensors.csv", "format": "csv"}
        await register_dataset(db, "sensors", provider=MAKER, policy=POLICY, connector=connector)
    finally:
        await db.dispose()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
    tuple[Served, str]
]:  # fmt: skip
    home = tmp_path_factory.mktemp(f"workers-{request.param}")
    pki = Pki(home / "pki")
    maker = pki.client("Machine Maker BV", MAKER, ["provider", "operator"])
    university = pki.client("Universiteit Oost", UNIVERSITY)
    (home / "data").mkdir()
    (home / "data" / "sensors.csv").write_text("machine,temp_c\nX1,60.5\nX2,61.5\n")
    port = _free_port()
    with database_url(request.param, home) as url:
        asyncio.run(_register(url, home / "data"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUIS_")}
        env |= {
            "SLUIS_HOME": str(home), "SLUIS_DATABASE_URL": url, "SLUIS_PORT": str(port),
            "SLUIS_PUBLIC_URL": f"https://localhost:{port}",
            "SLUIS_TLS_CERT": str(pki.server_cert), "SLUIS_TLS_KEY": str(pki.server_key),
            "SLUIS_TLS_CLIENT_CA": str(pki.bundle), "SLUIS_TLS_CRL": str(pki.crl_path),
            "SLUIS_SIGNING_KEY_FILE": str(signing_key(home)),
            "SLUIS_AUDIT_KEY_FILE": str(signing_key(home, "audit-key.pem")),
        }  # fmt: skip
        process = subprocess.Popen(
            [SLUIS, "serve", "--workers", "2"], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        upstream = _upstream()  # Served carries one; nothing here calls it
        try:
            served = Served(
                f"https://localhost:{port}", port, home, env, pki, maker, university, upstream
            )
            _wait_until_up(served.url, pki, maker, process)
            with served.client(university) as client:
                body = {"dataset": "sensors", "purpose": RESEARCH}
                made = client.post("/v1/agreements", json=body)
                assert made.status_code == 201, made.text
            yield served, url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            if process.stderr is not None:
                process.stderr.close()
            upstream.close()


def _verifier(home: Path, name: str) -> Verifier:
    key = serialization.load_pem_private_key((home / "audit-key.pem").read_bytes(), None)
    raw = key.public_key().public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return Verifier(name, raw)


async def _log_state(url: str, home: Path) -> tuple[int, int, int, int]:
    """(entries, permits, completions, uses) once every completion is in (polled)."""
    db = Database(url)
    reader = AuditReader(db)
    try:
        for _ in range(300):  # polls the store (up to ~30 s against hanging, not timing)
            records = await reader.entry_range(0, await reader.size())
            events = [r.entry for r in records]
            permits = [e for e in events if e.event == "access-decision" and e.decision
                       and e.decision.result == "permit"]  # fmt: skip
            ends = [e for e in events if e.event == "exchange-completed"]
            if len(ends) >= len(permits):
                break
            await asyncio.sleep(0.1)
        size = await assert_consistent(reader)  # indices 0..n-1, no duplicate, tree matches
        latest = await reader.latest_checkpoint()
        assert latest is not None
        origin = latest.note.split(b"\n", 1)[0].decode()
        verify_checkpoint(latest.note, [_verifier(home, origin)], origin)
        async with db.session() as session:
            uses = int(await session.scalar(select(UsageStateRow.use_count)) or 0)
        return size, len(permits), len(ends), uses
    finally:
        await db.dispose()


def test_two_workers_append_to_one_log_in_sequence(served: tuple[Served, str]) -> None:
    server, url = served
    token = server.token()

    def one(_: int) -> int:
        with server.client(server.university, token) as client:  # a connection of its own
            return client.get("/v1/datasets/sensors/data", params={"format": "csv"}).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(one, range(REQUESTS)))
    assert statuses == [200] * REQUESTS, statuses
    size, permits, ends, uses = asyncio.run(_log_state(url, server.home))
    assert permits == uses == REQUESTS
    assert ends == permits
    assert size >= 2 * REQUESTS
