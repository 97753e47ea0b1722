"""The OAuth2 authorization and resource server over real mTLS, on SQLite and PostgreSQL.

A real OAuth2 client (authlib's httpx client) gets tokens with each client authentication
method and calls a protected endpoint; every case of the issue's "Bad input" list is here.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from certs import thumbprint_sha256
from gateway.auth import tokens
from gateway.auth.jose import import_private, signing_alg
from gateway.client import FapiPrivateKeyJWT, IShareClientAssertion, mtls_context
from gateway.settings import load_signing_key
from gateway.storage.db import Database
from tests.support.databases import database_url
from tests.support.ishare import IShareCA, IShareParty
from tests.support.pki import ClientCert, Pki
from tests.support.registry import register_participants
from tests.support.server import gateway_settings, running_gateway

ISSUER = "https://localhost:8443"
MAKER = "EU.EORI.NL000000001"
UNIVERSITY = "NTRNL-40000001"
LAB = "NTRNL-40000002"
ISHARE_PARTY = "EU.EORI.NL000000002"
SERVER_PARTY = "EU.EORI.NL000000099"
STRANGER = "NTRNL-40000009"
SCOPES = ["dataset:maintenance", "dataset:sensors"]


@dataclass
class World:
    url: str
    pki: Pki
    home: Path
    certs: dict[str, ClientCert]
    lab_keys: dict[str, ECKey | OKPKey | RSAKey]
    ishare: IShareParty
    impostor: IShareParty
    ishare_ca: IShareCA


async def _register(url: str) -> None:
    db = Database(url)
    await db.upgrade()
    await register_participants(
        db,
        [
            (MAKER, "Machine Maker BV", ["provider", "operator"]),
            (UNIVERSITY, "Universiteit Oost", ["consumer"]),
            (LAB, "Fieldlab Noord", ["consumer"]),
            (ISHARE_PARTY, "iSHARE Lab", ["consumer"]),
            (STRANGER, "No Client BV", ["consumer"]),
        ],
    )
    await db.dispose()


def _lab_keys() -> dict[str, ECKey | OKPKey | RSAKey]:
    keys: dict[str, ECKey | OKPKey | RSAKey] = {
        "ES256": ECKey.import_key(ec.generate_private_key(ec.SECP256R1())),
        "PS256": RSAKey.import_key(rsa.generate_private_key(65537, 2048)),
        "Ed25519": OKPKey.import_key(ed25519.Ed25519PrivateKey.generate()),
    }
    for key in keys.values():
        key.ensure_kid()
    return keys


def _register_clients(world: World) -> None:
    jwks = {"keys": [k.as_dict(private=False) for k in world.lab_keys.values()]}
    bodies: list[dict[str, Any]] = [
        {"client_id": UNIVERSITY, "auth_method": "tls_client_auth", "scopes": SCOPES},
        {"client_id": LAB, "auth_method": "private_key_jwt", "scopes": SCOPES, "jwks": jwks},
        {"client_id": ISHARE_PARTY, "auth_method": "ishare", "profile": "ishare", "scopes": SCOPES},
    ]
    with _mtls(world, "maker") as client:
        for body in bodies:
            response = client.post("/v1/admin/clients", json=body)
            assert response.status_code == 201, response.text


def _server_party(ca: IShareCA, home: Path) -> dict[str, Path]:
    """The gateway's own iSHARE certificate and key (for /capabilities)."""
    party = ca.party(SERVER_PARTY)
    key = home / "ishare-key.pem"
    key.write_bytes(party.key.as_pem(private=True))
    chain = home / "ishare-chain.pem"
    chain.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in party.chain))
    return {"ishare_signing_key": key, "ishare_certificate": chain}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    home = tmp_path_factory.mktemp(f"oauth-{request.param}")
    pki = Pki(home / "pki")
    certs = {
        "maker": pki.client("Machine Maker BV", MAKER, ["provider", "operator"]),
        "university": pki.client("Universiteit Oost", UNIVERSITY),
        "lab": pki.client("Fieldlab Noord", LAB),
        "ishare": pki.client("iSHARE Lab", ISHARE_PARTY),
        "stranger": pki.client("No Client BV", STRANGER),
    }
    ca = IShareCA()
    crls = home / "crls.pem"
    crls.write_bytes(pki.crl_path.read_bytes() + ca.crl_pem())
    settings = gateway_settings(
        pki,
        home,
        "",
        tls_crl=crls,
        ishare_party_id=SERVER_PARTY,
        ishare_trust_bundle=ca.bundle(home / "ishare-ca.pem"),
        **_server_party(ca, home),
    )
    with database_url(request.param, home) as url:
        asyncio.run(_register(url))
        settings = settings.model_copy(update={"database_url": url})
        with running_gateway(settings) as base:
            world = World(
                base,
                pki,
                home,
                certs,
                _lab_keys(),
                ca.party(ISHARE_PARTY),
                IShareCA("Impostor CA").party(ISHARE_PARTY),
                ca,
            )
            _register_clients(world)
            yield world


def _mtls(world: World, who: str) -> httpx.Client:
    cert = world.certs[who]
    context = mtls_context(world.pki.bundle, cert.cert_path, cert.key_path)
    return httpx.Client(base_url=world.url, verify=context, timeout=10)


def _oauth(world: World, who: str, client_id: str, auth: object = "none") -> OAuth2Client:
    cert = world.certs[who]
    context = mtls_context(world.pki.bundle, cert.cert_path, cert.key_path)
    return OAuth2Client(
        client_id=client_id,
        token_endpoint_auth_method=auth,
        verify=context,
        timeout=10,
    )


def _claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]


def _code(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return str(response.json()["type"]).removeprefix("urn:sluis:problem:")


def _token(world: World, who: str = "university", client_id: str = UNIVERSITY) -> str:
    with _oauth(world, who, client_id) as client:
        token = client.fetch_token(
            f"{world.url}/oauth2/token", grant_type="client_credentials", scope="dataset:sensors"
        )
    return str(token["access_token"])


def _session(world: World, who: str, token: str, **kwargs: Any) -> httpx.Response:
    with _mtls(world, who) as client:
        return client.get("/v1/session", headers={"Authorization": f"Bearer {token}"}, **kwargs)


# --- the three client authentication methods, with a real OAuth2 client --------------------


def test_tls_client_auth(world: World) -> None:
    with _oauth(world, "university", UNIVERSITY) as client:
        token = client.fetch_token(
            f"{world.url}/oauth2/token", grant_type="client_credentials", scope="dataset:sensors"
        )
        session = client.get(f"{world.url}/v1/session")
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 300
    claims = _claims(token["access_token"])
    assert claims["cnf"] == {"x5t#S256": session.json()["certificate_thumbprint"]}
    assert claims["aud"] == ISSUER
    assert claims["client_id"] == UNIVERSITY
    assert session.status_code == 200
    assert session.json()["scopes"] == ["dataset:sensors"]


@pytest.mark.parametrize("alg", ["ES256", "PS256", "Ed25519"])
def test_private_key_jwt(world: World, alg: str) -> None:
    auth = FapiPrivateKeyJWT(ISSUER, world.lab_keys[alg])
    with _oauth(world, "lab", LAB, auth) as client:
        token = client.fetch_token(f"{world.url}/oauth2/token", grant_type="client_credentials")
        session = client.get(f"{world.url}/v1/session")
    assert session.status_code == 200, session.text
    assert session.json()["scopes"] == SCOPES  # no scope asked: all the client may have
    assert _claims(token["access_token"])["sub"] == LAB


def test_ishare(world: World) -> None:
    auth = IShareClientAssertion(SERVER_PARTY, world.ishare.key, world.ishare.chain)
    with _oauth(world, "ishare", ISHARE_PARTY, auth) as client:
        client.fetch_token(
            f"{world.url}/oauth2/token", grant_type="client_credentials", scope="dataset:sensors"
        )
        session = client.get(f"{world.url}/v1/session")
    assert session.status_code == 200, session.text
    assert session.json()["client_id"] == ISHARE_PARTY


def test_ishare_connect_token_maps_the_ishare_scope(world: World) -> None:
    auth = IShareClientAssertion(SERVER_PARTY, world.ishare.key, world.ishare.chain)
    with _oauth(world, "ishare", ISHARE_PARTY, auth) as client:
        token = client.fetch_token(
            f"{world.url}/connect/token", grant_type="client_credentials", scope="iSHARE"
        )
        session = client.get(f"{world.url}/v1/session")
    assert session.status_code == 200, session.text
    assert session.json()["scopes"] == SCOPES  # iSHARE: the client's registered scopes
    assert _claims(token["access_token"])["client_id"] == ISHARE_PARTY


def _b64json(part: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]


def test_ishare_capabilities_are_signed_with_the_party_certificate(world: World) -> None:
    context = ssl.create_default_context(cafile=str(world.pki.bundle))  # no client certificate
    with httpx.Client(base_url=world.url, verify=context) as client:  # open, as iSHARE has it
        response = client.get("/capabilities")
    assert response.status_code == 200, response.text
    token = response.json()["capabilities_token"]
    signed, _, signature = token.rpartition(".")
    header = _b64json(signed.split(".")[0])
    claims = _b64json(signed.split(".")[1])
    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    public = leaf.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    public.verify(raw, signed.encode(), padding.PKCS1v15(), hashes.SHA256())  # RS256
    assert header["alg"] == "RS256"
    assert claims["iss"] == claims["sub"] == SERVER_PARTY
    assert claims["exp"] - claims["iat"] == 30
    urls = [
        f["url"]
        for f in claims["capabilities_info"]["supported_versions"][0]["supported_features"][0][
            "public"
        ]
    ]
    assert f"{ISSUER}/connect/token" in urls


def test_metadata_and_jwks(world: World) -> None:
    with _mtls(world, "university") as client:
        metadata = client.get("/.well-known/oauth-authorization-server").json()
        jwks = client.get("/oauth2/jwks").json()
    assert metadata["issuer"] == ISSUER
    assert metadata["tls_client_certificate_bound_access_tokens"] is True
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {
        "tls_client_auth",
        "private_key_jwt",
        "ishare",
    }
    header = json.loads(base64.urlsafe_b64decode(_token(world).split(".")[0] + "=="))
    assert header["typ"] == "at+jwt"
    assert header["kid"] in {key["kid"] for key in jwks["keys"]}
    assert all("d" not in key for key in jwks["keys"])


# --- bad input at the token endpoint --------------------------------------------------------


def _post_token(
    world: World, who: str, form: dict[str, str] | bytes, **headers: str
) -> httpx.Response:
    with _mtls(world, who) as client:
        if isinstance(form, bytes):
            return client.post("/oauth2/token", content=form, headers=headers)
        return client.post("/oauth2/token", data=form, headers=headers)


def _assertion(world: World, **overrides: Any) -> str:
    key = world.lab_keys["ES256"]
    now = int(datetime.now(UTC).timestamp())
    claims = {"iss": LAB, "sub": LAB, "aud": ISSUER, "iat": now, "exp": now + 60, "jti": f"j{now}"}
    claims.update(overrides)
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)


def _jwt_form(assertion: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }


def test_replayed_client_assertion(world: World) -> None:
    form = _jwt_form(_assertion(world, jti="replay-me"))
    assert _post_token(world, "lab", form).status_code == 200
    replay = _post_token(world, "lab", form)
    assert replay.status_code == 401
    assert _code(replay) == "oauth-invalid-client"
    assert replay.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": int(datetime.now(UTC).timestamp()) + 3600},  # long-lived
        {"exp": int(datetime.now(UTC).timestamp()) - 120},  # expired
        {"aud": f"{ISSUER}/oauth2/token"},  # addressed to the endpoint, not the issuer
        {"aud": [ISSUER, "https://other"]},  # more than the issuer
        {"iss": UNIVERSITY},
        {"sub": UNIVERSITY},
        {"jti": ""},
    ],
    ids=["long-lived", "expired", "aud-endpoint", "aud-extra", "iss", "sub", "no-jti"],
)
def test_bad_client_assertions(world: World, overrides: dict[str, Any]) -> None:
    response = _post_token(world, "lab", _jwt_form(_assertion(world, **overrides)))
    assert response.status_code == 401, response.text
    assert _code(response) == "oauth-invalid-client"


def test_ishare_chain_to_an_untrusted_root(world: World) -> None:
    auth = IShareClientAssertion(SERVER_PARTY, world.impostor.key, world.impostor.chain)
    response = _post_token(
        world,
        "ishare",
        _jwt_form(auth.sign(type("Auth", (), {"client_id": ISHARE_PARTY})(), "")),
    )
    assert response.status_code == 401
    assert _code(response) == "oauth-invalid-client"
    assert "no trusted issuer" in response.json()["error_description"]


@pytest.mark.parametrize(
    ("who", "form", "status", "code"),
    [
        ("university", {"grant_type": "client_credentials", "client_id": UNIVERSITY,
                        "scope": "dataset:secret"}, 400, "oauth-invalid-scope"),
        ("university", {"grant_type": "client_credentials", "client_id": UNIVERSITY,
                        "resource": "https://elsewhere"}, 400, "oauth-invalid-target"),
        ("university", {"grant_type": "password", "client_id": UNIVERSITY}, 400,
         "oauth-unsupported-grant-type"),
        ("university", {"grant_type": "client_credentials", "client_id": LAB}, 401,
         "oauth-invalid-client"),
        ("stranger", {"grant_type": "client_credentials", "client_id": STRANGER}, 401,
         "oauth-invalid-client"),
        ("university", {"grant_type": "client_credentials", "client_id": UNIVERSITY,
                        "client_secret": "hunter2"}, 401, "oauth-invalid-client"),
    ],
    ids=["scope", "resource", "grant", "other-client-id", "no-client", "secret"],
)  # fmt: skip
def test_token_endpoint_refusals(
    world: World, who: str, form: dict[str, str], status: int, code: str
) -> None:
    response = _post_token(world, who, form)
    assert response.status_code == status, response.text
    assert _code(response) == code
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"grant_type=client_credentials&grant_type=client_credentials", None),
        (b"grant_type=client_credentials&client_id=%ZZ", None),
        (b"grant_type=client_credentials&client_id=\xff\xfe", None),
        (b'{"grant_type": "client_credentials"}', "application/json"),
        (b"&&&===", None),
    ],
    ids=["repeated", "bad-percent", "not-utf8", "json", "garbage"],
)
def test_malformed_form_bodies(world: World, body: bytes, content_type: str | None) -> None:
    headers = {"content-type": content_type or "application/x-www-form-urlencoded"}
    response = _post_token(world, "university", body, **headers)
    assert response.status_code == 400, response.text
    assert _code(response) == "oauth-invalid-request"


def test_token_endpoint_needs_the_certificate(world: World) -> None:
    context = ssl.create_default_context(cafile=str(world.pki.bundle))
    with httpx.Client(base_url=world.url, verify=context) as client:
        response = client.post("/oauth2/token", data={"grant_type": "client_credentials"})
    assert response.status_code == 401
    assert _code(response) == "certificate-no-certificate"


# --- bad input at the resource server -------------------------------------------------------


def _forge(world: World, **overrides: Any) -> str:
    """A token signed with the gateway's real key, with chosen claims."""
    key = load_signing_key(gateway_settings(world.pki, world.home, ""))
    thumb = world.certs["university"]
    values: dict[str, Any] = {
        "key": import_private(key),
        "alg": signing_alg(key),
        "issuer": ISSUER,
        "client_id": UNIVERSITY,
        "audience": ISSUER,
        "scopes": frozenset({"dataset:sensors"}),
        "thumbprint": thumbprint_sha256(thumb.cert),
        "jti": f"forged-{datetime.now(UTC).timestamp()}",
        "now": datetime.now(UTC),
        "lifetime": timedelta(minutes=5),
    }
    values.update(overrides)
    token, _ = tokens.mint(**values)
    return token


def _header_swapped(token: str, **header: Any) -> str:
    head, body, signature = token.split(".")
    values = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    values.update(header)
    encoded = base64.urlsafe_b64encode(json.dumps(values).encode()).rstrip(b"=").decode()
    return ".".join([encoded, body, signature])


def _alg_none(world: World) -> str:
    _, body, _ = _forge(world).split(".")
    none = base64.urlsafe_b64encode(b'{"typ":"at+jwt","alg":"none"}').rstrip(b"=").decode()
    return f"{none}.{body}."


def _hs256_with_public_key(world: World) -> str:
    with _mtls(world, "university") as client:
        public = client.get("/oauth2/jwks").json()["keys"][0]
    secret = OctKey.import_key(json.dumps(public).encode())
    claims = _claims(_forge(world))
    return jwt.encode({"typ": "at+jwt", "alg": "HS256", "kid": public["kid"]}, claims, secret)


BAD_TOKENS = {
    "alg-none": (_alg_none, "token-algorithm-not-allowed"),
    "hs256-public-key": (_hs256_with_public_key, "token-algorithm-not-allowed"),
    "expired": (
        lambda w: _forge(w, now=datetime.now(UTC) - timedelta(minutes=10)),
        "token-expired",
    ),
    "wrong-aud": (lambda w: _forge(w, audience="https://elsewhere"), "token-wrong-audience"),
    "wrong-iss": (lambda w: _forge(w, issuer="https://evil.example"), "token-unknown-issuer"),
    "typ-jwt": (lambda w: _header_swapped(_forge(w), typ="JWT"), "token-wrong-type"),
    "other-client": (lambda w: _forge(w, client_id=LAB), "token-wrong-client"),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_bad_access_tokens(world: World, case: str) -> None:
    make, code = BAD_TOKENS[case]
    response = _session(world, "university", make(world))
    assert response.status_code == 401, response.text
    assert _code(response) == code
    assert response.json()["error"] == "invalid_token"
    assert response.headers["www-authenticate"].startswith(
        'Bearer realm="sluis", error="invalid_token"'
    )


def test_a_token_bound_to_another_certificate(world: World) -> None:
    response = _session(world, "lab", _token(world))
    assert response.status_code == 401
    assert _code(response) == "token-wrong-certificate"


def test_token_in_the_query_string(world: World) -> None:
    token = _token(world)
    with _mtls(world, "university") as client:
        response = client.get("/v1/session", params={"access_token": token})
    assert response.status_code == 400
    assert _code(response) == "token-in-query"
    assert response.json()["error"] == "invalid_request"


def test_no_token(world: World) -> None:
    with _mtls(world, "university") as client:
        response = client.get("/v1/session")
        basic = client.get("/v1/session", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="sluis"'
    assert _code(basic) == "token-malformed"


def test_revoked_token(world: World) -> None:
    token = _token(world)
    assert _session(world, "university", token).status_code == 200
    with _mtls(world, "lab") as client:  # someone else's revocation does nothing
        assert client.post("/oauth2/revoke", data={"token": token}).status_code == 200
    assert _session(world, "university", token).status_code == 200
    with _mtls(world, "university") as client:
        assert client.post("/oauth2/revoke", data={"token": token}).status_code == 200
        assert client.post("/oauth2/revoke", data={"token": "garbage"}).status_code == 200
    response = _session(world, "university", token)
    assert response.status_code == 401
    assert _code(response) == "token-revoked"


def test_introspection(world: World) -> None:
    token = _token(world)
    with _mtls(world, "university") as client:
        own = client.post("/oauth2/introspect", data={"token": token}).json()
    with _mtls(world, "lab") as client:
        other = client.post("/oauth2/introspect", data={"token": token}).json()
    with _mtls(world, "maker") as client:
        operator = client.post("/oauth2/introspect", data={"token": token}).json()
        missing = client.post("/oauth2/introspect", data={})
    assert own["active"] is True
    assert own["cnf"]["x5t#S256"] == thumbprint_sha256(world.certs["university"].cert)
    assert own["client_id"] == UNIVERSITY
    assert other == {"active": False}
    assert operator["active"] is True
    assert _code(missing) == "oauth-invalid-request"


def test_disabled_client(world: World) -> None:
    with _mtls(world, "maker") as admin:
        assert (
            admin.patch(f"/v1/admin/clients/{LAB}", json={"status": "disabled"}).status_code == 200
        )
        try:
            response = _post_token(world, "lab", _jwt_form(_assertion(world, jti="disabled")))
        finally:
            admin.patch(f"/v1/admin/clients/{LAB}", json={"status": "active"})
    assert response.status_code == 401
    assert "disabled" in response.json()["error_description"]


def test_client_admin_api_bad_input(world: World) -> None:
    with _mtls(world, "maker") as admin:
        duplicate = admin.post(
            "/v1/admin/clients", json={"client_id": UNIVERSITY, "auth_method": "tls_client_auth"}
        )
        unknown = admin.post(
            "/v1/admin/clients",
            json={"client_id": "NTRNL-49999999", "auth_method": "tls_client_auth"},
        )
        no_keys = admin.post(
            "/v1/admin/clients", json={"client_id": STRANGER, "auth_method": "private_key_jwt"}
        )
        private = admin.post(
            "/v1/admin/clients",
            json={
                "client_id": STRANGER,
                "auth_method": "private_key_jwt",
                "jwks": {"keys": [world.lab_keys["ES256"].as_dict(private=True)]},
            },
        )
    with _mtls(world, "university") as consumer:
        forbidden = consumer.get("/v1/admin/clients")
    assert _code(duplicate) == "client-exists"
    assert _code(unknown) == "participant-not-found"
    assert _code(no_keys) == "validation-error"
    assert _code(private) == "validation-error"
    assert _code(forbidden) == "role-required"


# --- the resource server and introspection agree, from the next request on ----------------


def _introspect(world: World, token: str) -> dict[str, Any]:
    with _mtls(world, "maker") as operator:
        response = operator.post("/oauth2/introspect", data={"token": token})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _patch(world: World, path: str, body: dict[str, str]) -> None:
    with _mtls(world, "maker") as admin:
        assert admin.patch(path, json=body).status_code == 200


def test_a_disabled_clients_tokens_stop_working(world: World) -> None:
    token = _token(world)
    assert _introspect(world, token)["active"] is True
    _patch(world, f"/v1/admin/clients/{UNIVERSITY}", {"status": "disabled"})
    try:
        response = _session(world, "university", token)
        introspected = _introspect(world, token)
    finally:
        _patch(world, f"/v1/admin/clients/{UNIVERSITY}", {"status": "active"})
    assert response.status_code == 401, response.text
    assert _code(response) == "token-client-disabled"
    assert introspected == {"active": False}
    assert _session(world, "university", token).status_code == 200  # enabled again


def test_a_suspended_participants_tokens_stop_working(world: World) -> None:
    token = _token(world)
    _patch(world, f"/v1/admin/participants/{UNIVERSITY}", {"status": "suspended"})
    try:
        response = _session(world, "university", token)
        introspected = _introspect(world, token)
    finally:
        _patch(world, f"/v1/admin/participants/{UNIVERSITY}", {"status": "active"})
    assert response.status_code == 403, response.text
    assert _code(response) == "participant-suspended"
    assert introspected == {"active": False}
    assert _introspect(world, token)["active"] is True


def test_tokens_bound_to_a_revoked_certificate_stop_working(world: World) -> None:
    world.certs["university-2"] = world.pki.client("Universiteit Oost", UNIVERSITY)
    token = _token(world, "university-2")
    assert _introspect(world, token)["active"] is True
    world.pki.revoke(world.certs["university-2"])
    (world.home / "crls.pem").write_bytes(
        world.pki.crl_path.read_bytes() + world.ishare_ca.crl_pem()
    )
    response = _session(world, "university-2", token)
    assert response.status_code == 401, response.text
    assert _code(response) == "certificate-revoked"
    assert _introspect(world, token) == {"active": False}


def test_metadata_and_jwks_are_public_and_nothing_else_is(world: World) -> None:
    context = ssl.create_default_context(cafile=str(world.pki.bundle))
    with httpx.Client(base_url=world.url, verify=context) as anonymous:
        metadata = anonymous.get("/.well-known/oauth-authorization-server")
        jwks = anonymous.get("/oauth2/jwks")
        refused = [
            anonymous.post("/oauth2/token", data={"grant_type": "client_credentials"}),
            anonymous.post("/oauth2/introspect", data={"token": "x"}),
            anonymous.post("/oauth2/revoke", data={"token": "x"}),
            anonymous.get("/v1/session"),
            anonymous.get("/v1/admin/clients"),
        ]
    assert metadata.status_code == 200
    assert metadata.json()["jwks_uri"] == f"{ISSUER}/oauth2/jwks"
    assert jwks.status_code == 200
    assert all("d" not in key for key in jwks.json()["keys"])
    assert [response.status_code for response in refused] == [401] * len(refused)
    assert {_code(response) for response in refused} == {"certificate-no-certificate"}
