"""A stop waits at most ``shutdown_timeout`` for the responses under way, then cancels them,
and the exchanges it cut off are recorded before the process exits.

uvicorn waits for every response under way without a bound unless told otherwise, so a
consumer reading a long download slowly (or not at all, within ``http_send_timeout``) held a
stop until Kubernetes killed the pod at its grace period; the exchange was then left open in
the audit log until a process of the same ``instance_name`` started again, which a replaced
pod never is. Real gateway, real mTLS client that reads the first bytes and then stalls.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.audit.log import AuditLog
from gateway.client import mtls_context
from gateway.settings import Settings
from gateway.storage.db import Database
from tests.audit.logs import ORIGIN, SIGNER
from tests.support.pki import Pki
from tests.support.registry import register_dataset, register_participants
from tests.support.server import gateway_settings, serving

MAKER, UNIVERSITY = "EU.EORI.NL000000001", "NTRNL-40000001"
RESEARCH = "https://w3id.org/dpv#AcademicResearch"
POLICY = """
uid: urn:sluis:policy:maker:sensors
type: Offer
target: urn:sluis:dataset:sensors
permissions: [{action: read}]
"""
#: How long the test lets the stop take (the timeout below is 1 s; uvicorn's own: forever).
DEADLINE = 20.0


async def _setup(url: str, home: Path) -> None:
    db = Database(url)
    await db.upgrade()
    parties = [(MAKER, "Maker", ["provider", "operator"]), (UNIVERSITY, "Uni", ["consumer"])]
    await register_participants(db, parties)
    data = home / "data"
    data.mkdir()
    # ~24 MB of CSV: far more than loopback's socket buffers, so an unread response stalls.
    (data / "sensors.csv").write_text("machine,temp_c\n" + "X200,61\n" * 3_000_000)
    files = {"type": "files", "root": str(data), "path": "sensors.csv", "format": "csv"}
    await register_dataset(db, "sensors", provider=MAKER, policy=POLICY, connector=files)
    await db.dispose()


async def _completions(url: str) -> list[tuple[str, ...]]:
    db = Database(url)
    log = AuditLog(db, SIGNER, ORIGIN)
    try:
        records = await log.entries()
        return [r.entry.decision.reasons for r in records if r.entry.event == "exchange-completed"]
    finally:
        await log.close()
        await db.dispose()


def _unclosed() -> list[str]:
    """What the garbage collector finds left open (sockets, transports) just now."""
    found: list[str] = []
    hook = sys.unraisablehook
    sys.unraisablehook = lambda raised: found.append(f"{raised.exc_value}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            gc.collect()
    finally:
        sys.unraisablehook = hook
    return found


def _settings(tmp_path: Path, pki: Pki, url: str, **overrides: Any) -> Settings:
    return gateway_settings(pki, tmp_path, url, http_send_timeout=600.0, **overrides)


def test_a_stop_cancels_a_stalled_download_after_the_timeout_and_records_it(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    asyncio.run(_setup(url, tmp_path))
    pki = Pki(tmp_path / "pki")
    maker = pki.client("Maker", MAKER, ["provider", "operator"])
    uni = pki.client("Uni", UNIVERSITY)
    settings = _settings(tmp_path, pki, url, shutdown_timeout=1)
    with serving(settings, stop_within=DEADLINE) as served:
        base = f"https://127.0.0.1:{served.port}"

        def client(who: Any, token: str | None = None) -> httpx.Client:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            context = mtls_context(pki.bundle, who.cert_path, who.key_path)
            return httpx.Client(base_url=base, verify=context, headers=headers, timeout=30)

        with client(maker) as admin:
            body = {"client_id": UNIVERSITY, "auth_method": "tls_client_auth",
                    "scopes": ["dataset:sensors"]}  # fmt: skip
            assert admin.post("/v1/admin/clients", json=body).status_code == 201
        with client(uni) as consumer:
            asked = {"dataset": "sensors", "purpose": RESEARCH}
            agreed = consumer.post("/v1/agreements", json=asked)
            assert agreed.json()["state"] == "active", agreed.text
            form = {"grant_type": "client_credentials", "client_id": UNIVERSITY}
            token = consumer.post("/oauth2/token", data=form).json()["access_token"]
        with (
            client(uni, token) as consumer,
            consumer.stream("GET", "/v1/datasets/sensors/data?format=csv") as response,
        ):
            assert response.status_code == 200
            chunks = response.iter_raw()  # kept: a dropped iterator closes the response
            assert next(chunks).startswith(b'"machine"')  # then it stalls
            served.server.should_exit = True
            served.thread.join(timeout=DEADLINE)
            assert not served.thread.is_alive(), "the stop waited for the stalled download"
    # The cut-off connection was closed by the stop, not left to the garbage collector (an
    # unclosed transport's ResourceWarning would surface in whichever test ran next).
    del served, consumer, response, chunks
    assert _unclosed() == []
    # Recorded by the stream itself as the stop cut it off (with how long it ran), not left
    # for a start of this instance_name that may never come (a replaced pod's never does).
    ((result, seconds),) = asyncio.run(_completions(url))
    assert result == "interrupted"
    assert seconds.startswith("seconds=")


def test_the_shutdown_timeout_must_be_positive(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match=r"shutdown_timeout[\s\S]*(greater than|integer)"):
            _settings(tmp_path, pki, "sqlite+aiosqlite://", shutdown_timeout=bad)
