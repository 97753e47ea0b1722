"""A TLS connection the gateway closes is let go after ``tls_close_timeout``.

asyncio's TLS protocol sends close_notify and then waits for the client's (30 s by default)
before it lets the socket go. A client that keeps an idle keep-alive connection and does not
read (httpx's pool, a browser tab) never answers, so the gateway would hold that connection
for 30 s after closing it: a stop (a pod's SIGTERM) waited 30 s per such client, and an
idle-closed connection kept its place under ``http_max_connections_per_source`` as long.

The deadlines below only bound how long a test may wait for something to happen; they sit
well above the configured close timeout and well below asyncio's 30 s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.storage.db import Database
from tests.support.pki import Pki
from tests.support.server import Served, client_context, gateway_settings, serving

#: How long a test waits for what the close timeout should bring about (asyncio's is 30 s).
DEADLINE = 15.0


async def _migrate(url: str) -> None:
    db = Database(url)
    await db.upgrade()
    await db.dispose()


@contextmanager
def _serving(tmp_path: Path, **overrides: Any) -> Iterator[tuple[Served, Pki, str]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    asyncio.run(_migrate(url))
    pki = Pki(tmp_path / "pki")
    with serving(gateway_settings(pki, tmp_path, url, **overrides), stop_within=40) as served:
        yield served, pki, f"https://127.0.0.1:{served.port}"


def test_the_gateway_stops_while_a_client_holds_an_idle_connection(tmp_path: Path) -> None:
    with _serving(tmp_path, tls_close_timeout=1.0, http_idle_timeout=600.0) as (served, pki, base):
        client = pki.client("lab", "NTRNL-12345678")
        with httpx.Client(base_url=base, verify=client_context(pki, client), timeout=10) as idle:
            assert idle.get("/healthz").status_code == 200  # kept alive, then left unread
            served.server.should_exit = True
            served.thread.join(timeout=DEADLINE)
            assert not served.thread.is_alive(), (
                "the stop waited for the idle client's close_notify"
            )


def test_an_idle_closed_connection_gives_back_its_place_for_the_source(tmp_path: Path) -> None:
    overrides = {
        "tls_close_timeout": 1.0,
        "http_idle_timeout": 0.5,
        "http_max_connections_per_source": 1,
    }
    with _serving(tmp_path, **overrides) as (_served, pki, base):
        client = pki.client("lab", "NTRNL-12345678")
        context = client_context(pki, client)
        with httpx.Client(base_url=base, verify=context, timeout=10) as idle:
            assert idle.get("/healthz").status_code == 200  # then idle: closed by the gateway
            deadline = time.monotonic() + DEADLINE
            answers: list[int] = []
            while time.monotonic() < deadline:
                with httpx.Client(base_url=base, verify=context, timeout=10) as other:
                    answers.append(other.get("/healthz").status_code)
                if answers[-1] == 200:
                    break
                time.sleep(0.25)
            assert answers[-1:] == [200], answers
            assert set(answers) <= {200, 503}, answers


def test_the_close_timeout_is_a_positive_number_of_seconds(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    for bad in (0, -1):
        with pytest.raises(ValueError, match=r"tls_close_timeout[\s\S]*greater than 0"):
            gateway_settings(pki, tmp_path, "sqlite+aiosqlite://", tls_close_timeout=bad)
