"""The health port: kubelet probes work under ``tls_client_auth: required`` (issue 13).

A real gateway with client certificates required: the gateway port refuses a handshake
without a certificate, while the plain-HTTP health port answers /healthz and /readyz (and
nothing else) without one.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from gateway.storage.db import Database
from tests.support.databases import database_url
from tests.support.pki import Pki
from tests.support.server import client_context, gateway_settings, serving


@dataclass
class Ports:
    gateway: str
    health: str
    pki: Pki


def _port(server: uvicorn.Server | None) -> int:
    assert server is not None
    return int(server.servers[0].sockets[0].getsockname()[1])


async def _migrate(url: str) -> None:
    db = Database(url)
    await db.upgrade()
    await db.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def ports(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Ports]:
    home = tmp_path_factory.mktemp(f"health-{request.param}")
    pki = Pki(home / "pki")
    with database_url(request.param, home) as url:
        asyncio.run(_migrate(url))
        settings = gateway_settings(
            pki, home, url, tls_client_auth="required", health_port=0, health_host="127.0.0.1"
        )
        with serving(settings) as served:
            yield Ports(
                f"https://127.0.0.1:{served.port}",
                f"http://127.0.0.1:{_port(served.server.health)}",
                pki,
            )
        assert not served.thread.is_alive()


def test_gateway_port_refuses_a_probe_without_certificate(ports: Ports) -> None:
    with (
        pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)),
        httpx.Client(verify=client_context(ports.pki, None), timeout=10) as client,
    ):
        client.get(f"{ports.gateway}/healthz")


@pytest.mark.parametrize(("path", "status"), [("/healthz", "ok"), ("/readyz", "ready")])
def test_health_port_answers_without_certificate(ports: Ports, path: str, status: str) -> None:
    answer = httpx.get(f"{ports.health}{path}", timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": status}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/whoami"),
        ("GET", "/.well-known/oauth-authorization-server"),
        ("POST", "/healthz"),
        ("GET", "/healthz/../v1/whoami"),
        ("GET", "/docs"),
    ],
)
def test_health_port_serves_nothing_else(ports: Ports, method: str, path: str) -> None:
    answer = httpx.request(method, f"{ports.health}{path}", timeout=10)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "urn:sluis:problem:not-found"


def test_health_port_is_plain_http(ports: Ports) -> None:
    context = ssl.create_default_context()
    with pytest.raises(httpx.ConnectError):
        httpx.get(ports.health.replace("http:", "https:") + "/healthz", verify=context, timeout=5)


def test_health_port_has_the_front_door_limits(ports: Ports) -> None:
    answer = httpx.get(f"{ports.health}/healthz", headers={"x-big": "a" * 40_000}, timeout=10)
    assert answer.status_code == 431
    assert answer.headers["content-type"] == "application/problem+json"
