"""Behind a TLS-terminating proxy: certificates from XFCC (Envoy) or ssl-client-cert (nginx).

The gateway listens on plain HTTP on loopback with 127.0.0.0/8 as the trusted proxy network,
so this test plays the proxy. A second gateway with mTLS and no trusted proxies shows that
the same headers are stripped and ignored there (see test_mtls).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest

from gateway.participants.schemas import ParticipantCreate
from gateway.participants.service import ParticipantService
from gateway.storage.db import Database
from tests.support.databases import database_url
from tests.support.pki import NOW, SERVER_AUTH, ClientCert, Pki, pem
from tests.support.server import gateway_settings, running_gateway

UNIVERSITY = "NTRNL-41000000"


@dataclass
class ProxiedGateway:
    url: str
    pki: Pki
    good: ClientCert
    revoked: ClientCert
    foreign: ClientCert
    server_eku: ClientCert


async def _register(url: str) -> None:
    db = Database(url)
    await db.upgrade()
    data = ParticipantCreate(id=UNIVERSITY, name="TU Delft", roles=["consumer"])
    await ParticipantService(db).create(data, now=NOW)
    await db.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def proxied(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxiedGateway]:
    home = tmp_path_factory.mktemp(f"proxy-{request.param}")
    pki = Pki(home / "pki")
    good = pki.client("TU Delft", UNIVERSITY)
    revoked = pki.client("TU Delft", UNIVERSITY)
    pki.revoke(revoked)
    foreign = Pki(home / "other").client("TU Delft", UNIVERSITY)
    server_eku = pki.client_with_eku("TU Delft", UNIVERSITY, SERVER_AUTH)
    with database_url(request.param, home) as url:
        asyncio.run(_register(url))
        settings = gateway_settings(
            pki, home, url, plain_http=True, trusted_proxies=["127.0.0.0/8"]
        )
        with running_gateway(settings) as base:
            yield ProxiedGateway(base, pki, good, revoked, foreign, server_eku)


def _xfcc(cert: ClientCert, *, chain: bool = False) -> str:
    value = f'Hash=abc;Cert="{quote(cert.leaf_pem)}"'
    if chain:
        value += f';Chain="{quote(cert.cert_path.read_text())}"'
    return value + ';Subject="O=TU Delft,CN=x";URI=spiffe://proxy'


def _whoami(gw: ProxiedGateway, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(base_url=gw.url, timeout=10) as client:
        return client.get("/v1/whoami", headers=headers)


def _code(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json"
    return str(response.json()["type"]).rsplit(":", 1)[1]


@pytest.mark.parametrize("chain", [False, True])
def test_envoy_xfcc_identifies_the_participant(proxied: ProxiedGateway, chain: bool) -> None:
    response = _whoami(proxied, {"x-forwarded-client-cert": _xfcc(proxied.good, chain=chain)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["participant"]["id"] == UNIVERSITY
    assert body["certificate"]["source"] == "proxy"


def test_nginx_header_identifies_the_participant(proxied: ProxiedGateway) -> None:
    headers = {"ssl-client-cert": quote(proxied.good.leaf_pem), "ssl-client-verify": "SUCCESS"}
    response = _whoami(proxied, headers)
    assert response.status_code == 200, response.text
    assert response.json()["certificate"]["source"] == "proxy"


def test_both_modes_give_the_same_identity(proxied: ProxiedGateway) -> None:
    envoy = _whoami(proxied, {"x-forwarded-client-cert": _xfcc(proxied.good)}).json()
    nginx = _whoami(
        proxied, {"ssl-client-cert": quote(proxied.good.leaf_pem), "ssl-client-verify": "SUCCESS"}
    ).json()
    assert envoy == nginx


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "certificate-no-certificate"),
        (
            {"ssl-client-cert": "x", "ssl-client-verify": "FAILED:certificate has expired"},
            401,
            "certificate-malformed",
        ),
        ({"x-forwarded-client-cert": 'Cert="unterminated'}, 401, "certificate-malformed"),
        ({"x-forwarded-client-cert": "Cert=%2D%2D%2D%2Dgarbage"}, 401, "certificate-malformed"),
        ({"x-forwarded-client-cert": "By=a;Hash=b"}, 401, "certificate-no-certificate"),
    ],
)
def test_bad_forwarded_headers_are_refused(
    proxied: ProxiedGateway, headers: dict[str, str], status: int, code: str
) -> None:
    response = _whoami(proxied, headers)
    assert response.status_code == status
    assert _code(response) == code


def test_several_xfcc_elements_are_refused(proxied: ProxiedGateway) -> None:
    two = _xfcc(proxied.foreign) + "," + _xfcc(proxied.good)
    response = _whoami(proxied, {"x-forwarded-client-cert": two})
    assert response.status_code == 401
    assert _code(response) == "certificate-malformed"


def test_forwarded_certificates_are_verified_again(proxied: ProxiedGateway) -> None:
    revoked = _whoami(proxied, {"x-forwarded-client-cert": _xfcc(proxied.revoked)})
    assert _code(revoked) == "certificate-revoked"
    foreign = _whoami(proxied, {"x-forwarded-client-cert": _xfcc(proxied.foreign)})
    assert _code(foreign) == "certificate-untrusted-issuer"
    eku = _whoami(proxied, {"x-forwarded-client-cert": _xfcc(proxied.server_eku)})
    assert _code(eku) == "certificate-wrong-extended-key-usage"
    ca_as_client = _whoami(
        proxied,
        {
            "ssl-client-cert": quote(pem(proxied.pki.issuing).decode()),
            "ssl-client-verify": "SUCCESS",
        },
    )
    assert ca_as_client.status_code == 401
