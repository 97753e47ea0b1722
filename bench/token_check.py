"""The cost of the resource-server check per request, against bare signature verification.

Cases, each timed call by call (µs, median and p99):

* ``joserfc signature only`` (baseline): verify the JWS signature with
  ``joserfc.jwt.decode`` (``jose.decode``), nothing else;
* ``tokens.check``: the full pure check (typ, alg allow-list, issuer, key, signature,
  audience, times, certificate binding); since issue 10 it reads the token once and
  verifies with joserfc's registry and algorithm on those segments
  (``jose.verify_signature``), not through ``jwt.decode``, so it can come within a few µs
  of the baseline;
* ``revocation + client lookup in SQLite`` (the read path before issue 10): the two
  SELECTs ``check_bearer`` made on every request, alone, in the same run;
* ``check_bearer, token never seen``: ``tokens.check`` plus the client match and the
  revocation check in the in-memory registry (gateway/registry.py), each call with a token
  this process has not verified before (minted beforehand, one per call): what a protected
  request pays after mTLS the first time a token is used. Goal (issue 10): median <= 150 µs.
* ``check_bearer, new connection, token seen``: the same token on every call, without a
  connection memo: a client opening a new TLS connection per request with a token the
  process verified before (tokens.VerifiedTokens); every step but the signature runs.
* ``check_bearer, kept-alive connection``: the same on a connection whose last request
  carried the same token: its signature is not verified again (tokens.VerifiedMemo), every
  other check runs.

for ES256 and Ed25519 signing keys. Run with ``python -m bench.token_check``.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from rich.console import Console
from rich.table import Table

from certs import CertificateIdentity
from gateway.audit.keys import Signer
from gateway.audit.log import AuditLog
from gateway.auth import tokens
from gateway.auth.jose import OWN_TOKEN_ALGS, decode, import_private, signing_alg
from gateway.oauth import repository
from gateway.oauth.clients import ClientService
from gateway.oauth.external import ExternalIssuers
from gateway.oauth.keyring import KeyRing
from gateway.oauth.schemas import ClientCreate
from gateway.oauth.server import IssuerConfig, SluisAuthorizationServer
from gateway.oauth.service import OAuthService
from gateway.participants.schemas import Participant, ParticipantCreate
from gateway.participants.service import AuthenticatedParticipant, ParticipantService
from gateway.settings import SigningKey
from gateway.storage.db import Database

ISSUER = "https://localhost:8443"
ORIGIN = "localhost/bench"
CALLS = 3000
WARMUP = 200
THUMB = "x" * 43
CLIENT = "NTRNL-40000001"


def _stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2] * 1e6, ordered[int(0.99 * len(ordered))] * 1e6


def _time(action: Callable[[], object]) -> tuple[float, float]:
    for _ in range(WARMUP):
        action()
    samples = []
    for _ in range(CALLS):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return _stats(samples)


async def _time_async(action: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    for _ in range(WARMUP):
        await action()
    samples = []
    for _ in range(CALLS):
        started = time.perf_counter()
        await action()
        samples.append(time.perf_counter() - started)
    return _stats(samples)


def _caller(now: datetime) -> AuthenticatedParticipant:
    participant = Participant(
        id="NTRNL-40000001", name="Bench", roles=["consumer"], status="active",
        created_at=now, updated_at=now,
    )  # fmt: skip
    identity = CertificateIdentity(
        organization_id="NTRNL-40000001", organization_name="Bench",
        participant_uri="urn:sluis:participant:NTRNL-40000001", roles=frozenset({"consumer"}),
        thumbprint_sha256=THUMB, serial_number=1, subject="CN=Bench", issuer="CN=CA",
        not_after=now + timedelta(days=1),
    )  # fmt: skip
    return AuthenticatedParticipant(participant, frozenset({"consumer"}), identity, "tls")


async def _case(signing_key: SigningKey, home: Path) -> list[tuple[str, tuple[float, float]]]:
    now = datetime.now(UTC)
    db = Database(f"sqlite+aiosqlite:///{home / 'bench.db'}")
    await db.upgrade()
    await _register(db, now)
    audit = AuditLog(db, Signer(ORIGIN, bytes(32)), ORIGIN)
    keyring = KeyRing(db, signing_key, timedelta(minutes=5), audit)
    await keyring.start(now)
    config = IssuerConfig(ISSUER, (ISSUER,), timedelta(minutes=5), None, None)
    oauth = OAuthService(
        db, SluisAuthorizationServer(config), keyring, ClientService(db),
        ExternalIssuers.from_settings([]), audit=audit,
    )  # fmt: skip
    key = import_private(signing_key)
    alg = signing_alg(signing_key)

    def mint(jti: str) -> str:
        return tokens.mint(
            key=key, alg=alg, issuer=ISSUER, client_id=CLIENT, audience=ISSUER,
            scopes=frozenset({"dataset:a"}), thumbprint=THUMB, jti=jti, now=now,
            lifetime=timedelta(minutes=5),
        )[0]  # fmt: skip

    token = mint("bench")
    fresh = iter([mint(f"bench-{n}") for n in range(WARMUP + CALLS)])  # one per call, never seen
    keys = await keyring.verification_keys(key.kid, now)
    issuers = {ISSUER: tokens.TrustedIssuer(ISSUER, keys, OWN_TOKEN_ALGS)}
    public = next(iter(keys.keys))
    caller = _caller(now)
    memo = tokens.VerifiedMemo()  # one TLS connection's (gateway/http/bearer.py)
    rows = [
        ("joserfc signature only (baseline)", _time(lambda: decode(token, public, (alg,)))),  # type: ignore[arg-type]
        ("tokens.check (pure)", _time(
            lambda: tokens.check(token, issuers, audience=ISSUER, thumbprint=THUMB, now=now)
        )),
        ("revocation + client lookup in SQLite (before)", await _time_async(
            lambda: _lookups(db)
        )),
        ("check_bearer, token never seen (+ revocation check, in memory)", await _time_async(
            lambda: oauth.check_bearer(next(fresh), caller, now)
        )),
        ("check_bearer, new connection, token seen (process set)", await _time_async(
            lambda: oauth.check_bearer(token, caller, now)
        )),
        ("check_bearer, kept-alive connection (signature verified once)", await _time_async(
            lambda: oauth.check_bearer(token, caller, now, memo=memo)
        )),
    ]  # fmt: skip
    await audit.close()
    await db.dispose()
    return rows


async def _register(db: Database, now: datetime) -> None:
    """The token's client: registered and active, as on a real gateway."""
    await ParticipantService(db).create(
        ParticipantCreate(id=CLIENT, name="Bench", roles=["consumer"]), now=now
    )
    data = ClientCreate(client_id=CLIENT, auth_method="tls_client_auth", scopes=["dataset:a"])
    await ClientService(db).create(data, now=now)


async def _lookups(db: Database) -> None:
    """What ``check_bearer`` read from the database on every request before issue 10."""
    async with db.session() as session:
        await repository.is_revoked(session, "bench")
        await repository.get_client(session, CLIENT)


def main() -> None:
    """Run both key types and print the table."""
    table = Table(title=f"Resource-server check per request ({CALLS} calls each)")
    for column in ("key", "case", "median µs", "p99 µs", "median vs baseline"):
        table.add_column(column, justify="left" if column in {"key", "case"} else "right")
    for name, key in (
        ("ES256", ec.generate_private_key(ec.SECP256R1())),
        ("Ed25519", ed25519.Ed25519PrivateKey.generate()),
    ):
        with tempfile.TemporaryDirectory(prefix="sluis-bench-") as tmp:
            rows = asyncio.run(_case(key, Path(tmp)))
        baseline = rows[0][1][0]
        for case, (median, p99) in rows:
            table.add_row(name, case, f"{median:,.0f}", f"{p99:,.0f}", f"{median / baseline:.2f}x")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
