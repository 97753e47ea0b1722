"""The mTLS front door with real TLS handshakes, on SQLite and on PostgreSQL.

Every refusal from the issue's "Bad input" list is exercised through a real handshake:
either the handshake fails, or HTTP is reached and the answer is problem+json.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest

from gateway.participants.schemas import ParticipantCreate
from gateway.participants.service import ParticipantService
from gateway.storage.db import Database
from tests.support.databases import database_url
from tests.support.pki import NOW, SERVER_AUTH, ClientCert, Pki
from tests.support.server import gateway_settings, https, running_gateway

UNIVERSITY = "NTRNL-41000000"
MAKER = "EU.EORI.NL000000001"
SUSPENDED = "NTRNL-42000000"
STRANGER = "NTRNL-43000000"
HANDSHAKE_REFUSED = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)


@dataclass
class Gateway:
    url: str
    pki: Pki
    certs: dict[str, ClientCert]


async def _register(url: str) -> None:
    db = Database(url)
    service = ParticipantService(db)
    await db.upgrade()
    for pid, name, roles, status in [
        (UNIVERSITY, "TU Delft", ["consumer"], "active"),
        (MAKER, "Machine Maker BV", ["provider", "operator"], "active"),
        (SUSPENDED, "Gone Fieldlab", ["consumer"], "suspended"),
    ]:
        data = ParticipantCreate(id=pid, name=name, roles=roles, status=status)  # type: ignore[arg-type]
        await service.create(data, now=NOW)
    await db.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    home = tmp_path_factory.mktemp(f"gw-{request.param}")
    pki = Pki(home / "pki")
    certs = {
        "university": pki.client("TU Delft", UNIVERSITY),
        "maker": pki.client("Machine Maker BV", MAKER, ["provider", "operator"]),
        "suspended": pki.client("Gone Fieldlab", SUSPENDED),
        "stranger": pki.client("Unregistered BV", STRANGER),
        "revoked": pki.client("TU Delft", UNIVERSITY),
        "expired": pki.client("TU Delft", UNIVERSITY, now=NOW - timedelta(days=40), days=30),
        "future": pki.client("TU Delft", UNIVERSITY, now=NOW + timedelta(days=2)),
        "server_eku": pki.client_with_eku("TU Delft", UNIVERSITY, SERVER_AUTH),
    }
    pki.revoke(certs["revoked"])
    other = Pki(home / "other-pki")
    certs["unknown_ca"] = other.client("TU Delft", UNIVERSITY)
    with database_url(request.param, home) as url:
        asyncio.run(_register(url))
        with running_gateway(gateway_settings(pki, home, url)) as base:
            yield Gateway(base, pki, certs)


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"urn:sluis:problem:{code}"
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body  # type: ignore[no-any-return]


def test_whoami_with_a_valid_certificate(gateway: Gateway) -> None:
    with https(gateway.pki, gateway.certs["university"], gateway.url) as client:
        response = client.get("/v1/whoami")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["participant"]["id"] == UNIVERSITY
    assert body["participant"]["name"] == "TU Delft"
    assert body["effective_roles"] == ["consumer"]
    assert body["certificate"]["source"] == "tls"
    assert body["certificate"]["serial_number"] == format(
        gateway.certs["university"].cert.serial_number, "x"
    )


def test_effective_roles_are_registry_and_certificate(gateway: Gateway) -> None:
    with https(gateway.pki, gateway.certs["maker"], gateway.url) as client:
        body = client.get("/v1/whoami").json()
    assert body["effective_roles"] == ["operator", "provider"]


def test_health_needs_no_certificate(gateway: Gateway) -> None:
    with https(gateway.pki, None, gateway.url) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ready"}


def test_no_certificate_is_refused(gateway: Gateway) -> None:
    with https(gateway.pki, None, gateway.url) as client:
        response = client.get("/v1/whoami")
    _problem(response, 401, "certificate-no-certificate")


@pytest.mark.parametrize("name", ["unknown_ca", "expired", "future", "server_eku"])
def test_unverifiable_certificates_fail_the_handshake(gateway: Gateway, name: str) -> None:
    with (
        https(gateway.pki, gateway.certs[name], gateway.url) as client,
        pytest.raises(HANDSHAKE_REFUSED),
    ):
        client.get("/v1/whoami")


def test_revoked_certificate_is_refused(gateway: Gateway) -> None:
    with https(gateway.pki, gateway.certs["revoked"], gateway.url) as client:
        response = client.get("/v1/whoami")
    _problem(response, 401, "certificate-revoked")


def test_revocation_takes_effect_without_restart(gateway: Gateway) -> None:
    late = gateway.pki.client("TU Delft", UNIVERSITY)
    with https(gateway.pki, late, gateway.url) as client:
        assert client.get("/v1/whoami").status_code == 200
    gateway.pki.revoke(late)
    with https(gateway.pki, late, gateway.url) as client:
        _problem(client.get("/v1/whoami"), 401, "certificate-revoked")


def test_unregistered_participant_is_refused(gateway: Gateway) -> None:
    with https(gateway.pki, gateway.certs["stranger"], gateway.url) as client:
        response = client.get("/v1/whoami")
    _problem(response, 403, "unknown-participant")


def test_suspended_participant_is_refused(gateway: Gateway) -> None:
    with https(gateway.pki, gateway.certs["suspended"], gateway.url) as client:
        response = client.get("/v1/whoami")
    _problem(response, 403, "participant-suspended")


def test_forged_forwarded_header_from_untrusted_peer_is_ignored(gateway: Gateway) -> None:
    forged = {"x-forwarded-client-cert": f'Cert="{quote(gateway.certs["maker"].leaf_pem)}"'}
    with https(gateway.pki, None, gateway.url) as client:
        _problem(client.get("/v1/whoami", headers=forged), 401, "certificate-no-certificate")
    nginx = {
        "ssl-client-cert": quote(gateway.certs["maker"].leaf_pem),
        "ssl-client-verify": "SUCCESS",
    }
    with https(gateway.pki, gateway.certs["university"], gateway.url) as client:
        body = client.get("/v1/whoami", headers={**forged, **nginx}).json()
    assert body["participant"]["id"] == UNIVERSITY


def test_admin_api_needs_the_operator_role(gateway: Gateway) -> None:
    with https(gateway.pki, gateway.certs["university"], gateway.url) as client:
        _problem(client.get("/v1/admin/participants"), 403, "role-required")
    with https(gateway.pki, gateway.certs["maker"], gateway.url) as client:
        ids = [p["id"] for p in client.get("/v1/admin/participants").json()]
    assert UNIVERSITY in ids
    assert MAKER in ids


def test_admin_api_lifecycle_and_bad_input(gateway: Gateway) -> None:
    new_id = f"NTRNL-{datetime.now(UTC).microsecond:08d}"
    with https(gateway.pki, gateway.certs["maker"], gateway.url) as client:
        created = client.post(
            "/v1/admin/participants", json={"id": new_id, "name": "Fieldlab", "roles": ["consumer"]}
        )
        assert created.status_code == 201, created.text
        duplicate = client.post(
            "/v1/admin/participants", json={"id": new_id, "name": "Again", "roles": ["consumer"]}
        )
        _problem(duplicate, 409, "participant-exists")
        suspended = client.patch(f"/v1/admin/participants/{new_id}", json={"status": "suspended"})
        assert suspended.json()["status"] == "suspended"
        _problem(client.get("/v1/admin/participants/NTRNL-00000000"), 404, "participant-not-found")
        bad = client.post(
            "/v1/admin/participants", json={"id": "../etc", "name": "x", "roles": ["consumer"]}
        )
        _problem(bad, 422, "validation-error")
        unknown_field = client.patch(f"/v1/admin/participants/{new_id}", json={"admin": True})
        _problem(unknown_field, 422, "validation-error")
        broken = client.post(
            "/v1/admin/participants",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        _problem(broken, 422, "validation-error")
        huge = client.post(
            "/v1/admin/participants",
            content=b"x" * (2 << 20),
            headers={"content-type": "application/json"},
        )
        _problem(huge, 413, "body-too-large")
        _problem(client.get("/v1/nothing-here"), 404, "not-found")


def _curl(
    gateway: Gateway, client: ClientCert | None, *tls: str
) -> subprocess.CompletedProcess[str]:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    args = [curl, "-sS", *tls, "--cacert", str(gateway.pki.bundle), "-w", "\n%{http_code}"]
    if client is not None:
        args += ["--cert", str(client.cert_path), "--key", str(client.key_path)]
    return subprocess.run(
        [*args, f"{gateway.url}/v1/whoami"], capture_output=True, text=True, timeout=30, check=False
    )


def test_curl_as_an_outside_client(gateway: Gateway) -> None:
    ok = _curl(gateway, gateway.certs["university"])
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.rstrip().endswith("200")
    assert UNIVERSITY in ok.stdout
    anonymous = _curl(gateway, None)
    assert anonymous.stdout.rstrip().endswith("401")
    assert "certificate-no-certificate" in anonymous.stdout


# The server refuses these in the handshake and says why with a TLS alert (asyncio alone
# would close silently: curl's "Empty reply from server"; gateway.http.tls_alert). Each with
# how curl -v and openssl s_client print the alert they received.
REFUSALS = [
    ("unknown_ca", "TLS alert, unknown CA", "alert unknown ca"),
    ("expired", "TLS alert, certificate expired", "alert certificate expired"),
]


@pytest.mark.parametrize("tls", [("--tlsv1.3",), ("--tls-max", "1.2")], ids=["tls1.3", "tls1.2"])
def test_curl_reports_the_alert_of_a_refused_certificate(
    gateway: Gateway, tls: tuple[str, ...]
) -> None:
    for name, alert, _ in REFUSALS:
        refused = _curl(gateway, gateway.certs[name], "-v", *tls)
        assert refused.returncode != 0
        assert alert in refused.stderr, refused.stderr
        assert "Empty reply" not in refused.stderr


def test_openssl_handshake_with_and_without_certificate(gateway: Gateway) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    port = gateway.url.rsplit(":", 1)[1]
    request = b"GET /v1/whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    base = [
        openssl,
        "s_client",
        "-connect",
        f"127.0.0.1:{port}",
        "-CAfile",
        str(gateway.pki.bundle),
        "-verify_return_error",
        "-quiet",
    ]
    client = gateway.certs["university"]
    done = subprocess.run(
        [*base, "-cert", str(client.cert_path), "-key", str(client.key_path)],
        input=request,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert b"HTTP/1.1 200" in done.stdout, done.stderr
    for version in ("-tls1_3", "-tls1_2"):
        for name, _, alert in REFUSALS:
            foreign = gateway.certs[name]
            refused = subprocess.run(
                [*base, version, "-cert", str(foreign.cert_path), "-key", str(foreign.key_path)],
                input=request,
                capture_output=True,
                timeout=30,
                check=False,
            )
            assert b"HTTP/1.1" not in refused.stdout
            assert alert.encode() in refused.stderr, (version, refused.stderr)
