"""Every refusal reaches the audit log and answers 4xx problem+json (issue 11).

Over real mTLS on SQLite and PostgreSQL: caller text the log cannot encode (a lone
surrogate), JOSE input nested 5000 deep, and caller text that used to be copied into the
``WWW-Authenticate`` header (non-Latin-1, NUL, CR/LF) each get a refusal and an entry.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

from gateway.client import mtls_context
from gateway.storage.db import Database
from tests.support.databases import database_url
from tests.support.pki import ClientCert, Pki
from tests.support.registry import register_dataset, register_participants
from tests.support.server import gateway_settings, running_gateway

MAKER = "EU.EORI.NL000000001"
UNIVERSITY = "NTRNL-40000001"
LAB = "NTRNL-40000002"
OFFICER = "NTRNL-40000005"
ISSUER = "https://localhost:8443"
RESEARCH = "https://w3id.org/dpv#AcademicResearch"
DEEP = "[" * 5000 + "]" * 5000
# Within the request-line cap (8 KiB), still far beyond the JSON depth limit (32):
DEEP_URL_VALUE = "[" * 1000 + "]" * 1000  # 6 KiB once percent-encoded

POLICY = f"""
uid: urn:sluis:policy:maker:sensors
type: Offer
target: urn:sluis:dataset:sensors
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    assignee: urn:sluis:participant:{UNIVERSITY}
    constraints: [[purpose, isAnyOf, [dpv:AcademicResearch]]]
    data:
      columns: [machine, temp_c]
"""


@dataclass
class World:
    url: str
    pki: Pki
    certs: dict[str, ClientCert]


async def _setup(url: str, home: Path) -> None:
    db = Database(url)
    await db.upgrade()
    await register_participants(
        db,
        [
            (MAKER, "Machine Maker BV", ["provider", "operator"]),
            (UNIVERSITY, "Universiteit Oost", ["consumer"]),
            (LAB, "Fieldlab Noord", ["consumer"]),
            (OFFICER, "Security Office", ["officer"]),
        ],
    )
    data = home / "data"
    data.mkdir()
    (data / "sensors.csv").write_text("machine,temp_c\nX200,61\n")
    files = {"type": "files", "root": str(data), "path": "sensors.csv", "format": "csv"}
    await register_dataset(db, "sensors", provider=MAKER, policy=POLICY, connector=files)
    unscoped = POLICY.replace("dataset:sensors", "dataset:unscoped")  # in no client's scopes
    await register_dataset(db, "unscoped", provider=MAKER, policy=unscoped, connector=files)
    await db.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    home = tmp_path_factory.mktemp(f"refusals-{request.param}")
    pki = Pki(home / "pki")
    certs = {
        "maker": pki.client("Machine Maker BV", MAKER, ["provider", "operator"]),
        "university": pki.client("Universiteit Oost", UNIVERSITY),
        "lab": pki.client("Fieldlab Noord", LAB),
        "officer": pki.client("Security Office", OFFICER, ["officer"]),
    }
    with database_url(request.param, home) as url:
        asyncio.run(_setup(url, home))
        with running_gateway(gateway_settings(pki, home, url)) as base:
            world = World(base, pki, certs)
            lab_key = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))
            lab_key.ensure_kid()
            clients: list[dict[str, Any]] = [
                {
                    "client_id": UNIVERSITY,
                    "auth_method": "tls_client_auth",
                    "scopes": ["dataset:sensors"],
                },
                {
                    "client_id": LAB,
                    "auth_method": "private_key_jwt",
                    "scopes": ["dataset:sensors"],
                    "jwks": {"keys": [lab_key.as_dict(private=False)]},
                },
            ]
            with client(world, "maker") as admin:
                for body in clients:
                    assert admin.post("/v1/admin/clients", json=body).status_code == 201
            with client(world, "university") as uni:
                agreement = uni.post(
                    "/v1/agreements", json={"dataset": "sensors", "purpose": RESEARCH}
                )
                assert agreement.json()["state"] == "active", agreement.text
            yield world


def client(world: World, who: str, token: str | None = None) -> httpx.Client:
    cert = world.certs[who]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    context = mtls_context(world.pki.bundle, cert.cert_path, cert.key_path)
    return httpx.Client(base_url=world.url, verify=context, headers=headers, timeout=30)


def token(world: World) -> str:
    form = {"grant_type": "client_credentials", "client_id": UNIVERSITY}
    with client(world, "university") as uni:
        response = uni.post("/oauth2/token", data=form)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def entries(world: World) -> list[dict[str, Any]]:
    with client(world, "officer") as officer:
        page = officer.get("/v1/audit/entries", params={"limit": 1000})
    assert page.status_code == 200, page.text
    return [e["entry"] for e in page.json()["entries"]]


def problem_code(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return str(response.json()["type"]).removeprefix("urn:sluis:problem:")


def _b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def compact(header: str | dict[str, Any], claims: str | dict[str, Any]) -> str:
    """An unsigned compact JWS with these (JSON or raw) header and claims."""
    parts = [h if isinstance(h, str) else json.dumps(h) for h in (header, claims)]
    return f"{_b64(parts[0])}.{_b64(parts[1])}.{_b64(b'not a signature')}"


def _challenge_is_fixed(response: httpx.Response) -> None:
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.isascii()
    assert "X-Injected" not in challenge
    assert "x-injected" not in response.headers


def test_a_lone_surrogate_in_a_column_name_is_refused_and_recorded(world: World) -> None:
    before = len(entries(world))
    body = b'{"columns": ["machine", "\\ud800bad"]}'
    with client(world, "university", token(world)) as uni:
        response = uni.post(
            "/v1/datasets/sensors/query",
            content=body,
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 400, response.text  # no such column: before the policy
    assert problem_code(response) == "unknown-column"
    denials = [
        e
        for e in entries(world)[before:]
        if e["event"] == "access-decision" and e["decision"]["result"] == "deny"
    ]
    assert len(denials) == 1
    assert any("\\ud800bad" in reason for reason in denials[0]["decision"]["reasons"])
    assert denials[0]["escaped"]


def test_a_column_that_looks_like_a_token_is_refused_and_recorded_redacted(
    world: World,
) -> None:
    before = len(entries(world))
    lookalike = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
    with client(world, "university", token(world)) as uni:
        response = uni.post("/v1/datasets/sensors/query", json={"columns": [lookalike]})
    assert response.status_code == 400, response.text
    denials = [e for e in entries(world)[before:] if e["event"] == "access-decision"]
    assert len(denials) == 1
    assert denials[0]["redacted"]
    assert lookalike not in json.dumps(denials[0])


def test_a_deeply_nested_url_value_is_a_bad_query(world: World) -> None:
    with client(world, "university", token(world)) as uni:
        response = uni.get(
            "/v1/datasets/sensors/data", params={"where": "machine,eq," + DEEP_URL_VALUE}
        )
    assert response.status_code in {200, 400, 403}, response.text
    assert response.status_code != 500


@pytest.mark.parametrize("where", ["session", "token", "introspect"])
def test_jose_input_nested_5000_deep_is_refused(world: World, where: str) -> None:
    deep_token = compact(DEEP, {"iss": ISSUER})
    deep_claims = compact({"alg": "ES256", "typ": "at+jwt"}, DEEP)
    before = len(entries(world))
    if where == "session":
        for bad in (deep_token, deep_claims):
            with client(world, "university", bad) as uni:
                response = uni.get("/v1/session")
            assert response.status_code == 401, response.text
            assert problem_code(response) == "token-malformed"
        expected = 2
    elif where == "token":
        form = {
            "grant_type": "client_credentials",
            "client_id": LAB,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": compact(DEEP, {"iss": LAB}),
        }
        with client(world, "lab") as lab:
            response = lab.post("/oauth2/token", data=form)
        assert response.status_code == 401, response.text
        assert problem_code(response) == "oauth-invalid-client"
        expected = 1
    else:
        with client(world, "university") as uni:
            for bad in (deep_token, deep_claims):
                response = uni.post("/oauth2/introspect", data={"token": bad})
                assert response.status_code == 200, response.text
                assert response.json() == {"active": False}
        expected = 0
    refused = [e for e in entries(world)[before:] if e["event"] == "token-refused"]
    assert len(refused) == expected


@pytest.mark.parametrize(
    "dataset",
    ["%E2%82%AC", "%FF%FE", "a%00b", "a%0D%0AX-Injected:%201", "a%7Fb", "x" * 700],
)
def test_a_dataset_outside_the_scopes_never_reaches_a_header(world: World, dataset: str) -> None:
    before = len(entries(world))
    with client(world, "university", token(world)) as uni:
        response = uni.get(f"/v1/datasets/{dataset}/data")
    # No such dataset: the catalog would tell this participant so, hence 404, not 403.
    assert response.status_code == 404, response.text
    assert problem_code(response) == "dataset-not-found"
    _challenge_is_fixed(response)
    refused = [e for e in entries(world)[before:] if e["event"] == "access-decision"]
    assert len(refused) == 1
    assert refused[0]["decision"]["reasons"][0] == "dataset-not-found"


def test_an_existing_dataset_outside_the_scopes_is_insufficient_scope(world: World) -> None:
    before = len(entries(world))
    with client(world, "university", token(world)) as uni:
        response = uni.get("/v1/datasets/unscoped/data")
    assert response.status_code == 403, response.text
    assert problem_code(response) == "token-insufficient-scope"
    assert response.headers["www-authenticate"] == (
        'Bearer realm="sluis", error="insufficient_scope"'
    )
    refused = [e for e in entries(world)[before:] if e["event"] == "token-refused"]
    assert len(refused) == 1
    assert refused[0]["decision"]["reasons"][0] == "token-insufficient-scope"


@pytest.mark.parametrize("alg", ["HS€", "ES\r\nX-Injected: 1", "ES\x00", "RS\udc80"])
def test_caller_text_in_the_jose_header_never_reaches_a_header(world: World, alg: str) -> None:
    header = json.dumps({"alg": alg, "typ": "at+jwt", "kid": "k"})
    bad = compact(header, {"iss": ISSUER})
    before = len(entries(world))
    with client(world, "university", bad) as uni:
        response = uni.get("/v1/session")
    assert response.status_code == 401, response.text
    assert problem_code(response) == "token-algorithm-not-allowed"
    _challenge_is_fixed(response)
    assert response.headers["www-authenticate"] == 'Bearer realm="sluis", error="invalid_token"'
    refused = [e for e in entries(world)[before:] if e["event"] == "token-refused"]
    assert len(refused) == 1
