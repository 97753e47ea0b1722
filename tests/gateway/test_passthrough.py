"""Pass-through API datasets: a provider's REST API behind the gateway, narrowed and audited."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from gateway.client import mtls_context
from gateway.participants.schemas import ParticipantCreate
from gateway.participants.service import ParticipantService
from gateway.storage.db import Database
from tests.support.pki import NOW, ClientCert, Pki
from tests.support.registry import register_dataset
from tests.support.server import gateway_settings, running_gateway

MAKER = "EU.EORI.NL000000001"
UNIVERSITY = "NTRNL-40000001"
RESEARCH = "https://w3id.org/dpv#AcademicResearch"
ORDERS = [
    {"order": 1, "machine": "X200", "customer": "Secret BV", "price": 100},
    {"order": 2, "machine": "X300", "customer": "Hidden NV", "price": 250},
]
NESTED = {
    "order": 1,
    "customer": "Secret BV",
    "lines": [{"qty": 2, "customer": "Y"}],
    "meta": {"model": "X200", "customer": "Z"},
}
POLICY = f"""
uid: urn:sluis:policy:maker:orders
type: Offer
target: urn:sluis:dataset:orders
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    assignee: urn:sluis:participant:{UNIVERSITY}
    constraints: [[purpose, isAnyOf, [dpv:AcademicResearch]], [count, lteq, 20]]
    data: {{columns: [order, machine, "lines[].qty", "meta.model"]}}
"""


class _Upstream(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/orders":
            self._json(ORDERS)
        elif self.path == "/orders/":  # the listing a dot segment would reach
            self._json([{"order": 1, "customer": "listed"}])
        elif self.path == "/nested/1":
            self._json(NESTED)
        elif self.path == "/broken":
            self._json({"error": "db password=hunter2"}, 500)
        elif self.path == "/cookie":
            self._json({"order": 1}, headers={"set-cookie": "session=a; Path=/"})
        elif self.path.startswith("/orders/"):
            self._json(ORDERS[0])
        else:
            self._json({"error": "no"}, 404)

    def _json(
        self, value: object, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(value).encode()
        self.send_response(status)
        for name, text in (headers or {}).items():
            self.send_header(name, text)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@dataclass
class World:
    url: str
    pki: Pki
    university: ClientCert
    token: str


async def _setup(url: str, upstream: str) -> None:
    db = Database(url)
    await db.upgrade()
    participants = ParticipantService(db)
    await participants.create(
        ParticipantCreate(id=MAKER, name="Maker", roles=["provider", "operator"]), now=NOW
    )
    await participants.create(
        ParticipantCreate(id=UNIVERSITY, name="Uni", roles=["consumer"]), now=NOW
    )
    connector = {
        "type": "http-passthrough",
        "base_url": upstream,
        "routes": [
            {"method": "GET", "path": p}
            for p in ("/orders", "/orders/{id}", "/nested/{id}", "/broken", "/cookie")
        ],
        "allow_networks": ["127.0.0.1/32"],
    }
    await register_dataset(db, "orders", provider=MAKER, policy=POLICY, connector=connector)
    await db.dispose()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home: Path = tmp_path_factory.mktemp("passthrough")
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    pki = Pki(home / "pki")
    maker = pki.client("Maker", MAKER, ["provider", "operator"])
    university = pki.client("Uni", UNIVERSITY)
    url = f"sqlite+aiosqlite:///{home / 'sluis.db'}"
    asyncio.run(_setup(url, f"http://127.0.0.1:{upstream.server_address[1]}"))
    try:
        with running_gateway(gateway_settings(pki, home, url)) as base:
            with httpx.Client(
                base_url=base, verify=mtls_context(pki.bundle, maker.cert_path, maker.key_path)
            ) as admin:
                body = {
                    "client_id": UNIVERSITY,
                    "auth_method": "tls_client_auth",
                    "scopes": ["dataset:orders"],
                }
                assert admin.post("/v1/admin/clients", json=body).status_code == 201
            with _client(base, pki, university) as client:
                client.post("/v1/agreements", json={"dataset": "orders", "purpose": RESEARCH})
                token = client.post(
                    "/oauth2/token",
                    data={"grant_type": "client_credentials", "client_id": UNIVERSITY},
                ).json()["access_token"]
            yield World(base, pki, university, token)
    finally:
        upstream.shutdown()
        upstream.server_close()


def _client(base: str, pki: Pki, cert: ClientCert, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(
        base_url=base,
        verify=mtls_context(pki.bundle, cert.cert_path, cert.key_path),
        headers=headers,
    )


def test_fields_outside_the_policy_are_removed(world: World) -> None:
    with _client(world.url, world.pki, world.university, world.token) as client:
        listed = client.get("/v1/datasets/orders/api/orders")
        one = client.get("/v1/datasets/orders/api/orders/1")
    assert listed.status_code == 200, listed.text
    assert listed.json() == [{"order": 1, "machine": "X200"}, {"order": 2, "machine": "X300"}]
    assert one.json() == {"order": 1, "machine": "X200"}
    assert int(listed.headers["sluis-audit-index"]) >= 0


def test_routes_outside_the_list_are_refused(world: World) -> None:
    with _client(world.url, world.pki, world.university, world.token) as client:
        other = client.get("/v1/datasets/orders/api/customers")
        escape = client.get("/v1/datasets/orders/api/orders/..%2F..%2Fadmin")
        posted = client.post("/v1/datasets/orders/api/orders", json={"x": 1})
        as_table = client.post("/v1/datasets/orders/query", json={})
    assert (other.status_code, other.json()["type"]) == (403, "urn:sluis:problem:target-refused")
    assert escape.status_code in {403, 404}
    assert posted.status_code == 403
    assert as_table.status_code == 400
    with _client(world.url, world.pki, world.university) as client:
        used = client.get("/v1/agreements").json()[0]["use_count"]
    assert used == 2  # the two permitted calls of the test above; refusals spend nothing


def test_nested_fields_pass_only_by_their_json_paths(world: World) -> None:
    with _client(world.url, world.pki, world.university, world.token) as client:
        got = client.get("/v1/datasets/orders/api/nested/1")
    assert got.status_code == 200, got.text
    assert got.json() == {"order": 1, "lines": [{"qty": 2}], "meta": {"model": "X200"}}


def test_an_upstream_500_is_a_502_problem_without_the_upstream_body(world: World) -> None:
    with _client(world.url, world.pki, world.university, world.token) as client:
        got = client.get("/v1/datasets/orders/api/broken")
    assert got.status_code == 502
    assert got.headers["content-type"] == "application/problem+json"
    assert got.json()["type"] == "urn:sluis:problem:source-rejected"
    assert "hunter2" not in got.text


def test_upstream_cookies_are_not_forwarded(world: World) -> None:
    with _client(world.url, world.pki, world.university, world.token) as client:
        got = client.get("/v1/datasets/orders/api/cookie")
    assert got.status_code == 200
    assert "set-cookie" not in got.headers


@pytest.mark.parametrize("path", ["orders/%2E", "orders/%2e%2e", "orders/1/%2E"])
def test_a_dot_segment_never_reaches_the_listing(world: World, path: str) -> None:
    with _client(world.url, world.pki, world.university, world.token) as client:
        got = client.get(f"/v1/datasets/orders/api/{path}")
    assert got.status_code == 403, got.text
    assert got.json()["type"] == "urn:sluis:problem:target-refused"
