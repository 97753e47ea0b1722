"""Tokens from an external authorization server (a Keycloak stand-in on loopback HTTPS).

The JWKS is served by a real HTTPS server the test starts; the gateway fetches it with
httpx, caches it, refetches on an unknown kid, and fails closed when it cannot.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import resource
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey

from certs import generate_key, issue_server, thumbprint_sha256
from gateway.auth import tokens
from gateway.client import mtls_context
from gateway.errors import ServiceUnavailable
from gateway.oauth import external
from gateway.oauth.clients import ClientService
from gateway.oauth.schemas import ClientCreate, ClientUpdate
from gateway.participants.schemas import ParticipantCreate
from gateway.participants.service import ParticipantService
from gateway.settings import ExternalIssuer
from gateway.storage.db import Database
from tests.support.pki import NOW, ClientCert, Pki, pem, write_key
from tests.support.server import gateway_settings, running_gateway

KEYCLOAK = "https://keycloak.test/realms/sluis"
DEAD = "https://dead.test/realms/sluis"
AUDIENCE = "https://localhost:8443"
UNIVERSITY = "NTRNL-40000001"


@dataclass
class JwksServer:
    """Serves ``document`` at /jwks.json over HTTPS; ``fail`` makes it answer 500."""

    document: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    fail: bool = False
    hits: int = 0


def _handler(state: JwksServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits += 1
            body = json.dumps(state.document).encode()
            self.send_response(500 if state.fail else 200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    return Handler


def _serve_jwks(
    pki: Pki, state: JwksServer, handler: type[BaseHTTPRequestHandler] | None = None
) -> tuple[ThreadingHTTPServer, str]:
    key = generate_key("ec-p256")
    cert = issue_server(
        dns_names=["localhost"],
        ip_addresses=["127.0.0.1"],
        public_key=key.public_key(),
        issuer=pki.issuing,
        issuer_key=pki.issuing_key,
        now=NOW,
    )
    cert_path = pki.directory / "jwks-server.pem"
    cert_path.write_bytes(pem(cert) + pem(pki.issuing))
    key_path = write_key(pki.directory / "jwks-server.key", key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler or _handler(state))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"https://127.0.0.1:{server.server_address[1]}/jwks.json"


@dataclass
class Setup:
    url: str
    pki: Pki
    university: ClientCert
    jwks: JwksServer
    database_url: str


def _rsa() -> RSAKey:
    key = RSAKey.import_key(rsa.generate_private_key(65537, 2048))
    key.ensure_kid()
    return key


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    home = tmp_path_factory.mktemp("external")
    pki = Pki(home / "pki")
    university = pki.client("Universiteit Oost", UNIVERSITY)
    state = JwksServer()
    server, jwks_uri = _serve_jwks(pki, state)
    url = f"sqlite+aiosqlite:///{home / 'sluis.db'}"

    async def register() -> None:
        db = Database(url)
        await db.upgrade()
        data = ParticipantCreate(id=UNIVERSITY, name="Universiteit Oost", roles=["consumer"])
        await ParticipantService(db).create(data, now=NOW)
        await db.dispose()

    asyncio.run(register())
    issuers = [
        {
            "issuer": KEYCLOAK,
            "jwks_uri": jwks_uri,
            "algorithms": ["RS256"],
            "ca_bundle": pki.bundle,
        },
        {"issuer": DEAD, "jwks_uri": "https://127.0.0.1:1/jwks.json", "ca_bundle": pki.bundle},
    ]
    try:
        with running_gateway(gateway_settings(pki, home, url, external_issuers=issuers)) as base:
            yield Setup(base, pki, university, state, url)
    finally:
        server.shutdown()
        server.server_close()


def _token(key: RSAKey, setup: Setup, **overrides: Any) -> str:
    values: dict[str, Any] = {
        "key": key,
        "alg": "RS256",
        "issuer": KEYCLOAK,
        "client_id": UNIVERSITY,
        "audience": AUDIENCE,
        "scopes": frozenset({"dataset:sensors"}),
        "thumbprint": thumbprint_sha256(setup.university.cert),
        "jti": f"kc-{datetime.now(UTC).timestamp()}",
        "now": datetime.now(UTC),
        "lifetime": timedelta(minutes=5),
    }
    values.update(overrides)
    return tokens.mint(**values)[0]


def _session(setup: Setup, token: str) -> httpx.Response:
    cert = setup.university
    context = mtls_context(setup.pki.bundle, cert.cert_path, cert.key_path)
    with httpx.Client(base_url=setup.url, verify=context, timeout=10) as client:
        return client.get("/v1/session", headers={"Authorization": f"Bearer {token}"})


def _code(response: httpx.Response) -> str:
    return str(response.json()["type"]).removeprefix("urn:sluis:problem:")


def test_external_tokens_are_checked_with_the_fetched_keys(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _rsa()
    setup.jwks.document = {"keys": [{**first.as_dict(private=False), "use": "sig"}]}
    accepted = _session(setup, _token(first, setup))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["issuer"] == KEYCLOAK
    hits = setup.jwks.hits
    assert _session(setup, _token(first, setup)).status_code == 200
    assert setup.jwks.hits == hits  # cached

    rotated = _rsa()
    setup.jwks.document = {"keys": [rotated.as_dict(private=False)]}
    throttled = _session(setup, _token(rotated, setup))
    assert _code(throttled) == "token-unknown-key"  # refetching is rate-limited
    monkeypatch.setattr(external, "REFRESH_INTERVAL", timedelta(0))
    assert _session(setup, _token(rotated, setup)).status_code == 200
    assert setup.jwks.hits == hits + 1


def test_external_tokens_follow_the_same_binding_rules(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(external, "REFRESH_INTERVAL", timedelta(0))
    key = _rsa()
    setup.jwks.document = {"keys": [key.as_dict(private=False)]}
    wrong_cert = _session(setup, _token(key, setup, thumbprint="someone-else"))
    assert _code(wrong_cert) == "token-wrong-certificate"
    elsewhere = _session(setup, _token(key, setup, audience="https://elsewhere"))
    assert _code(elsewhere) == "token-wrong-audience"


def test_unreachable_jwks_fails_closed(setup: Setup) -> None:
    response = _session(setup, _token(_rsa(), setup, issuer=DEAD))
    assert response.status_code == 503
    assert _code(response) == "issuer-keys-unavailable"


def test_a_disabled_client_record_refuses_external_tokens_too(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(external, "REFRESH_INTERVAL", timedelta(0))
    key = _rsa()
    setup.jwks.document = {"keys": [key.as_dict(private=False)]}
    token = _token(key, setup)
    assert _session(setup, token).status_code == 200  # no client record: the issuer's client

    async def client_status(status: Literal["active", "disabled"]) -> None:
        db = Database(setup.database_url)
        clients = ClientService(db)
        if await clients.find(UNIVERSITY) is None:
            data = ClientCreate(client_id=UNIVERSITY, auth_method="tls_client_auth")
            await clients.create(data, now=NOW)
        await clients.update(UNIVERSITY, ClientUpdate(status=status), now=NOW)
        await db.dispose()

    asyncio.run(client_status("disabled"))
    refused = _session(setup, token)
    asyncio.run(client_status("active"))
    assert refused.status_code == 401
    assert _code(refused) == "token-client-disabled"
    assert _session(setup, token).status_code == 200


def test_a_jwks_compression_bomb_is_cut_off_at_the_cap(tmp_path: Path) -> None:
    """200 MB of decoded JWKS in 200 KB of gzip: refused (503) without decoding it all."""
    pki = Pki(tmp_path / "pki")
    bomb = gzip.compress(b" " * 200_000_000, compresslevel=1)

    class Bomb(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-encoding", "gzip")
            self.send_header("content-length", str(len(bomb)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the gateway hangs up at the cap
                self.wfile.write(bomb)

        def log_message(self, *_: object) -> None:
            pass

    server, jwks_uri = _serve_jwks(pki, JwksServer(), Bomb)
    issuers = external.ExternalIssuers.from_settings(
        [ExternalIssuer(issuer=KEYCLOAK, jwks_uri=jwks_uri, ca_bundle=pki.bundle)]
    )

    async def fetch() -> str:
        try:
            await issuers.trusted(KEYCLOAK, "kid", datetime.now(UTC))
        except ServiceUnavailable as exc:
            return exc.code
        finally:
            await issuers.aclose()
        return "fetched"

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        assert asyncio.run(fetch()) == "issuer-keys-unavailable"
    finally:
        server.shutdown()
        server.server_close()
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 100  # decoded whole, the 200 MB would be held (twice, when joined)
