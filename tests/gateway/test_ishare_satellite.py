"""iSHARE parties checked at a satellite: a fake satellite on loopback HTTPS, real gateway.

The satellite is a real HTTPS server made here (its iSHARE certificate from the test iSHARE
CA); it verifies the gateway's own client assertion with the same checks Sluis applies, then
answers ``/parties`` as each case needs. Every refusal is a problem+json and a
``token-refused`` audit entry; no network beyond loopback.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey

from certs import TrustStore
from gateway.app import create_app
from gateway.auth.assertions import AssertionRejected, verify_ishare
from gateway.client import mtls_context
from gateway.oauth.capabilities import Capabilities
from gateway.oauth.parties import PartyRefused, SatelliteTrust
from gateway.oauth.satellite import Satellite, SatelliteConfig
from gateway.settings import SettingsError
from gateway.storage.db import Database
from tests.support.ishare import IShareCA, IShareParty
from tests.support.pki import ClientCert, Pki
from tests.support.registry import register_participants
from tests.support.server import gateway_settings, running_gateway

MAKER = "EU.EORI.NL000000001"
PARTY = "EU.EORI.NL000000002"
SERVER_PARTY = "EU.EORI.NL000000099"
SATELLITE_ID = "EU.EORI.NL000000050"
OFFICER = "NTRNL-40000008"
SCOPES = ["dataset:sensors"]


@dataclass
class FakeSatellite:
    """A satellite on loopback HTTPS; ``mode`` says how ``/parties`` answers."""

    identity: IShareParty
    trust: TrustStore
    crls: list[x509.CertificateRevocationList]
    mode: str = "active"
    registered: dict[str, x509.Certificate] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def token_answer(self, form: dict[str, str]) -> tuple[int, object]:
        try:  # the gateway's assertion, checked as Sluis checks its own clients'
            verify_ishare(
                form.get("client_assertion", ""),
                client_id=form.get("client_id", ""),
                server_party_id=SATELLITE_ID,
                trust=self.trust,
                crls=self.crls,
                now=datetime.now(UTC),
            )
        except AssertionRejected as exc:
            return 401, {"error": "invalid_client", "error_description": exc.detail}
        if form.get("scope") != "iSHARE" or form.get("grant_type") != "client_credentials":
            return 400, {"error": "invalid_request"}
        token = f"satellite-token-{len(self.tokens)}"
        self.tokens.add(token)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600}

    def parties_answer(self, eori: str) -> tuple[int, object]:
        now = datetime.now(UTC)
        adherence = {
            "status": "Active",
            "start_date": (now - timedelta(days=30)).isoformat(),
            "end_date": (now + timedelta(days=30)).isoformat(),
        }
        claims: dict[str, Any] = {"aud": SERVER_PARTY}
        key = self.identity.key
        if self.mode == "not-active":
            adherence["status"] = "NotActive"
        elif self.mode == "expired":
            adherence["end_date"] = (now - timedelta(days=1)).isoformat()
        elif self.mode == "wrong-aud":
            claims["aud"] = "EU.EORI.NL000000777"
        elif self.mode == "wrong-signature":
            key = RSAKey.import_key(rsa.generate_private_key(65537, 2048))
        elif self.mode == "error":
            return 500, {"error": "down"}
        listed = self.registered.get(eori, self.identity.chain[0])
        if self.mode == "other-certificate":
            listed = self.identity.chain[0]
        der = base64.b64encode(listed.public_bytes(serialization.Encoding.DER)).decode()
        party = {"party_id": eori, "adherence": adherence, "certificates": [{"x5c": der}]}
        data = [] if self.mode == "unknown" else [party]
        claims["parties_info"] = {"count": len(data), "data": data}
        return 200, {"parties_token": self.sign(claims, key)}

    def sign(self, extra: dict[str, Any], key: RSAKey) -> str:
        issued = int(datetime.now(UTC).timestamp())
        claims = {"iss": SATELLITE_ID, "sub": SATELLITE_ID, "jti": f"j{issued}",
                  "iat": issued, "exp": issued + 30, **extra}  # fmt: skip
        return jwt.encode({"alg": "RS256", "x5c": _x5c(self.identity)}, claims, key,
                          algorithms=["RS256"])  # fmt: skip


def _x5c(party: IShareParty) -> list[str]:
    return [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
            for c in party.chain]  # fmt: skip


def _handler(satellite: FakeSatellite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            satellite.hits.append(self.path)
            length = int(self.headers.get("content-length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            self._answer(*satellite.token_answer(form))

        def do_GET(self) -> None:
            satellite.hits.append(self.path)
            if satellite.mode == "hangup":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if (
                self.headers.get("authorization", "").removeprefix("Bearer ")
                not in satellite.tokens
            ):
                self._answer(401, {"error": "invalid_token"})
                return
            if satellite.mode == "malformed":
                self._raw(200, b"{not json")
                return
            query = parse_qs(urlsplit(self.path).query)
            self._answer(*satellite.parties_answer(query.get("eori", [""])[0]))

        def _answer(self, status: int, value: object) -> None:
            self._raw(status, json.dumps(value).encode())

        def _raw(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    return Handler


@dataclass
class World:
    url: str
    pki: Pki
    certs: dict[str, ClientCert]
    party: IShareParty
    own: IShareParty
    satellite: FakeSatellite


def _start(satellite: FakeSatellite, pki: Pki) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(satellite))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    satellite.server = server
    threading.Thread(target=server.serve_forever, daemon=True).start()


def _own_party(party: IShareParty, home: Path) -> dict[str, Path]:
    key = home / "ishare-key.pem"
    key.write_bytes(party.key.as_pem(private=True))
    chain = home / "ishare-chain.pem"
    chain.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in party.chain))
    return {"ishare_signing_key": key, "ishare_certificate": chain}


async def _register(url: str) -> None:
    db = Database(url)
    await db.upgrade()
    await register_participants(
        db,
        [
            (MAKER, "Machine Maker BV", ["provider", "operator"]),
            (PARTY, "iSHARE Lab", ["consumer"]),
            (OFFICER, "Security Office", ["officer"]),
        ],
    )
    await db.dispose()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("ishare-satellite")
    pki = Pki(home / "pki")
    certs = {
        "maker": pki.client("Machine Maker BV", MAKER, ["provider", "operator"]),
        "party": pki.client("iSHARE Lab", PARTY),
        "officer": pki.client("Security Office", OFFICER, ["officer"]),
    }
    ca = IShareCA()
    crls = home / "crls.pem"
    crls.write_bytes(pki.crl_path.read_bytes() + ca.crl_pem())
    satellite = FakeSatellite(
        ca.party(SATELLITE_ID),
        TrustStore.from_pem(ca.cert.public_bytes(serialization.Encoding.PEM)),
        [x509.load_pem_x509_crl(ca.crl_pem())],
    )
    _start(satellite, pki)
    url = f"sqlite+aiosqlite:///{home / 'sluis.db'}"
    own = ca.party(SERVER_PARTY)
    settings = gateway_settings(
        pki,
        home,
        url,
        tls_crl=crls,
        ishare_party_id=SERVER_PARTY,
        ishare_trust_bundle=ca.bundle(home / "ishare-ca.pem"),
        ishare_satellite_url=satellite.url,
        ishare_satellite_id=SATELLITE_ID,
        ishare_satellite_ca=pki.bundle,
        ishare_satellite_cache_seconds=0,  # every token request asks the satellite
        **_own_party(own, home),
    )
    party = ca.party(PARTY)
    satellite.registered[PARTY] = party.chain[0]
    asyncio.run(_register(url))
    try:
        with running_gateway(settings) as base:
            world = World(base, pki, certs, party, own, satellite)
            with _mtls(world, "maker") as client:
                body = {"client_id": PARTY, "auth_method": "ishare", "profile": "ishare",
                        "scopes": SCOPES}  # fmt: skip
                assert client.post("/v1/admin/clients", json=body).status_code == 201
            yield world
    finally:
        assert satellite.server is not None
        satellite.server.shutdown()
        satellite.server.server_close()


def _mtls(world: World, who: str) -> httpx.Client:
    cert = world.certs[who]
    context = mtls_context(world.pki.bundle, cert.cert_path, cert.key_path)
    return httpx.Client(base_url=world.url, verify=context, timeout=30)


def _ask_token(world: World, path: str = "/connect/token") -> httpx.Response:
    client = Capabilities(PARTY, world.party.key, tuple(_x5c(world.party)), world.url)
    assertion = client.client_assertion(SERVER_PARTY, datetime.now(UTC))
    form = {
        "grant_type": "client_credentials",
        "scope": "iSHARE" if path == "/connect/token" else SCOPES[0],
        "client_id": PARTY,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    with _mtls(world, "party") as client:
        return client.post(path, data=form)


def _refusals(world: World) -> list[str]:
    with _mtls(world, "officer") as officer:
        page = officer.get("/v1/audit/entries", params={"limit": 1000})
    assert page.status_code == 200, page.text
    return [json.dumps(e["entry"]) for e in page.json()["entries"]
            if e["entry"]["event"] == "token-refused"]  # fmt: skip


def test_an_active_party_gets_a_token_after_the_satellite_vouches(world: World) -> None:
    world.satellite.mode = "active"
    world.satellite.hits.clear()
    response = _ask_token(world)
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "dataset:sensors"
    assert f"/parties?eori={PARTY}" in world.satellite.hits
    again = _ask_token(world)  # the gateway's satellite token is reused, the party re-checked
    assert again.status_code == 200, again.text
    assert world.satellite.hits.count("/connect/token") <= 1
    assert sum(h.startswith("/parties") for h in world.satellite.hits) == 2


@pytest.mark.parametrize(
    ("mode", "status", "problem", "reason"),
    [
        ("not-active", 401, "oauth-invalid-client", "party-not-active"),
        ("expired", 401, "oauth-invalid-client", "party-not-active"),
        ("unknown", 401, "oauth-invalid-client", "party-unknown"),
        ("other-certificate", 401, "oauth-invalid-client", "certificate-not-registered"),
        ("wrong-signature", 503, "oauth-temporarily-unavailable", "signature does not verify"),
        ("wrong-aud", 503, "oauth-temporarily-unavailable", "not addressed to this gateway"),
        ("malformed", 503, "oauth-temporarily-unavailable", "not JSON"),
        ("error", 503, "oauth-temporarily-unavailable", "answered 500"),
        ("hangup", 503, "oauth-temporarily-unavailable", "satellite-unavailable"),
    ],
)
def test_a_party_the_satellite_does_not_vouch_for_is_refused_and_audited(
    world: World, mode: str, status: int, problem: str, reason: str
) -> None:
    world.satellite.mode = mode
    try:
        before = len(_refusals(world))
        response = _ask_token(world)
    finally:
        world.satellite.mode = "active"
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"urn:sluis:problem:{problem}"
    assert "access_token" not in body
    assert reason in body["error_description"]
    refusals = _refusals(world)
    assert len(refusals) == before + 1
    assert reason in refusals[-1]
    assert PARTY in refusals[-1]


# --- the satellite client on its own: the cache and an unreachable satellite ---------------


def _satellite(world: World, url: str, cache: int) -> Satellite:
    tls = ssl.create_default_context(cafile=str(world.pki.bundle))
    signer = Capabilities(SERVER_PARTY, world.own.key, tuple(_x5c(world.own)), world.url)
    trust = SatelliteTrust(SATELLITE_ID, SERVER_PARTY, world.satellite.trust)
    config = SatelliteConfig(url, trust, timedelta(seconds=cache), 5.0, tls)
    return Satellite(config, signer)


def test_answers_are_kept_for_the_cache_time(world: World) -> None:
    async def run() -> list[str]:
        satellite = _satellite(world, world.satellite.url, 20)
        world.satellite.mode = "active"
        world.satellite.hits.clear()
        now = datetime.now(UTC)
        try:
            await satellite.admit(PARTY, world.satellite.crls, now=now)
            await satellite.admit(PARTY, world.satellite.crls, now=now + timedelta(seconds=19))
            world.satellite.mode = "not-active"
            with pytest.raises(PartyRefused) as refused:
                await satellite.admit(PARTY, world.satellite.crls, now=now + timedelta(seconds=21))
            assert refused.value.code == "party-not-active"
        finally:
            world.satellite.mode = "active"
            await satellite.aclose()
        return world.satellite.hits

    hits = asyncio.run(run())
    assert sum(h.startswith("/parties") for h in hits) == 2


def test_an_unreachable_satellite_fails_closed(world: World) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def run() -> PartyRefused:
        satellite = _satellite(world, f"https://127.0.0.1:{port}", 60)
        try:
            with pytest.raises(PartyRefused) as refused:
                await satellite.admit(PARTY, world.satellite.crls, now=datetime.now(UTC))
            return refused.value
        finally:
            await satellite.aclose()

    refused = asyncio.run(run())
    assert refused.unavailable
    assert refused.code == "satellite-unavailable"


def test_a_satellite_without_the_gateways_own_ishare_key_stops_the_start(
    world: World, tmp_path: Path
) -> None:
    settings = gateway_settings(
        world.pki,
        tmp_path,
        "sqlite+aiosqlite:///unused.db",
        ishare_party_id=SERVER_PARTY,
        ishare_satellite_url=world.satellite.url,
        ishare_satellite_id=SATELLITE_ID,
    )
    with pytest.raises(SettingsError, match="ishare_signing_key"):
        create_app(settings)


def test_the_oauth2_token_endpoint_checks_ishare_parties_too(world: World) -> None:
    world.satellite.mode = "not-active"
    try:
        response = _ask_token(world, "/oauth2/token")
    finally:
        world.satellite.mode = "active"
    assert response.status_code == 401, response.text
    assert "party-not-active" in response.json()["error_description"]
    assert _ask_token(world, "/oauth2/token").status_code == 200
