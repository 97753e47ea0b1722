"""The HTTP layer's authentication dependencies, through the real problem+json handlers.

``gateway/http/deps.py`` (the client certificate's holder, cached per TLS connection; the
throttle; role checks; ``no-store``), ``gateway/http/bearer.py`` (where a bearer token may
come from, and its memo per TLS connection) and ``gateway/http/oauth_errors.py`` (the OAuth
error fields inside a problem). A small FastAPI app with the real dependencies and handlers,
called over httpx's ASGI transport; an outer ASGI layer puts in the scope what the
client-certificate middleware and the TLS server would (the presented chain, the
connection's ``tls`` extension dict). The collaborators behind the dependencies are
recording stand-ins: the certificate verification (``verified_holder``: tests/certs), the
registry (``registry_of``: test_registry_cache.py), the token check (``check_bearer``:
test_token_claims.py), the throttle's counters (tests/gateway/test_ratelimit*.py). The same
paths over real mTLS: test_mtls.py, test_registry_cache.py, test_oauth.py (seconds a run;
these are for ``make mutate``, issue 18).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import Depends, FastAPI, Request
from starlette.types import Receive, Scope, Send

from certs import CertificateIdentity, CertificateRejected
from gateway.auth.tokens import VerifiedMemo
from gateway.http import deps, oauth_errors
from gateway.http.audit_events import CALLER_KEY
from gateway.http.bearer import MEMO_KEY, TokenCallerDep
from gateway.http.client_cert import STATE_KEY, PresentedCertificate
from gateway.http.deps import HOLDER_KEY, Caller, NoStore, OperatorCaller, require_role
from gateway.http.problems import install
from gateway.participants.schemas import Participant
from gateway.participants.service import AuthenticatedParticipant
from gateway.telemetry import SPAN_AUTHENTICATE

PID = "NTRNL-30000001"


def _certificate() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "client")])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )


CERT = _certificate()


def _party(roles: frozenset[str], not_after: datetime, source: str = "tls") -> Any:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    participant = Participant(
        id=PID, name="P", roles=sorted(roles), status="active", created_at=now, updated_at=now
    )
    identity = CertificateIdentity(
        organization_id=PID, organization_name="P", participant_uri=f"urn:sluis:participant:{PID}",
        roles=roles, thumbprint_sha256="thumb", serial_number=7, subject="CN=client",
        issuer="CN=client", not_after=not_after,
    )  # fmt: skip
    return AuthenticatedParticipant(participant, roles, identity, source)  # type: ignore[arg-type]


class Audit:
    def __init__(self) -> None:
        self.entries: list[Any] = []

    async def append(self, item: Any) -> None:
        self.entries.append(item)


class Telemetry:
    def __init__(self) -> None:
        self.spans: list[tuple[str, dict[str, Any]]] = []

    @contextmanager
    def span(self, name: str, **attributes: Any) -> Iterator[None]:
        self.spans.append((name, attributes))
        yield


class Trust:
    def __init__(self) -> None:
        self.current: tuple[Any, ...] = ()

    def crls(self) -> tuple[Any, ...]:
        return self.current


class Limits:
    def __init__(self, retry_after: int | None) -> None:
        self.retry_after = retry_after
        self.asked: list[tuple[str, str | None]] = []

    def participant_blocked(self, participant: str, source: str | None) -> int | None:
        self.asked.append((participant, source))
        return self.retry_after


class OAuth:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, datetime, VerifiedMemo | None]] = []

    async def check_bearer(
        self, token: str, caller: Any, now: datetime, *, memo: VerifiedMemo | None = None
    ) -> dict[str, Any]:
        self.calls.append((token, caller, now, memo))
        return {"token": token, "participant": caller.participant.id}


@dataclass
class World:
    """The services the dependencies read, and what their collaborators were asked."""

    caller: Any
    audit: Audit = field(default_factory=Audit)
    telemetry: Telemetry = field(default_factory=Telemetry)
    trust: Trust = field(default_factory=Trust)
    oauth: OAuth = field(default_factory=OAuth)
    db: object = field(default_factory=object)
    participants: object = field(default_factory=object)
    limits: Limits | None = None
    snapshot: object = field(default_factory=object)
    verified: list[tuple[Any, ...]] = field(default_factory=list)
    registries: list[object] = field(default_factory=list)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    found = World(_party(frozenset({"consumer"}), datetime.now(UTC) + timedelta(days=1)))

    async def verified_holder(*args: Any) -> Any:
        found.verified.append(args)
        return found.caller

    class Registry:
        async def current(self) -> object:
            return found.snapshot

    def registry_of(db: object) -> Registry:
        found.registries.append(db)
        return Registry()

    monkeypatch.setattr(deps, "verified_holder", verified_holder)
    monkeypatch.setattr(deps, "registry_of", registry_of)
    return found


def _app(world: World, services: Any = None) -> FastAPI:
    app = FastAPI()
    install(app)
    app.state.services = world if services is None else services
    # Made per app, not at import: mutmut switches a mutant on in a function when it is
    # called, and OperatorCaller's check was made when deps was imported.
    officer = Depends(require_role("officer"))

    @app.get("/caller")
    async def who(caller: Caller, request: Request) -> dict[str, Any]:
        assert request.scope["state"][CALLER_KEY] is caller
        return {"participant": caller.participant.id, "source": caller.source}

    @app.get("/operator")
    async def operator(caller: OperatorCaller) -> str:
        return caller.participant.id

    @app.get("/officer", dependencies=[officer])
    async def officer_only() -> str:
        return "officer"

    @app.get("/token")
    async def token(caller: TokenCallerDep) -> Any:
        return caller

    @app.get("/stored", dependencies=[NoStore])
    async def stored() -> str:
        return "audit data"

    @app.get("/plain")
    async def plain() -> str:
        return "plain"

    return app


def _scope_with(
    app: FastAPI,
    presented: PresentedCertificate | None,
    tls: dict[str, Any] | None,
    client: tuple[str, int] | str | None = "keep",
) -> Any:
    """``app`` behind what the middleware and the TLS server put in the scope."""

    async def outer(scope: Scope, receive: Receive, send: Send) -> None:
        scope = dict(scope)
        if presented is not None:
            scope["state"] = {STATE_KEY: presented}
        scope["extensions"] = {"tls": tls} if tls is not None else {}
        if client != "keep":
            scope["client"] = client
        await app(scope, receive, send)

    return outer


def _get(
    world: World,
    path: str,
    presented: PresentedCertificate | None = None,
    tls: dict[str, Any] | None = None,
    *,
    headers: Any = None,
    client: tuple[str, int] | str | None = "keep",
    services: Any = None,
) -> httpx.Response:
    asgi = _scope_with(_app(world, services), presented, tls, client)

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=asgi, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://sluis") as http:
            return await http.get(path, headers=headers)

    return asyncio.run(call())


TLS = PresentedCertificate("tls", (CERT,))
PROXY = PresentedCertificate("proxy", (CERT,))


def _problem(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


# --- deps.authenticated ---------------------------------------------------------------------


def test_no_presented_certificate_is_refused(world: World) -> None:
    response = _get(world, "/caller")
    assert response.status_code == 401
    body = _problem(response)
    assert body["type"] == "urn:sluis:problem:certificate-no-certificate"
    assert body["detail"] == "this endpoint needs a client certificate"
    assert world.verified == []
    assert world.registries == []


@pytest.mark.parametrize(
    "presented",
    [PresentedCertificate("none"), PresentedCertificate("tls"), PresentedCertificate("proxy"),
     PresentedCertificate("none", (CERT,))],
    ids=["none", "tls-without-chain", "proxy-without-chain", "none-with-chain"],
)  # fmt: skip
def test_a_missing_chain_or_source_is_refused(
    world: World, presented: PresentedCertificate
) -> None:
    response = _get(world, "/caller", presented, {})
    assert response.status_code == 401
    body = _problem(response)
    assert body["type"] == "urn:sluis:problem:certificate-no-certificate"
    assert body["detail"] == "this endpoint needs a client certificate"
    assert world.verified == []


def test_the_middlewares_refusal_is_raised_before_anything_else(world: World) -> None:
    refused = CertificateRejected("malformed", "the forwarded certificate is not PEM")
    response = _get(world, "/caller", PresentedCertificate("proxy", (CERT,), refused), {})
    assert response.status_code == 401
    body = _problem(response)
    assert body["type"] == "urn:sluis:problem:certificate-malformed"
    assert body["detail"] == "the forwarded certificate is not PEM"
    assert world.verified == []
    assert [name for name, _ in world.telemetry.spans] == ["sluis.audit"]  # the refusal's entry


def test_the_holder_is_verified_with_the_services_and_recorded(world: World) -> None:
    tls: dict[str, Any] = {}
    before = datetime.now(UTC)
    response = _get(world, "/caller", TLS, tls)
    after = datetime.now(UTC)
    assert response.status_code == 200
    assert response.json() == {"participant": PID, "source": "tls"}
    [(participants, chain, trust, source, now)] = world.verified
    assert participants is world.participants
    assert trust is world.trust
    assert chain == (CERT,)
    assert source == "tls"
    assert before <= now <= after
    assert now.tzinfo is UTC
    assert world.registries == [world.db]
    assert world.telemetry.spans == [(SPAN_AUTHENTICATE, {"source": "tls"})]
    held = tls[HOLDER_KEY]
    assert held.caller is world.caller
    assert held.crls is world.trust.current
    assert held.snapshot is world.snapshot


def test_the_holder_is_kept_for_the_tls_connection(world: World) -> None:
    tls: dict[str, Any] = {}
    assert _get(world, "/caller", TLS, tls).status_code == 200
    assert _get(world, "/caller", TLS, tls).status_code == 200
    assert len(world.verified) == 1
    assert _get(world, "/caller", TLS, {}).status_code == 200  # another connection
    assert len(world.verified) == 2


def test_a_new_crl_or_registry_snapshot_verifies_again(world: World) -> None:
    tls: dict[str, Any] = {}
    assert _get(world, "/caller", TLS, tls).status_code == 200
    world.trust.current = ("crl",)  # a reload: another object
    assert _get(world, "/caller", TLS, tls).status_code == 200
    assert len(world.verified) == 2
    assert tls[HOLDER_KEY].crls is world.trust.current
    world.trust.current = (*world.trust.current,)  # equal, but not the same object
    assert _get(world, "/caller", TLS, tls).status_code == 200
    assert len(world.verified) == 3
    world.snapshot = object()
    assert _get(world, "/caller", TLS, tls).status_code == 200
    assert len(world.verified) == 4
    assert tls[HOLDER_KEY].snapshot is world.snapshot
    assert _get(world, "/caller", TLS, tls).status_code == 200
    assert len(world.verified) == 4


def test_an_expired_holder_is_verified_again(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)

    class Clock(datetime):
        @classmethod
        def now(cls, _tz: Any = None) -> Any:
            return now

    monkeypatch.setattr(deps, "datetime", Clock)
    world.caller = _party(frozenset({"consumer"}), now + timedelta(microseconds=1))
    tls: dict[str, Any] = {}
    assert _get(world, "/caller", TLS, tls).status_code == 200
    assert _get(world, "/caller", TLS, tls).status_code == 200
    assert len(world.verified) == 1  # valid one microsecond more: kept
    world.caller = _party(frozenset({"consumer"}), now)
    tls = {}
    assert _get(world, "/caller", TLS, tls).status_code == 200
    assert _get(world, "/caller", TLS, tls).status_code == 200
    assert len(world.verified) == 3  # expiring now: not kept


def test_something_else_under_the_holder_key_is_not_taken(world: World) -> None:
    tls: dict[str, Any] = {HOLDER_KEY: "not a holder"}
    assert _get(world, "/caller", TLS, tls).status_code == 200
    assert len(world.verified) == 1
    assert tls[HOLDER_KEY].caller is world.caller


def test_a_proxys_certificate_is_never_kept(world: World) -> None:
    world.caller = _party(frozenset({"consumer"}), datetime.now(UTC) + timedelta(days=1), "proxy")
    tls: dict[str, Any] = {}
    for _ in range(2):
        response = _get(world, "/caller", PROXY, tls)
        assert response.status_code == 200
        assert response.json() == {"participant": PID, "source": "proxy"}
    assert [call[3] for call in world.verified] == ["proxy", "proxy"]
    assert tls == {}
    assert world.telemetry.spans == [(SPAN_AUTHENTICATE, {"source": "proxy"})] * 2


def test_without_a_tls_extension_the_holder_is_verified_each_time(world: World) -> None:
    for _ in range(2):
        assert _get(world, "/caller", TLS, None).status_code == 200
    assert len(world.verified) == 2


def test_a_throttled_participant_is_refused_with_retry_after(world: World) -> None:
    world.limits = Limits(17)
    response = _get(world, "/caller", TLS, {})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "17"
    assert _problem(response)["type"] == "urn:sluis:problem:rate-limited"
    assert world.limits.asked == [(PID, "127.0.0.1")]


def test_a_participant_not_throttled_passes(world: World) -> None:
    world.limits = Limits(None)
    assert _get(world, "/caller", TLS, {}).status_code == 200
    assert world.limits.asked == [(PID, "127.0.0.1")]
    world.limits = Limits(0)  # a Retry-After of 0 is still a refusal
    assert _get(world, "/caller", TLS, {}).status_code == 429


def test_the_throttle_without_a_client_address(world: World) -> None:
    world.limits = Limits(None)
    assert _get(world, "/caller", TLS, {}, client=None).status_code == 200
    assert world.limits.asked == [(PID, None)]


class WithoutLimits:
    """The world's services without a ``limits`` attribute at all."""

    def __init__(self, world: World) -> None:
        self._world = world

    def __getattr__(self, name: str) -> Any:
        if name == "limits":
            raise AttributeError(name)
        return getattr(self._world, name)


def test_services_without_limits_are_not_throttled(world: World) -> None:
    assert not hasattr(WithoutLimits(world), "limits")
    assert _get(world, "/caller", TLS, {}, services=WithoutLimits(world)).status_code == 200
    assert len(world.verified) == 1


# --- deps.require_role, no_store ------------------------------------------------------------


def test_a_role_the_caller_lacks_is_forbidden(world: World) -> None:
    response = _get(world, "/operator", TLS, {})
    assert response.status_code == 403
    body = _problem(response)
    assert body["type"] == "urn:sluis:problem:role-required"
    assert body["detail"] == "this needs the operator role"
    response = _get(world, "/officer", TLS, {})
    assert response.status_code == 403
    body = _problem(response)
    assert body["type"] == "urn:sluis:problem:role-required"
    assert body["detail"] == "this needs the officer role"


def test_a_role_the_caller_holds_is_admitted(world: World) -> None:
    world.caller = _party(frozenset({"consumer", "operator"}), datetime.now(UTC) + timedelta(1))
    response = _get(world, "/operator", TLS, {})
    assert response.status_code == 200
    assert response.json() == PID
    world.caller = _party(frozenset({"officer"}), datetime.now(UTC) + timedelta(1))
    response = _get(world, "/officer", TLS, {})
    assert response.status_code == 200
    assert response.json() == "officer"


def test_a_role_in_the_registry_but_not_the_certificate_is_not_enough(world: World) -> None:
    caller = _party(frozenset({"operator"}), datetime.now(UTC) + timedelta(1))
    world.caller = AuthenticatedParticipant(
        caller.participant, frozenset({"consumer"}), caller.certificate, "tls"
    )
    assert _get(world, "/operator", TLS, {}).status_code == 403


def test_no_store_is_set_only_where_asked(world: World) -> None:
    assert _get(world, "/stored").headers["cache-control"] == "no-store"
    assert "cache-control" not in _get(world, "/plain").headers


# --- bearer ---------------------------------------------------------------------------------


def _token_problem(response: httpx.Response, status: int, code: str, detail: str) -> None:
    assert response.status_code == status
    body = _problem(response)
    assert body["type"] == f"urn:sluis:problem:token-{code}"
    assert body["detail"] == detail
    assert body["error"] == "invalid_request"


def test_a_token_in_the_query_is_refused_even_with_a_header(world: World) -> None:
    response = _get(
        world, "/token?access_token=abc", TLS, {}, headers={"Authorization": "Bearer abc"}
    )
    _token_problem(
        response, 400, "in-query", "tokens are accepted in the Authorization header only"
    )
    assert world.oauth.calls == []
    response = _get(world, "/token?access_token=", TLS, {})  # empty: still named
    _token_problem(
        response, 400, "in-query", "tokens are accepted in the Authorization header only"
    )


def test_another_query_parameter_is_not_a_token(world: World) -> None:
    response = _get(world, "/token?token=abc", TLS, {}, headers={"Authorization": "Bearer t"})
    assert response.status_code == 200


def test_no_authorization_header_is_missing(world: World) -> None:
    response = _get(world, "/token", TLS, {})
    assert response.status_code == 401
    body = _problem(response)
    assert body["type"] == "urn:sluis:problem:token-missing"
    assert body["detail"] == "this endpoint needs a bearer token"
    assert body["error"] == "invalid_request"
    assert response.headers["www-authenticate"] == 'Bearer realm="sluis"'


def test_several_authorization_headers_are_refused(world: World) -> None:
    headers = [("Authorization", "Bearer a"), ("Authorization", "Bearer a")]
    response = _get(world, "/token", TLS, {}, headers=headers)
    _token_problem(response, 400, "malformed", "several Authorization headers")
    assert world.oauth.calls == []


@pytest.mark.parametrize(
    "value", ["Basic YTpi", "Bearer", "Bearer ", "Bearer    ", "Bearertoken", "Token abc", " abc"]
)
def test_an_authorization_that_is_not_a_bearer_token_is_malformed(world: World, value: str) -> None:
    response = _get(world, "/token", TLS, {}, headers={"Authorization": value})
    _token_problem(response, 400, "malformed", "the Authorization header must be 'Bearer <token>'")
    assert world.oauth.calls == []


@pytest.mark.parametrize(
    ("value", "token"),
    [("Bearer abc", "abc"), ("bearer abc", "abc"), ("BEARER abc", "abc"),
     ("Bearer  abc ", "abc"), ("Bearer a b", "a b")],
)  # fmt: skip
def test_the_token_is_checked_with_the_caller_and_the_connections_memo(
    world: World, value: str, token: str
) -> None:
    tls: dict[str, Any] = {}
    before = datetime.now(UTC)
    response = _get(world, "/token", TLS, tls, headers={"Authorization": value})
    after = datetime.now(UTC)
    assert response.status_code == 200
    assert response.json() == {"token": token, "participant": PID}
    [(checked, caller, now, memo)] = world.oauth.calls
    assert checked == token
    assert caller is world.caller
    assert before <= now <= after
    assert now.tzinfo is UTC
    assert isinstance(memo, VerifiedMemo)
    assert tls[MEMO_KEY] is memo


def test_the_memo_is_kept_for_the_connection(world: World) -> None:
    tls: dict[str, Any] = {}
    for _ in range(2):
        _get(world, "/token", TLS, tls, headers={"Authorization": "Bearer abc"})
    first, second = (call[3] for call in world.oauth.calls)
    assert first is second is tls[MEMO_KEY]
    tls[MEMO_KEY] = "something else"
    _get(world, "/token", TLS, tls, headers={"Authorization": "Bearer abc"})
    assert isinstance(world.oauth.calls[2][3], VerifiedMemo)
    assert world.oauth.calls[2][3] is not first


def test_no_memo_for_a_proxy_or_without_tls(world: World) -> None:
    world.caller = _party(frozenset({"consumer"}), datetime.now(UTC) + timedelta(days=1), "proxy")
    tls: dict[str, Any] = {}
    _get(world, "/token", PROXY, tls, headers={"Authorization": "Bearer abc"})
    assert tls == {}
    _get(world, "/token", TLS, None, headers={"Authorization": "Bearer abc"})
    assert [call[3] for call in world.oauth.calls] == [None, None]


def test_the_certificate_is_checked_before_the_token(world: World) -> None:
    response = _get(world, "/token", None, {}, headers={"Authorization": "Bearer abc"})
    assert _problem(response)["type"] == "urn:sluis:problem:certificate-no-certificate"
    assert world.oauth.calls == []


# --- oauth_errors ---------------------------------------------------------------------------

TITLES = {
    "invalid_request": "Invalid OAuth request",
    "invalid_client": "Client authentication failed",
    "invalid_grant": "Invalid grant",
    "unauthorized_client": "Client not authorised for this grant",
    "unsupported_grant_type": "Unsupported grant type",
    "invalid_scope": "Invalid scope",
    "invalid_target": "Invalid resource",
    "invalid_token": "Invalid access token",
    "insufficient_scope": "Insufficient scope",
    "temporarily_unavailable": "Token service temporarily unavailable",
}


@pytest.mark.parametrize(("error", "title"), [*TITLES.items(), ("no_such_error", "OAuth error")])
def test_an_oauth_problem_has_the_errors_title_and_fields(error: str, title: str) -> None:
    response = oauth_errors.oauth_problem(
        400, error, 'the grant "x" is unknown', instance="/oauth/token", code="grant-unknown"
    )
    assert response.status_code == 400
    assert json.loads(bytes(response.body)) == {
        "type": "urn:sluis:problem:grant-unknown",
        "title": title,
        "status": 400,
        "detail": 'the grant "x" is unknown',
        "instance": "/oauth/token",
        "error": error,
        "error_description": 'the grant "x" is unknown',
    }
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert "www-authenticate" not in response.headers


def test_an_oauth_problem_with_the_bearer_challenge() -> None:
    response = oauth_errors.oauth_problem(
        401, "invalid_token", "expired\r\nX: y", instance="/i", code="token-expired",
        bearer_challenge=True,
    )  # fmt: skip
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="sluis", error="invalid_token"'
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    response = oauth_errors.oauth_problem(
        401, "invalid_client", "d", instance="/i", code="c", bearer_challenge=True
    )
    assert response.headers["www-authenticate"] == 'Bearer realm="sluis", error="invalid_token"'


def test_the_no_store_headers_are_not_shared() -> None:
    oauth_errors.oauth_problem(
        401, "invalid_token", "d", instance="/i", code="c", bearer_challenge=True
    )
    assert oauth_errors.NO_STORE == {"Cache-Control": "no-store", "Pragma": "no-cache"}
