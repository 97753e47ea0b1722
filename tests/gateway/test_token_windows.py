"""Replay and revocation records outlive acceptance, at the exact boundary (injected clock).

The authorization server runs in-process over a real database (SQLite and PostgreSQL), with
``now`` passed in: a spent client assertion ``jti`` and a revoked token ``jti`` are still
known 1 µs before the credential stops being accepted, and the credential is refused from
that instant on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from joserfc import jwt
from joserfc.jwk import ECKey

from certs import CertificateRejected, identity_of
from gateway.audit.log import AuditLog
from gateway.auth import windows
from gateway.auth.tokens import TokenRejected
from gateway.oauth.clients import ClientService
from gateway.oauth.external import ExternalIssuers
from gateway.oauth.holders import verified_holder
from gateway.oauth.keyring import KeyRing
from gateway.oauth.schemas import ClientCreate
from gateway.oauth.server import IssuerConfig, SluisAuthorizationServer
from gateway.oauth.service import OAuthService
from gateway.participants.service import AuthenticatedParticipant, ParticipantService
from gateway.storage.db import Database
from gateway.trust import TrustMaterial
from tests.audit.logs import ORIGIN, SIGNER
from tests.support.databases import database_url
from tests.support.pki import NOW, Pki
from tests.support.registry import register_participants

ISSUER = "https://gateway.example"
LAB = "NTRNL-40000002"
MICROSECOND = timedelta(microseconds=1)
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
T0 = NOW.replace(microsecond=0)


@dataclass
class World:
    oauth: OAuthService
    caller: AuthenticatedParticipant
    key: ECKey
    trust: TrustMaterial
    chain: list[x509.Certificate]


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as value:
        yield value


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("windows-pki"))


@asynccontextmanager
async def _world(url: str, pki: Pki, cert: x509.Certificate | None = None) -> AsyncIterator[World]:
    db = Database(url)
    await db.upgrade()
    await register_participants(db, [(LAB, "Fieldlab Noord", ["consumer"])])
    key = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))
    key.ensure_kid()
    clients = ClientService(db)
    jwks = {"keys": [key.as_dict(private=False)]}
    data = ClientCreate(
        client_id=LAB, auth_method="private_key_jwt", scopes=["dataset:sensors"], jwks=jwks
    )
    await clients.create(data, now=T0)
    config = IssuerConfig(ISSUER, (ISSUER,), timedelta(minutes=5), None, None)
    audit = AuditLog(db, SIGNER, ORIGIN)
    keyring = KeyRing(db, ed25519.Ed25519PrivateKey.generate(), config.lifetime, audit)
    await keyring.start(T0)
    external = ExternalIssuers.from_settings([])
    oauth = OAuthService(
        db, SluisAuthorizationServer(config), keyring, clients, external, audit=audit
    )
    cert = cert or pki.client("Fieldlab Noord", LAB).cert
    caller = await ParticipantService(db).authenticate(identity_of(cert), "tls")
    try:
        yield World(oauth, caller, key, TrustMaterial(pki.bundle, pki.crl_path), [cert])
    finally:
        await audit.close()
        await db.dispose()


def _assertion(world: World, jti: str, *, iat: int, exp: int) -> dict[str, str]:
    claims = {"iss": LAB, "sub": LAB, "aud": ISSUER, "iat": iat, "exp": exp, "jti": jti}
    token = jwt.encode({"alg": "ES256", "kid": world.key.kid}, claims, world.key)
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": token,
    }


Answer = tuple[int, dict[str, object]]


async def _token(world: World, form: dict[str, str], now: datetime) -> Answer:
    status, body, _ = await world.oauth.token(world.caller, form, {}, [], now, chain=world.chain)
    return status, body


async def _fresh_token(world: World, jti: str, now: datetime) -> str:
    moment = int(now.timestamp())
    status, body = await _token(world, _assertion(world, jti, iat=moment, exp=moment + 60), now)
    assert status == 200, body
    return str(body["access_token"])


def _run(url: str, pki: Pki, scenario: Callable[[World], Awaitable[None]]) -> None:
    async def main() -> None:
        async with _world(url, pki) as world:
            await scenario(world)

    asyncio.run(main())


def test_a_spent_assertion_is_remembered_until_it_expires_with_leeway(url: str, pki: Pki) -> None:
    _run(url, pki, _spent_assertion)


def test_a_revocation_is_remembered_until_the_token_expires_with_leeway(url: str, pki: Pki) -> None:
    _run(url, pki, _revocation)


def test_an_unrevoked_token_is_accepted_until_the_same_boundary(url: str, pki: Pki) -> None:
    _run(url, pki, _unrevoked)


async def _spent_assertion(world: World) -> None:
    start = int(T0.timestamp())
    form = _assertion(world, "once", iat=start, exp=start + 60)
    assert (await _token(world, form, T0))[0] == 200
    last = windows.accepted_until(start + 60, windows.ASSERTION_LEEWAY) - MICROSECOND
    status, body = await _token(world, form, last)  # the replay also runs the purge
    assert status == 401
    assert body["error_description"] == "the client assertion was already used"
    status, body = await _token(world, form, last + MICROSECOND)
    assert status == 401
    assert body["error_description"] == "the assertion has expired"


async def _revocation(world: World) -> None:
    token = await _fresh_token(world, "first", T0)
    assert (await world.oauth.introspect(token, world.caller, world.trust, T0))["active"] is True
    await world.oauth.revoke(token, world.caller, T0)
    exp = int(T0.timestamp()) + 300
    last = windows.accepted_until(exp, windows.TOKEN_LEEWAY) - MICROSECOND
    other = await _fresh_token(world, "second", last - timedelta(seconds=10))
    await world.oauth.revoke(other, world.caller, last)  # runs the purge at the last instant
    with pytest.raises(TokenRejected) as refused:
        await world.oauth.check_bearer(token, world.caller, last)
    assert refused.value.code == "revoked"
    assert (await world.oauth.introspect(token, world.caller, world.trust, last)) == {
        "active": False
    }
    with pytest.raises(TokenRejected) as expired:
        await world.oauth.check_bearer(token, world.caller, last + MICROSECOND)
    assert expired.value.code == "expired"


async def _unrevoked(world: World) -> None:
    token = await _fresh_token(world, "plain", T0)
    last = windows.accepted_until(int(T0.timestamp()) + 300, windows.TOKEN_LEEWAY) - MICROSECOND
    assert (await world.oauth.check_bearer(token, world.caller, last)).claims.jti
    with pytest.raises(TokenRejected):
        await world.oauth.check_bearer(token, world.caller, last + MICROSECOND)


def test_a_retired_key_is_trusted_exactly_until_its_last_token_expires(url: str, pki: Pki) -> None:
    async def main() -> None:
        async with _world(url, pki) as world:
            old = world.oauth.keyring
            new = KeyRing(old.db, ed25519.Ed25519PrivateKey.generate(), old.lifetime, old.audit)
            await new.start(T0)  # retires the old key at T0
            end = windows.key_published_until(T0, old.lifetime)
            assert end == T0 + timedelta(seconds=300 + windows.TOKEN_LEEWAY)
            keys = await new.verification_keys(old.kid, end - MICROSECOND)
            assert old.kid in {key.kid for key in keys.keys}
            keys = await new.verification_keys(old.kid, end)
            assert {key.kid for key in keys.keys} == {new.kid}
            assert [jwk["kid"] for jwk in new.jwks()["keys"]] == [new.kid]  # type: ignore[index]

    asyncio.run(main())


async def _resource_server_accepts(world: World, token: str, now: datetime) -> bool:
    """The resource server's verdict at ``now``: the caller check, then the token check."""
    try:
        holder = await verified_holder(
            world.oauth.participants, world.chain, world.trust, "tls", now
        )
        await world.oauth.check_bearer(token, holder, now)
    except (CertificateRejected, TokenRejected):
        return False
    return True


def test_introspection_and_the_resource_server_agree_at_the_certificates_expiry(
    url: str, pki: Pki
) -> None:
    cert = pki.client("Fieldlab Noord", LAB, now=T0 - timedelta(days=1, seconds=-100), days=1)
    end = cert.cert.not_valid_after_utc
    assert T0 < end < T0 + timedelta(seconds=300)  # the token outlives its certificate

    async def main() -> None:
        async with _world(url, pki, cert.cert) as world:
            token = await _fresh_token(world, "outlived", T0)
            for moment, usable in ((end, True), (end + MICROSECOND, False)):
                seen = await world.oauth.introspect(token, world.caller, world.trust, moment)
                assert seen["active"] is usable
                assert await _resource_server_accepts(world, token, moment) is usable

    asyncio.run(main())
